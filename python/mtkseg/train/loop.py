"""The training loop: epochs of augmented crops, validation, checkpoints, CSV log, resume.

A run directory holds::

    config.json           the TrainConfig (model, data, recipe) and the dataset's classes
    log.csv               one row per epoch
    state.json            last finished epoch, best val mIoU and its epoch
    last.weights.h5       weights after the last finished epoch (the resume point)
    last.optimizer.npz    Adam state after the last finished epoch (optional for resume)
    best.weights.h5       weights with the best val mIoU so far
    best_metrics.json     val metrics of the best epoch
    curves.png            loss and mIoU curves

``resume=True`` continues from ``last.weights.h5`` at ``state.json``'s epoch + 1; without the
optimizer file Adam restarts from zero moments (a short blip, then training proceeds).

``train(..., cluster=Cluster)`` trains the same recipe on several worker processes
(:mod:`mtkseg.train.distribute`): ``batch_size`` is then the global batch, and only the chief
writes the run directory.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..data import SegmentationDataset, median_frequency_weights, resize_image, resize_mask
from ..errors import InvalidArgumentError, TrainingError
from ..metrics import ConfusionMatrix, SegmentationMetrics

__all__ = ["TrainConfig", "TrainResult", "train", "configure_threads", "load_run_config", "model_from_config"]

LOG_FIELDS = [
    "epoch", "lr", "train_loss", "train_miou", "val_loss", "val_miou", "val_pixel_acc", "seconds", "images_per_s",
]


@dataclass
class TrainConfig:
    """Everything that defines a training run (the defaults are the reference recipe)."""

    data: str = ""
    out: str = "runs/unet"
    train_split: str = "train"
    val_split: str = "val"
    num_classes: Optional[int] = None  # None: from classes.json
    arch: str = "unet"  # one of mtkseg.train.models.ARCHS
    channels: int = 96  # *-fpn: decoder channels
    head_channels: int = 64  # *-fpn: channels of the last (stride-4) refinement
    output_stride: int = 4  # *-fpn: 4, or 2 for a residual stride-2 refinement of the logits
    fine_channels: int = 24  # *-fpn with output_stride 2: channels of the stride-2 refinement
    pretrained: bool = True  # *-fpn: start the encoder from its ImageNet weights
    encoder_lr_mult: float = 1.0  # encoder learning rate = lr * encoder_lr_mult
    freeze_encoder_epochs: float = 0.0  # train only the decoder for this many epochs first
    base: int = 12
    depth: int = 5
    residual: bool = True
    bn_momentum: float = 0.9
    input_size: Tuple[int, int] = (240, 320)  # deployment (export) size, H x W
    crop_size: Optional[Tuple[int, int]] = None  # None: train on whole frames at input_size
    scale_range: Optional[Tuple[float, float]] = None  # random scale around input_size / native
    flip_p: float = 0.5
    brightness_p: float = 0.1
    noise_p: float = 0.1
    noise_std: float = 0.03
    color_jitter_p: float = 0.0
    color_jitter: float = 0.3
    hue_p: float = 0.0
    hue: float = 0.05
    gamma_p: float = 0.0
    cast_p: float = 0.0
    cast: float = 0.15
    blur_p: float = 0.0
    sky_p: float = 0.0
    init_weights: Optional[str] = None  # start a fresh run from these weights (fine-tuning)
    epochs: int = 30
    batch_size: int = 8
    lr: float = 5e-4
    schedule: str = "exp"
    lr_decay: float = 0.8
    lr_decay_every: float = 3.0
    warmup_epochs: float = 0.0
    l2: float = 5e-5
    class_weights: Optional[Union[str, List[float]]] = None  # None, "median", "median-sqrt" or a list
    ohem_threshold: Optional[float] = None  # OHEM: only pixels with true-class probability below this count
    ohem_min_kept: float = 1 / 16  # OHEM: and at least this share of the labelled pixels (the hardest)
    lovasz_weight: float = 0.0  # loss = CE + this x Lovasz-softmax (a surrogate of 1 - IoU)
    seed: int = 0
    threads: int = 2
    limit_train: Optional[int] = None
    limit_val: Optional[int] = None
    val_every: int = 1
    progress: bool = True

    def validate(self) -> None:
        if not self.data:
            raise InvalidArgumentError("data: give the dataset folder (images/, masks/, classes.json)")
        from .models import ARCHS

        if self.arch not in ARCHS:
            raise InvalidArgumentError(f"arch: expected one of {', '.join(ARCHS)}, got {self.arch!r}")
        factor = 2 ** (self.depth - 1) if self.arch == "unet" else 32
        rule = "2**(depth-1)" if self.arch == "unet" else "the encoder's stride"
        for name, size in (("input_size", self.input_size), ("crop_size", self.crop_size)):
            if size is None:
                continue
            if len(size) != 2 or min(size) < factor or any(int(s) % factor for s in size):
                raise InvalidArgumentError(f"{name}: {size} must be two sizes divisible by {rule} = {factor}")
        if not 0 < self.encoder_lr_mult <= 10 or self.freeze_encoder_epochs < 0:
            raise InvalidArgumentError(
                f"encoder_lr_mult must be in (0, 10] and freeze_encoder_epochs >= 0, got "
                f"{self.encoder_lr_mult} and {self.freeze_encoder_epochs}"
            )
        if self.epochs < 1 or self.batch_size < 1 or self.val_every < 1:
            raise InvalidArgumentError("epochs, batch_size and val_every must be >= 1")
        if self.lr <= 0 or self.l2 < 0:
            raise InvalidArgumentError(f"lr must be > 0 and l2 >= 0, got lr={self.lr} l2={self.l2}")
        if self.schedule not in ("exp", "cosine", "constant"):
            raise InvalidArgumentError(f"schedule: expected exp, cosine or constant, got {self.schedule!r}")
        if self.ohem_threshold is not None:
            from .losses import check_ohem

            check_ohem((self.ohem_threshold, self.ohem_min_kept))
        if not 0.0 <= self.lovasz_weight <= 100.0:
            raise InvalidArgumentError(f"lovasz_weight: expected a number in [0, 100], got {self.lovasz_weight}")
        if isinstance(self.class_weights, str) and self.class_weights not in ("median", "median-sqrt"):
            raise InvalidArgumentError(
                f"class_weights: expected None, 'median', 'median-sqrt' or a list, got {self.class_weights!r}"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("input_size", "crop_size", "scale_range"):
            if d[k] is not None:
                d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        for k in ("input_size", "crop_size", "scale_range"):
            if kw.get(k) is not None:
                kw[k] = tuple(kw[k])
        return cls(**kw)


@dataclass
class TrainResult:
    """Outcome of :func:`train`."""

    run_dir: Path
    best_epoch: int
    best_miou: float
    last_epoch: int
    best_metrics: Optional[dict] = None
    history: List[dict] = field(default_factory=list)


def configure_threads(threads: int) -> None:
    """Limit TensorFlow to ``threads`` intra-op threads (call before any TF op runs)."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, int(threads))))
    except RuntimeError:
        pass  # already initialised: keep the existing setting


def load_run_config(path: Union[str, "os.PathLike[str]"]) -> Tuple[TrainConfig, dict]:
    """Read ``config.json`` of a run directory (or the file itself): ``(TrainConfig, classes dict)``."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    if not p.is_file():
        raise TrainingError(f"{p}: run config not found (a run directory written by `mtkseg train` has one)")
    doc = json.loads(p.read_text())
    return TrainConfig.from_dict(doc["train"]), doc.get("classes", {})


def init_from_weights(model, weights: Union[str, "os.PathLike[str]"], num_classes: int) -> str:
    """Initialise ``model`` from a ``.weights.h5`` file; returns a line saying what was loaded.

    Keras matches a weights file to a model by position, so a file from a different
    architecture cannot load directly.  Where the file sits in a run directory (its
    ``config.json`` beside it), the run's own model is rebuilt, loaded, and its weights copied
    layer by layer *by name*: that is how a stride-2 model starts from stride-4 weights.  Layers
    the file does not have keep their fresh initialisation and are named in the returned line;
    a layer present in both with different weight shapes is an error.
    """
    path = Path(weights)
    if not path.is_file():
        raise TrainingError(f"--init-weights {path}: no such file")
    run_config = path.parent / "config.json"
    if not run_config.is_file():
        try:
            model.load_weights(str(path))
        except Exception as exc:  # noqa: BLE001 - keras raises several types for mismatched files
            raise TrainingError(f"--init-weights {path}: cannot load into this model ({exc}); a file inside a "
                                "run directory (with its config.json) loads layer by layer instead") from exc
        return f"initialised from {path}"
    source_cfg, _ = load_run_config(run_config)
    source = model_from_config(source_cfg, source_cfg.num_classes or num_classes)
    try:
        source.load_weights(str(path))
    except Exception as exc:  # noqa: BLE001
        raise TrainingError(f"--init-weights {path}: does not match its run's {run_config} ({exc})") from exc
    by_name = {layer.name: layer for layer in source.layers if layer.weights}
    copied, fresh = 0, []
    for layer in model.layers:
        if not layer.weights:
            continue
        src = by_name.get(layer.name)
        if src is None:
            fresh.append(layer.name)
            continue
        values = src.get_weights()
        shapes = [tuple(v.shape) for v in values]
        if shapes != [tuple(w.shape) for w in layer.weights]:
            raise TrainingError(f"--init-weights {path}: layer {layer.name} has weights {shapes} there but "
                                f"{[tuple(w.shape) for w in layer.weights]} here (a different width or class count)")
        layer.set_weights(values)
        copied += 1
    line = f"initialised {copied} layers by name from {path}"
    if fresh:
        line += f"; new (freshly initialised): {', '.join(fresh)}"
    return line


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, leave=False, mininterval=0.5 if tty else 60.0, disable=None if tty else False)


def split_names(spec: str) -> List[str]:
    """``"train+val"`` → ``["train", "val"]`` (the splits trained on together)."""
    names = [name.strip() for name in str(spec).split("+")]
    if not all(names) or len(set(names)) != len(names):
        raise TrainingError(f"train_split: expected split names joined by '+', e.g. 'train' or 'train+val', got {spec!r}")
    return names


def _native_size(ds: SegmentationDataset) -> Tuple[int, int]:
    img, _ = ds[0]
    return int(img.shape[0]), int(img.shape[1])


class _Validator:
    """Val loss at model resolution and dataset-level metrics at native mask resolution."""

    def __init__(self, model, images, masks_native, input_size, num_classes, class_names, ignore_index, weights):
        import tensorflow as tf

        from .losses import masked_cross_entropy

        self.model = model
        self.inputs = np.stack([resize_image(im, input_size) for im in images]).astype(np.float32) / 255.0
        self.masks_small = np.stack([resize_mask(m, input_size) for m in masks_native])
        self.masks_native = masks_native
        self.num_classes = num_classes
        self.class_names = class_names
        self.ignore_index = ignore_index

        @tf.function(reduce_retracing=True)
        def step(x, y):
            logits = to_label_size(model(x, training=False), y)
            loss = masked_cross_entropy(y, logits, weights, ignore_index)
            return loss, tf.cast(tf.argmax(logits, axis=-1), tf.uint8)

        self.step = step

    def __call__(self, batch_size: int) -> Tuple[float, SegmentationMetrics]:
        import cv2

        cm = ConfusionMatrix(self.num_classes, self.ignore_index, self.class_names)
        losses, counts = [], []
        for i in range(0, len(self.inputs), batch_size):
            x, y = self.inputs[i : i + batch_size], self.masks_small[i : i + batch_size]
            loss, pred = self.step(x, y)
            losses.append(float(loss))
            counts.append(int(np.sum(y != self.ignore_index)))
            for j, p in enumerate(pred.numpy()):
                gt = self.masks_native[i + j]
                p_native = cv2.resize(p, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_NEAREST)
                cm.update(gt, p_native)
        val_loss = float(np.average(losses, weights=np.maximum(counts, 1)))
        return val_loss, cm.results()


def train(config: TrainConfig, resume: bool = False, log: Callable[[str], None] = print,
          cluster=None) -> TrainResult:
    """Run (or resume) a training run; see the module docstring for what it writes.

    ``cluster`` (a :class:`mtkseg.train.distribute.Cluster`) runs this process as one worker
    of a multi-worker run; on workers other than the chief the result has no best epoch (-1).
    """
    config.validate()
    run_dir = Path(config.out)
    state_path = run_dir / "state.json"
    if resume:
        if not state_path.is_file() or not (run_dir / "last.weights.h5").is_file():
            raise TrainingError(
                f"{run_dir}: nothing to resume (needs state.json and last.weights.h5); drop --resume to start fresh"
            )
        saved, _ = load_run_config(run_dir)
        for key in ("arch", "base", "depth", "residual", "channels", "head_channels", "output_stride", "fine_channels",
                    "num_classes"):
            if getattr(saved, key) != getattr(config, key) and getattr(config, key) is not None:
                raise TrainingError(
                    f"--resume: {key}={getattr(config, key)!r} differs from the run's {getattr(saved, key)!r}"
                )
    elif state_path.is_file():
        raise TrainingError(f"{run_dir}: already holds a run; pass --resume to continue it or pick another --out")

    configure_threads(config.threads)
    multi = None
    if cluster is not None:
        from .distribute import MultiWorker

        multi = MultiWorker(cluster)  # before any other TF op
        log = multi.log(log)
    chief = multi is None or multi.is_chief
    import keras
    import tensorflow as tf

    from .losses import conv_kernels, l2_penalty, learning_rate, lovasz_term, masked_cross_entropy
    from .models import count_macs
    from .pipeline import AugmentConfig, train_dataset

    keras.utils.set_random_seed(config.seed)

    # ---- data (decoded once, kept in memory) ----
    t0 = time.time()
    train_parts = [SegmentationDataset(config.data, name) for name in split_names(config.train_split)]
    train_ds = train_parts[0]
    val_ds = SegmentationDataset(config.data, config.val_split)
    if config.val_split in split_names(config.train_split):
        log(f"note: the validation split '{config.val_split}' is also trained on, so validation measures fit, not "
            "generalisation; export last.weights.h5 rather than the 'best' epoch")
    classes = train_ds.classes
    num_classes = config.num_classes or classes.num_classes
    if num_classes != classes.num_classes:
        raise TrainingError(f"num_classes={num_classes} but {config.data}/classes.json has {classes.num_classes}")
    config.num_classes = num_classes
    native = _native_size(train_ds)
    loaded = [ds.load_all(size=native) for ds in train_parts]
    train_images = np.concatenate([images for images, _ in loaded])[:config.limit_train]
    train_masks = np.concatenate([masks for _, masks in loaded])[:config.limit_train]
    del loaded
    val_images, val_masks = val_ds.load_all(limit=config.limit_val)
    log(f"loaded {len(train_images)} train / {len(val_images)} val samples at {native[1]}x{native[0]} "
        f"in {time.time() - t0:.1f}s")

    weights_np = None
    if config.class_weights in ("median", "median-sqrt"):
        weights_np = median_frequency_weights(train_masks, num_classes, classes.ignore_index)
        if config.class_weights == "median-sqrt":
            weights_np = np.sqrt(weights_np).astype(np.float32)
    elif config.class_weights is not None:
        weights_np = np.asarray(config.class_weights, np.float32)
        if weights_np.shape != (num_classes,) or (weights_np < 0).any():
            raise InvalidArgumentError(f"class_weights: need {num_classes} non-negative values, got {config.class_weights}")
    if weights_np is not None:
        log("class weights: " + " ".join(f"{w:.3f}" for w in weights_np))
    class_weights = None if weights_np is None else tf.constant(weights_np, tf.float32)

    doc = {"format": "mtkseg-train-run/1", "train": config.to_dict(), "classes": classes.to_dict(),
           "native_size": list(native), "class_weights": None if weights_np is None else weights_np.tolist()}
    if multi is not None:
        multi.check_batch(config.batch_size, len(train_images))
    if chief:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(doc, indent=1))
    scope = multi.scope() if multi is not None else nullcontext()
    # ---- model / optimizer (and their restored state: mirrored variables under a strategy) ----
    with scope:
        model = model_from_config(config, num_classes)
        log(f"model: {config.arch}, {model.count_params():,} parameters, "
            f"{count_macs(model, config.input_size) / 1e9:.2f} GMACs at {config.input_size[0]}x{config.input_size[1]}")
        if config.arch != "unet" and config.pretrained and not resume and not config.init_weights:
            from .efficientnet_lite import load_imagenet_weights

            variant = config.arch.split("-")[0]
            load_imagenet_weights(model, variant)
            log(f"encoder: ImageNet weights of EfficientNet-{variant.capitalize()}")
        groups = _ParamGroups(model, config, keras)
        kernels = conv_kernels(model)
        if multi is not None:
            n_bn = multi.synchronize_batch_norm(model)
            log(f"multi-worker: {multi.num_workers} workers, global batch {config.batch_size} "
                f"({config.batch_size // multi.num_workers} per worker), {n_bn} BatchNorm layers synchronized")

        start_epoch, best_miou, best_epoch = 0, -1.0, -1
        if config.init_weights and not resume:
            log(init_from_weights(model, config.init_weights, num_classes))
        if resume:
            state = json.loads(state_path.read_text())
            model.load_weights(run_dir / "last.weights.h5")
            opt_path = run_dir / "last.optimizer.npz"
            if opt_path.is_file():
                saved_vars = np.load(opt_path)
                vars_ = groups.optimizer_variables()
                if len(saved_vars.files) == len(vars_):
                    for i, v in enumerate(vars_):
                        v.assign(saved_vars[f"v{i}"])
                else:
                    log("warning: optimizer state does not match; Adam restarts from zero moments")
            else:
                log("no optimizer state saved; Adam restarts from zero moments")
            start_epoch = int(state["epoch"]) + 1
            best_miou, best_epoch = float(state.get("best_miou", -1.0)), int(state.get("best_epoch", -1))
            log(f"resumed {run_dir} after epoch {start_epoch - 1} (best val mIoU {100 * best_miou:.2f} @ {best_epoch})")
            if chief:
                _truncate_log(run_dir / "log.csv", start_epoch)

    aug = AugmentConfig(
        flip_p=config.flip_p, brightness_p=config.brightness_p, noise_p=config.noise_p, noise_std=config.noise_std,
        color_jitter_p=config.color_jitter_p, color_jitter=config.color_jitter,
        scale_range=config.scale_range, crop_size=config.crop_size, ignore_index=classes.ignore_index,
        hue_p=config.hue_p, hue=config.hue, gamma_p=config.gamma_p, cast_p=config.cast_p, cast=config.cast,
        blur_p=config.blur_p, sky_p=config.sky_p, sky_class=_sky_class(classes.names) if config.sky_p > 0 else None,
    )
    base_scale = config.input_size[0] / native[0]
    images_t, masks_t = tf.constant(train_images), tf.constant(train_masks)
    n_train = len(train_images)
    steps = n_train // config.batch_size if n_train >= config.batch_size else 1

    ohem = None if config.ohem_threshold is None else (config.ohem_threshold, config.ohem_min_kept)

    @tf.function(reduce_retracing=True)
    def train_step(x, y, frozen):
        with tf.GradientTape() as tape:
            logits = to_label_size(model(x, training=True), y)
            ce = masked_cross_entropy(y, logits, class_weights, classes.ignore_index, ohem)
            loss = ce + config.l2 * l2_penalty(kernels) if config.l2 > 0 else ce
            if config.lovasz_weight > 0:
                loss = loss + config.lovasz_weight * lovasz_term(y, logits, classes.ignore_index)
        grads = tape.gradient(loss, model.trainable_variables)
        groups.apply(grads, frozen)
        return ce, tf.cast(tf.argmax(logits, axis=-1), tf.uint8)

    if multi is not None:
        train_step = multi.train_step(model, groups, kernels, class_weights, classes.ignore_index, config.l2,
                                      to_label_size, ohem=ohem, lovasz_weight=config.lovasz_weight)
    validator = _Validator(model, val_images, val_masks, config.input_size, num_classes, classes.names,
                           classes.ignore_index, class_weights)
    history: List[dict] = []
    best_metrics = None
    for epoch in range(start_epoch, config.epochs):
        t_epoch = time.time()
        def epoch_dataset(shard=None):
            return train_dataset(train_images, train_masks, config.batch_size, aug, config.seed, epoch, base_scale,
                                 tuple(config.input_size), images_tensor=images_t, masks_tensor=masks_t, shard=shard)

        ds = epoch_dataset() if multi is None else multi.dataset(epoch_dataset)
        cm = ConfusionMatrix(num_classes, classes.ignore_index, classes.names)
        loss_sum, n_seen = 0.0, 0
        for step, (x, y) in enumerate(_progress(ds, steps, f"epoch {epoch}", config.progress)):
            lr = learning_rate(epoch + step / steps, config.lr, config.schedule, config.epochs,
                               config.lr_decay, config.lr_decay_every, config.warmup_epochs)
            groups.set_learning_rate(lr)
            frozen = epoch + step / steps < config.freeze_encoder_epochs
            if multi is None:
                ce, pred = train_step(x, y, frozen)
            else:
                ce, pred, y = train_step(x, y, frozen)  # y: the labels of the whole global batch
            ce = float(ce)
            if not math.isfinite(ce):
                raise TrainingError(f"epoch {epoch} step {step}: loss is {ce}; lower --lr or check the data")
            loss_sum += ce * int(y.shape[0])
            n_seen += int(y.shape[0])
            cm.update(y.numpy(), pred.numpy())
        train_seconds = time.time() - t_epoch
        row = {"epoch": epoch, "lr": lr, "train_loss": loss_sum / max(n_seen, 1), "train_miou": cm.results().miou}
        if chief and ((epoch + 1) % config.val_every == 0 or epoch + 1 == config.epochs):
            val_loss, val_metrics = validator(config.batch_size)
            row.update(val_loss=val_loss, val_miou=val_metrics.miou, val_pixel_acc=val_metrics.pixel_accuracy)
        else:
            val_metrics = None
            row.update(val_loss=float("nan"), val_miou=float("nan"), val_pixel_acc=float("nan"))
        row.update(seconds=time.time() - t_epoch, images_per_s=n_seen / max(train_seconds, 1e-9))
        history.append(row)

        with (multi.write_dir(run_dir) if multi is not None else nullcontext(run_dir)) as out_dir:
            model.save_weights(out_dir / "last.weights.h5")
            np.savez(out_dir / "last.optimizer.npz", **{f"v{i}": v.numpy() for i, v in enumerate(groups.optimizer_variables())})
            if val_metrics is not None and val_metrics.miou > best_miou:
                best_miou, best_epoch = float(val_metrics.miou), epoch
                shutil.copyfile(out_dir / "last.weights.h5", out_dir / "best.weights.h5")
                best_metrics = {"epoch": epoch, **val_metrics.to_dict()}
                (out_dir / "best_metrics.json").write_text(json.dumps(best_metrics, indent=1))
            _append_log(out_dir / "log.csv", row)
            (out_dir / "state.json").write_text(json.dumps({"epoch": epoch, "best_miou": best_miou,
                                                            "best_epoch": best_epoch}))
            try:
                from .curves import plot_curves

                plot_curves(out_dir / "log.csv", out_dir / "curves.png", title=run_dir.name)
            except Exception as exc:  # noqa: BLE001 - a plotting problem must not stop training
                log(f"warning: could not draw curves: {exc}")
        log(f"epoch {epoch:3d}  lr {lr:.2e}  train loss {row['train_loss']:.4f} mIoU {100 * row['train_miou']:5.2f}  "
            f"val loss {row['val_loss']:.4f} mIoU {100 * row['val_miou']:5.2f} acc {100 * row['val_pixel_acc']:5.2f}  "
            f"{row['seconds']:.0f}s ({row['images_per_s']:.2f} img/s)" + ("  *best*" if best_epoch == epoch else ""))
    if best_epoch < 0 and chief:
        raise TrainingError(f"{run_dir}: no epoch was run (epochs={config.epochs}, resumed at {start_epoch})")
    return TrainResult(run_dir, best_epoch, best_miou, max(start_epoch, config.epochs) - 1, best_metrics, history)


def model_from_config(config: TrainConfig, num_classes: int):
    """The Keras model a run's config describes (random or ImageNet-free weights)."""
    from .models import build_model

    return build_model(config.arch, num_classes, base=config.base, depth=config.depth, residual=config.residual,
                       channels=config.channels, head_channels=config.head_channels, bn_momentum=config.bn_momentum,
                       output_stride=config.output_stride, fine_channels=config.fine_channels)


def to_label_size(logits, labels):
    """Bilinearly resize logits to the label map's size where the model predicts at a lower one."""
    import tensorflow as tf

    if logits.shape[1:3] == labels.shape[1:3]:
        return logits
    return tf.image.resize(logits, tf.shape(labels)[1:3], method="bilinear")


def _sky_class(names: Sequence[str]) -> int:
    for i, name in enumerate(names):
        if name.lower() == "sky":
            return i
    raise TrainingError(f"sky recolouring needs a class named 'Sky'; the dataset has {list(names)}")


class _ParamGroups:
    """Adam for the decoder and, with its own learning rate, for the encoder (``encoder_lr_mult``).

    A freeze phase updates only the decoder.  With a multiplier of 1 and no freeze, one
    optimizer covers every variable (the UNet recipe, unchanged).
    """

    def __init__(self, model, config: TrainConfig, keras):
        from .efficientnet_lite import is_encoder_layer

        self.mult = float(config.encoder_lr_mult)
        split = config.arch != "unet" and (self.mult != 1.0 or config.freeze_encoder_epochs > 0)
        enc_ids = set()
        if split:
            for layer in model.layers:
                if is_encoder_layer(layer.name):
                    enc_ids.update(id(v) for v in layer.trainable_weights)
        variables = model.trainable_variables
        self.enc_index = [i for i, v in enumerate(variables) if id(v) in enc_ids]
        self.dec_index = [i for i, v in enumerate(variables) if id(v) not in enc_ids]
        self.variables = variables
        self.dec = keras.optimizers.Adam(learning_rate=config.lr)
        self.dec.build([variables[i] for i in self.dec_index])
        self.enc = None
        if self.enc_index:
            self.enc = keras.optimizers.Adam(learning_rate=config.lr * self.mult)
            self.enc.build([variables[i] for i in self.enc_index])

    def set_learning_rate(self, lr: float) -> None:
        self.dec.learning_rate = lr
        if self.enc is not None:
            self.enc.learning_rate = lr * self.mult

    def apply(self, grads, frozen) -> None:
        import tensorflow as tf

        self.dec.apply_gradients([(grads[i], self.variables[i]) for i in self.dec_index])
        if self.enc is not None:
            def update():
                self.enc.apply_gradients([(grads[i], self.variables[i]) for i in self.enc_index])
                return tf.constant(True)

            tf.cond(tf.convert_to_tensor(frozen), lambda: tf.constant(False), update)

    def optimizer_variables(self) -> list:
        return list(self.dec.variables) + (list(self.enc.variables) if self.enc is not None else [])


def _append_log(path: Path, row: dict) -> None:
    new = not path.is_file()
    with path.open("a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=LOG_FIELDS)
        if new:
            w.writeheader()
        w.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in LOG_FIELDS})


def _truncate_log(path: Path, next_epoch: int) -> None:
    """Drop log rows of epochs >= next_epoch (written before an interrupted save)."""
    if not path.is_file():
        return
    with path.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if int(float(r["epoch"])) < next_epoch]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=LOG_FIELDS)
        w.writeheader()
        w.writerows(rows)
