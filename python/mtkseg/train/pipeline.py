"""tf.data input pipeline and augmentations for training.

Samples live in memory as ``uint8`` arrays (decoded once by :mod:`mtkseg.data`); each epoch
builds a dataset over a seeded permutation and augments with *stateless* random ops keyed on
``(seed, epoch, sample)``, so a resumed run sees exactly the batches it would have seen.

Per sample, in order (each step switchable in :class:`AugmentConfig`):

1. random scale: resize by ``base_scale * U(scale_min, scale_max)``; image bilinear, mask
   nearest (labels are never blended);
2. pad to the crop size (image 0, mask ``ignore_index``) and take a random crop;
3. horizontal flip with probability ``flip_p`` (image and mask together);
4. scale the image to [0, 1] floats; brightness ``x U(0.9, 1.1)`` with probability
   ``brightness_p``; optional colour jitter (contrast, saturation, brightness, each
   ``x U(1-j, 1+j)``) with probability ``color_jitter_p`` (off by default); gaussian noise with
   probability ``noise_p``; all clipped to [0, 1].
5. the stronger photometric set for domain shift (all off by default): hue rotation
   ``U(-hue, hue)`` turns (``hue_p``), gamma ``U(gamma_range)`` (``gamma_p``), a per-channel
   colour cast ``x U(1-cast, 1+cast)`` (``cast_p``), a gaussian blur of sigma ``U(0.3, blur_sigma)``
   (``blur_p``), and *sky recolouring* (``sky_p``): pixels labelled ``sky_class`` are blended
   towards a random clear-sky blue with a vertical gradient, keeping their texture, because
   the training skies (CamVid: overcast Cambridge) are grey while real dash-cam skies are
   often blue.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from ..errors import InvalidArgumentError

__all__ = ["AugmentConfig", "augment_sample", "train_dataset", "to_model_input"]


@dataclass
class AugmentConfig:
    """Switches and ranges of the training augmentations."""

    flip_p: float = 0.5
    brightness_p: float = 0.1
    brightness_range: Tuple[float, float] = (0.9, 1.1)
    noise_p: float = 0.1
    noise_std: float = 0.03
    color_jitter_p: float = 0.0
    color_jitter: float = 0.3
    scale_range: Optional[Tuple[float, float]] = (0.75, 1.5)
    crop_size: Optional[Tuple[int, int]] = None
    ignore_index: int = 255
    hue_p: float = 0.0
    hue: float = 0.05
    gamma_p: float = 0.0
    gamma_range: Tuple[float, float] = (0.7, 1.5)
    cast_p: float = 0.0
    cast: float = 0.15
    blur_p: float = 0.0
    blur_sigma: float = 1.5
    sky_p: float = 0.0
    sky_class: Optional[int] = None

    def validate(self) -> None:
        for name in ("flip_p", "brightness_p", "noise_p", "color_jitter_p", "hue_p", "gamma_p", "cast_p",
                     "blur_p", "sky_p"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise InvalidArgumentError(f"{name}: a probability in [0, 1] is needed, got {p}")
        lo, hi = self.brightness_range
        if not 0 < lo <= hi:
            raise InvalidArgumentError(f"brightness_range: need 0 < low <= high, got {self.brightness_range}")
        if not 0 <= self.color_jitter < 1:
            raise InvalidArgumentError(f"color_jitter: strength in [0, 1) needed, got {self.color_jitter}")
        if self.noise_std < 0:
            raise InvalidArgumentError(f"noise_std: must be >= 0, got {self.noise_std}")
        if self.scale_range is not None and not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise InvalidArgumentError(f"scale_range: need 0 < min <= max, got {self.scale_range}")
        if self.crop_size is not None and min(self.crop_size) < 1:
            raise InvalidArgumentError(f"crop_size: must be positive, got {self.crop_size}")
        if not 0 <= self.hue <= 0.5:
            raise InvalidArgumentError(f"hue: a fraction of a turn in [0, 0.5] is needed, got {self.hue}")
        if not 0 < self.gamma_range[0] <= self.gamma_range[1]:
            raise InvalidArgumentError(f"gamma_range: need 0 < low <= high, got {self.gamma_range}")
        if not 0 <= self.cast < 1:
            raise InvalidArgumentError(f"cast: strength in [0, 1) needed, got {self.cast}")
        if not 0.3 <= self.blur_sigma <= 5:
            raise InvalidArgumentError(f"blur_sigma: must be in [0.3, 5], got {self.blur_sigma}")
        if self.sky_p > 0 and self.sky_class is None:
            raise InvalidArgumentError("sky_p > 0 needs sky_class (the index of the sky label)")

    def to_dict(self) -> dict:
        return asdict(self)


def to_model_input(image_uint8: tf.Tensor) -> tf.Tensor:
    """RGB uint8 -> float32 in [0, 1] (the recipe's normalisation: mean 0, std 255)."""
    return tf.cast(image_uint8, tf.float32) / 255.0


def _uniform(seed, k: int, low=0.0, high=1.0, shape=()):
    return tf.random.stateless_uniform(shape, seed=seed + tf.constant([0, k], tf.int64), minval=low, maxval=high)


def augment_sample(
    image: tf.Tensor,
    mask: tf.Tensor,
    seed: tf.Tensor,
    cfg: AugmentConfig,
    base_scale: float = 1.0,
    out_size: Optional[Tuple[int, int]] = None,
) -> Tuple[tf.Tensor, tf.Tensor]:
    """Augment one ``(H, W, 3) uint8`` image and ``(H, W) uint8`` mask.

    Args:
        seed: int64 ``[2]`` stateless seed of this sample.
        cfg: augmentation settings.
        base_scale: scale mapping stored samples to the model's working resolution
            (e.g. 240/360 to train a 240x320 model from 480x360 frames).
        out_size: output size when ``cfg.crop_size`` is None (whole resized frame).

    Returns:
        ``(float32 (h, w, 3) in [0, 1], uint8 (h, w) mask)``.
    """
    seed = tf.cast(seed, tf.int64) * tf.constant([1, 64], tf.int64)
    shape = tf.shape(image)
    h, w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    crop = cfg.crop_size if cfg.crop_size is not None else out_size
    if crop is None:
        raise InvalidArgumentError("augment_sample: give cfg.crop_size or out_size")
    ch, cw = int(crop[0]), int(crop[1])

    # 1. random scale (or a plain resize to the working resolution)
    if cfg.scale_range is not None:
        s = base_scale * _uniform(seed, 1, cfg.scale_range[0], cfg.scale_range[1])
        nh = tf.cast(tf.round(h * s), tf.int32)
        nw = tf.cast(tf.round(w * s), tf.int32)
    elif cfg.crop_size is None:
        nh, nw = tf.constant(ch), tf.constant(cw)
    else:
        nh = tf.cast(tf.round(h * base_scale), tf.int32)
        nw = tf.cast(tf.round(w * base_scale), tf.int32)
    img = tf.image.resize(tf.cast(image, tf.float32), tf.stack([nh, nw]), method="bilinear")
    msk = tf.image.resize(mask[..., None], tf.stack([nh, nw]), method="nearest")[..., 0]

    # 2. pad + random crop
    ph, pw = tf.maximum(ch - nh, 0), tf.maximum(cw - nw, 0)
    img = tf.pad(img, [[0, ph], [0, pw], [0, 0]])
    msk = tf.pad(msk, [[0, ph], [0, pw]], constant_values=cfg.ignore_index)
    max_y = tf.shape(msk)[0] - ch
    max_x = tf.shape(msk)[1] - cw
    oy = tf.cast(tf.floor(_uniform(seed, 2) * tf.cast(max_y + 1, tf.float32)), tf.int32)
    ox = tf.cast(tf.floor(_uniform(seed, 3) * tf.cast(max_x + 1, tf.float32)), tf.int32)
    oy, ox = tf.minimum(oy, max_y), tf.minimum(ox, max_x)
    img = img[oy : oy + ch, ox : ox + cw]
    msk = msk[oy : oy + ch, ox : ox + cw]

    # 3. flip
    if cfg.flip_p > 0:
        flip = _uniform(seed, 4) < cfg.flip_p
        img = tf.cond(flip, lambda: img[:, ::-1], lambda: img)
        msk = tf.cond(flip, lambda: msk[:, ::-1], lambda: msk)

    # 4. photometric, on [0, 1] floats
    img = img / 255.0
    if cfg.brightness_p > 0:
        factor = _uniform(seed, 6, cfg.brightness_range[0], cfg.brightness_range[1])
        use = _uniform(seed, 5) < cfg.brightness_p
        img = tf.where(use, tf.clip_by_value(img * factor, 0.0, 1.0), img)
    if cfg.color_jitter_p > 0 and cfg.color_jitter > 0:
        j = cfg.color_jitter
        use = _uniform(seed, 9) < cfg.color_jitter_p
        mean = tf.reduce_mean(img)
        jit = mean + (img - mean) * _uniform(seed, 10, 1 - j, 1 + j)  # contrast
        gray = tf.reduce_sum(jit * tf.constant([0.299, 0.587, 0.114]), axis=-1, keepdims=True)
        jit = gray + (jit - gray) * _uniform(seed, 11, 1 - j, 1 + j)  # saturation
        jit = tf.clip_by_value(jit * _uniform(seed, 12, 1 - j, 1 + j), 0.0, 1.0)  # brightness
        img = tf.where(use, jit, img)
    if cfg.noise_p > 0 and cfg.noise_std > 0:
        noise = tf.random.stateless_normal(tf.shape(img), seed=seed + tf.constant([0, 8], tf.int64))
        use = _uniform(seed, 7) < cfg.noise_p
        img = tf.where(use, tf.clip_by_value(img + cfg.noise_std * noise, 0.0, 1.0), img)
    img = _domain_shift(img, msk, seed, cfg)
    img = tf.ensure_shape(img, [ch, cw, 3])
    msk = tf.ensure_shape(msk, [ch, cw])
    return img, msk


def _domain_shift(img: tf.Tensor, msk: tf.Tensor, seed, cfg: AugmentConfig) -> tf.Tensor:
    """Step 5 of the module docstring, on a float [0, 1] image."""
    if cfg.sky_p > 0:
        use = _uniform(seed, 20) < cfg.sky_p
        h = tf.shape(img)[0]
        # zenith and horizon colours of a clear sky, randomised around typical photos
        top = tf.stack([_uniform(seed, 21, 0.15, 0.45), _uniform(seed, 22, 0.35, 0.65), _uniform(seed, 23, 0.65, 0.95)])
        bottom = tf.stack([_uniform(seed, 24, 0.55, 0.8), _uniform(seed, 25, 0.65, 0.88), _uniform(seed, 26, 0.8, 1.0)])
        t = tf.reshape(tf.linspace(0.0, 1.0, h), [-1, 1, 1]) * _uniform(seed, 27, 0.5, 1.5)
        sky = top + (bottom - top) * tf.clip_by_value(t, 0.0, 1.0)
        gray = tf.reduce_mean(img, axis=-1, keepdims=True)
        texture = gray / tf.maximum(tf.reduce_mean(gray), 1e-3)  # clouds and haze stay visible
        recoloured = tf.clip_by_value(sky * (0.7 + 0.3 * texture), 0.0, 1.0)
        alpha = _uniform(seed, 28, 0.5, 1.0)
        is_sky = tf.cast(tf.equal(msk, cfg.sky_class), tf.float32)[..., None] * alpha
        img = tf.where(use, img * (1 - is_sky) + recoloured * is_sky, img)
    if cfg.hue_p > 0 and cfg.hue > 0:
        use = _uniform(seed, 30) < cfg.hue_p
        img = tf.where(use, tf.clip_by_value(tf.image.adjust_hue(img, _uniform(seed, 31, -cfg.hue, cfg.hue)), 0.0, 1.0), img)
    if cfg.cast_p > 0 and cfg.cast > 0:
        use = _uniform(seed, 32) < cfg.cast_p
        gains = _uniform(seed, 33, 1 - cfg.cast, 1 + cfg.cast, shape=(3,))
        img = tf.where(use, tf.clip_by_value(img * gains, 0.0, 1.0), img)
    if cfg.gamma_p > 0:
        use = _uniform(seed, 34) < cfg.gamma_p
        gamma = _uniform(seed, 35, cfg.gamma_range[0], cfg.gamma_range[1])
        img = tf.where(use, tf.pow(tf.maximum(img, 1e-6), gamma), img)
    if cfg.blur_p > 0:
        use = _uniform(seed, 36) < cfg.blur_p
        sigma = _uniform(seed, 37, 0.3, cfg.blur_sigma)
        r = int(math.ceil(3 * cfg.blur_sigma))
        xs = tf.range(-r, r + 1, dtype=tf.float32)
        k = tf.exp(-0.5 * tf.square(xs / sigma))
        k = k / tf.reduce_sum(k)
        kx = tf.tile(tf.reshape(k, [1, -1, 1, 1]), [1, 1, 3, 1])
        ky = tf.tile(tf.reshape(k, [-1, 1, 1, 1]), [1, 1, 3, 1])
        padded = tf.pad(img[None], [[0, 0], [r, r], [r, r], [0, 0]], mode="SYMMETRIC")
        blurred = tf.nn.depthwise_conv2d(padded, kx, [1, 1, 1, 1], "VALID")
        blurred = tf.nn.depthwise_conv2d(blurred, ky, [1, 1, 1, 1], "VALID")[0]
        img = tf.where(use, blurred, img)
    return img


def train_dataset(
    images: np.ndarray,
    masks: np.ndarray,
    batch_size: int,
    cfg: AugmentConfig,
    seed: int,
    epoch: int,
    base_scale: float = 1.0,
    out_size: Optional[Tuple[int, int]] = None,
    drop_remainder: bool = True,
    images_tensor: Optional[tf.Tensor] = None,
    masks_tensor: Optional[tf.Tensor] = None,
    shard: Optional[Tuple[int, int]] = None,
) -> tf.data.Dataset:
    """Batches of one epoch: shuffled by ``(seed, epoch)``, augmented, prefetched.

    ``images_tensor``/``masks_tensor`` let the caller convert the arrays to tensors once and
    reuse them every epoch.

    ``shard=(index, count)`` (multi-worker training): of every global batch of ``batch_size``
    samples, this worker gets the ``index``-th of ``count`` equal consecutive slices, so the
    workers together see exactly the batches, samples and augmentations of a single process
    (augmentation seeds are keyed on the sample, not on its position).  Batches then hold
    ``batch_size // count`` samples, and the last partial global batch is dropped.
    """
    if images.ndim != 4 or masks.ndim != 3 or images.shape[:3] != masks.shape:
        raise InvalidArgumentError(
            f"images/masks: expected (N,H,W,3) and (N,H,W) of matching size, got {images.shape} and {masks.shape}"
        )
    if batch_size < 1:
        raise InvalidArgumentError(f"batch_size: must be >= 1, got {batch_size}")
    cfg.validate()
    n = images.shape[0]
    if drop_remainder and n < batch_size:
        drop_remainder = False
    order = np.random.default_rng([seed, epoch]).permutation(n).astype(np.int64)
    if shard is not None:
        order, batch_size = _shard_order(order, batch_size, shard)
        drop_remainder = True
    imgs = images_tensor if images_tensor is not None else tf.constant(images)
    msks = masks_tensor if masks_tensor is not None else tf.constant(masks)
    epoch_key = np.int64(seed) * 100_003 + np.int64(epoch)

    def load(i):
        s = tf.stack([tf.constant(epoch_key, tf.int64), i])
        return augment_sample(tf.gather(imgs, i), tf.gather(msks, i), s, cfg, base_scale, out_size)

    ds = tf.data.Dataset.from_tensor_slices(order)
    ds = ds.map(load, num_parallel_calls=2, deterministic=True)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(2)


def _shard_order(order: np.ndarray, batch_size: int, shard: Tuple[int, int]) -> Tuple[np.ndarray, int]:
    """This worker's slice of every full global batch of ``order``, and its per-worker batch size."""
    index, count = int(shard[0]), int(shard[1])
    if count < 1 or not 0 <= index < count:
        raise InvalidArgumentError(f"shard: expected (index, count) with 0 <= index < count, got {shard}")
    if batch_size % count:
        raise InvalidArgumentError(
            f"batch_size: the global batch {batch_size} must be divisible by the {count} workers; pick a multiple of {count}"
        )
    steps = len(order) // batch_size
    if steps < 1:
        raise InvalidArgumentError(
            f"batch_size: {len(order)} training samples do not fill one global batch of {batch_size}; "
            "lower --batch-size or use more samples"
        )
    per = batch_size // count
    sliced = order[: steps * batch_size].reshape(steps, batch_size)[:, index * per : (index + 1) * per]
    return np.ascontiguousarray(sliced).reshape(-1), per
