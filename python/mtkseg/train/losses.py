"""Loss terms and learning-rate schedules of the training recipe."""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import keras
import tensorflow as tf

from ..errors import InvalidArgumentError

__all__ = [
    "OhemArg", "check_ohem", "masked_cross_entropy", "masked_cross_entropy_terms", "lovasz_softmax", "lovasz_term", "conv_kernels",
    "l2_penalty", "learning_rate",
]


#: ``(threshold, min_kept)`` of online hard example mining: keep the pixels whose true-class
#: probability is below ``threshold``, and at least the ``min_kept`` share of labelled pixels
#: with the highest loss (the OHEM cross-entropy of PSPNet/BiSeNet code bases).
OhemArg = Optional[Tuple[float, float]]


def masked_cross_entropy(
    labels: tf.Tensor,
    logits: tf.Tensor,
    class_weights: Optional[tf.Tensor] = None,
    ignore_index: int = 255,
    ohem: OhemArg = None,
) -> tf.Tensor:
    """Pixel-wise softmax cross-entropy averaged over labelled pixels.

    Pixels labelled ``ignore_index`` contribute nothing (neither to the sum nor the count).
    With ``class_weights`` (C,) the result is the weighted mean
    ``sum(w[y] * ce) / sum(w[y])`` (PyTorch's ``CrossEntropyLoss(weight=...)``).
    With ``ohem=(threshold, min_kept)`` only the hard pixels count (see :data:`OhemArg`).
    Returns 0 when a batch has no labelled pixel.
    """
    total, weight = masked_cross_entropy_terms(labels, logits, class_weights, ignore_index, ohem)
    return tf.math.divide_no_nan(total, weight)


def check_ohem(ohem: OhemArg) -> None:
    """Raise :class:`InvalidArgumentError` unless ``ohem`` is None or ``(0 < threshold <= 1, 0 < min_kept <= 1)``."""
    if ohem is None:
        return
    try:
        threshold, min_kept = (float(v) for v in ohem)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"ohem: expected (threshold, min_kept), got {ohem!r}") from None
    if not 0.0 < threshold <= 1.0 or not 0.0 < min_kept <= 1.0:
        raise InvalidArgumentError(f"ohem: threshold and min_kept must lie in (0, 1], got {ohem!r}")


def masked_cross_entropy_terms(
    labels: tf.Tensor,
    logits: tf.Tensor,
    class_weights: Optional[tf.Tensor] = None,
    ignore_index: int = 255,
    ohem: OhemArg = None,
) -> Tuple[tf.Tensor, tf.Tensor]:
    """Numerator and denominator of :func:`masked_cross_entropy`: ``(sum(w[y] * ce), sum(w[y]))``.

    Summed separately over the shards of a global batch (multi-worker training) their ratio
    is the loss of the whole batch, which a mean of per-shard means is not (with ``ohem``, each
    shard picks its own hard pixels).
    """
    check_ohem(ohem)
    labels = tf.cast(labels, tf.int32)
    valid = tf.not_equal(labels, ignore_index)
    safe = tf.where(valid, labels, 0)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=tf.cast(logits, tf.float32))
    w = tf.cast(valid, tf.float32)
    if ohem is not None:
        w = w * _hard_pixels(tf.stop_gradient(ce), valid, *ohem)
    if class_weights is not None:
        w = w * tf.gather(tf.cast(class_weights, tf.float32), safe)
    return tf.reduce_sum(ce * w), tf.reduce_sum(w)


def _hard_pixels(ce: tf.Tensor, valid: tf.Tensor, threshold: float, min_kept: float) -> tf.Tensor:
    """1.0 where a labelled pixel is hard: ``ce > -log(threshold)`` or among the ``min_kept`` share
    of labelled pixels with the largest ``ce``; else 0.0."""
    flat = tf.reshape(tf.where(valid, ce, -1.0), [-1])  # unlabelled pixels sort last
    n_valid = tf.reduce_sum(tf.cast(valid, tf.int32))
    k = tf.maximum(tf.cast(tf.math.floor(min_kept * tf.cast(n_valid, tf.float32)), tf.int32), 1)
    k = tf.minimum(k, tf.size(flat))
    kth = tf.math.top_k(flat, k=k, sorted=True).values[-1]  # the k-th largest loss
    cut = tf.minimum(tf.constant(-math.log(threshold), tf.float32), kth)
    return tf.cast(valid & (ce >= cut), tf.float32)


def lovasz_softmax(labels: tf.Tensor, logits: tf.Tensor, ignore_index: int = 255) -> tf.Tensor:
    """Lovász-softmax loss (Berman et al., CVPR 2018): a convex surrogate of ``1 - IoU``.

    For each class present in ``labels`` the pixel errors ``|[y == c] - p_c|`` are sorted in
    decreasing order and weighted by the gradient of the Jaccard loss along that order (the
    Lovász extension of the class's IoU loss); the result is the mean over the present classes,
    all pixels of the batch pooled (the paper's ``per_image=False``).  On a one-hot prediction it
    equals ``1 -`` the mean IoU of the present classes.  Pixels labelled ``ignore_index`` count
    nowhere.  Returns 0 when no pixel is labelled.
    """
    logits = tf.cast(logits, tf.float32)
    num_classes = logits.shape[-1]
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    probs = tf.reshape(tf.nn.softmax(logits, axis=-1), [-1, num_classes])
    valid = tf.cast(tf.not_equal(labels, ignore_index), tf.float32)[:, None]
    fg = tf.one_hot(tf.where(labels == ignore_index, 0, labels), num_classes) * valid
    # unlabelled pixels get error 0: they sort last and add nothing (the union they enlarge is
    # only that of later, also zero-error, positions)
    errors = tf.transpose(tf.abs(fg - probs) * valid)  # (C, N)
    fg = tf.transpose(fg)
    order = tf.argsort(tf.stop_gradient(errors), axis=1, direction="DESCENDING")
    errors_sorted = tf.gather(errors, order, batch_dims=1)
    fg_sorted = tf.gather(fg, order, batch_dims=1)
    gts = tf.reduce_sum(fg_sorted, axis=1, keepdims=True)
    intersection = gts - tf.cumsum(fg_sorted, axis=1)
    union = gts + tf.cumsum(1.0 - fg_sorted, axis=1)
    jaccard = 1.0 - intersection / union
    grad = tf.concat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], axis=1)
    per_class = tf.reduce_sum(errors_sorted * grad, axis=1)
    present = tf.cast(gts[:, 0] > 0, tf.float32)
    return tf.math.divide_no_nan(tf.reduce_sum(per_class * present), tf.reduce_sum(present))


def lovasz_term(labels: tf.Tensor, logits: tf.Tensor, ignore_index: int = 255) -> tf.Tensor:
    """:func:`lovasz_softmax` on every second row and column of label-size logits: a quarter of
    the sort (the loss's cost), an estimate of the batch's IoU loss (the training recipe's term)."""
    return lovasz_softmax(labels[:, ::2, ::2], logits[:, ::2, ::2], ignore_index)


def conv_kernels(model: keras.Model) -> List[tf.Variable]:
    """Kernels of every convolution / dense layer (not biases, not BatchNorm parameters)."""
    kernels = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and getattr(layer, "kernel", None) is not None:
            kernels.append(layer.kernel)
    return kernels


def l2_penalty(kernels: Sequence[tf.Variable]) -> tf.Tensor:
    """Sum of squares of the given kernels (multiply by the recipe's lambda)."""
    if not kernels:
        return tf.constant(0.0)
    return tf.add_n([tf.reduce_sum(tf.square(tf.cast(k, tf.float32))) for k in kernels])


def learning_rate(
    epoch: float,
    base_lr: float = 5e-4,
    schedule: str = "exp",
    epochs: int = 1,
    decay: float = 0.8,
    decay_every: float = 3.0,
    warmup_epochs: float = 0.0,
    min_lr: float = 0.0,
) -> float:
    """Learning rate at a (fractional) epoch.

    * ``"exp"``: ``base_lr * decay ** (epoch / decay_every)`` (the recipe: 5e-4 * 0.8^(epoch/3));
    * ``"cosine"``: ``min_lr + (base_lr - min_lr) * (1 + cos(pi * epoch / epochs)) / 2``;
    * ``"constant"``: ``base_lr``.

    A linear warm-up from ``base_lr / 10`` over ``warmup_epochs`` applies to every schedule.
    """
    if base_lr <= 0:
        raise InvalidArgumentError(f"base_lr: must be > 0, got {base_lr}")
    if schedule == "exp":
        lr = base_lr * decay ** (epoch / decay_every)
    elif schedule == "cosine":
        t = min(max(epoch / max(epochs, 1e-9), 0.0), 1.0)
        lr = min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))
    elif schedule == "constant":
        lr = base_lr
    else:
        raise InvalidArgumentError(f"schedule: expected 'exp', 'cosine' or 'constant', got {schedule!r}")
    if warmup_epochs > 0 and epoch < warmup_epochs:
        lr = lr * (0.1 + 0.9 * epoch / warmup_epochs)
    return float(lr)
