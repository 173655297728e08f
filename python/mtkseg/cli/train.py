"""``mtkseg train``: train the reference UNet on an image/mask folder dataset (train extra)."""

from __future__ import annotations

import argparse
import importlib
import os

from ..errors import TrainingError

HELP = "train a segmentation model (needs the train extra: pip install 'mtkseg[train]')"


def _hw(text: str):
    parts = text.lower().replace("x", " ").replace(",", " ").split()
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected HxW, e.g. 240x320, got {text!r}")
    return int(parts[0]), int(parts[1])


def _range(text: str):
    parts = text.replace(",", " ").replace(":", " ").split()
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX, e.g. 0.75,1.5, got {text!r}")
    return float(parts[0]), float(parts[1])


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``mtkseg train`` (shared with ``python -m mtkseg.train``)."""
    p.add_argument("--data", required=True, help="dataset folder: images/{split}, masks/{split}, classes.json")
    p.add_argument("--out", default="runs/unet", help="run directory (checkpoints, log.csv, curves.png)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")
    p.add_argument("--init-weights", default=None, metavar="PATH",
                   help="start a new run from these *.weights.h5 (fine-tuning; fresh optimizer and schedule)")
    p.add_argument("--train-split", default="train",
                   help="split(s) to train on, joined by '+' (e.g. train+val for a final model)")
    p.add_argument("--val-split", default="val", help="validation split of --data (default val)")
    g = p.add_argument_group("model")
    g.add_argument("--arch", default="unet", choices=("unet", "lite0-fpn", "lite1-fpn", "lite2-fpn"),
                   help="unet: the origin's residual UNet from scratch (default); liteN-fpn: EfficientNet-LiteN "
                        "encoder (ImageNet weights) + light FPN decoder, logits at 1/4")
    g.add_argument("--channels", type=int, default=96, help="liteN-fpn: decoder channels (default 96)")
    g.add_argument("--head-channels", type=int, default=64, help="liteN-fpn: channels of the last refinement (default 64)")
    g.add_argument("--output-stride", type=int, default=4, choices=(2, 4),
                   help="liteN-fpn: logits at 1/4 of the input, or 1/2 with a residual refinement (default 4)")
    g.add_argument("--fine-channels", type=int, default=24,
                   help="liteN-fpn --output-stride 2: channels of the stride-2 refinement (default 24)")
    g.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                   help="liteN-fpn: random encoder instead of the ImageNet weights")
    g.add_argument("--base", type=int, default=12, help="channels of the first level (default 12)")
    g.add_argument("--depth", type=int, default=5, help="levels incl. bridge (default 5)")
    g.add_argument("--no-residual", dest="residual", action="store_false", help="plain instead of residual blocks")
    g.add_argument("--input-size", type=_hw, default=(240, 320), metavar="HxW",
                   help="deployment/validation size, divisible by 2**(depth-1) (default 240x320)")
    g = p.add_argument_group("augmentation")
    g.add_argument("--crop", type=_hw, default=None, metavar="HxW", help="train on random crops of this size")
    g.add_argument("--scale", type=_range, default=None, metavar="MIN,MAX",
                   help="random scale range around input-size/native (e.g. 0.75,1.5); off by default")
    g.add_argument("--flip-p", type=float, default=0.5, help="probability of a horizontal flip (default 0.5)")
    g.add_argument("--brightness-p", type=float, default=0.1,
                   help="probability of a random brightness change (default 0.1)")
    g.add_argument("--noise-p", type=float, default=0.1, help="probability of added Gaussian noise (default 0.1)")
    g.add_argument("--noise-std", type=float, default=0.03, help="gaussian noise std on [0,1] images")
    g.add_argument("--color-jitter-p", type=float, default=0.0,
                   help="probability of colour jitter (contrast, saturation, brightness); off by default")
    g.add_argument("--color-jitter", type=float, default=0.3, help="colour jitter strength j: factors U(1-j, 1+j)")
    g.add_argument("--hue-p", type=float, default=0.0, help="probability of a hue rotation (off by default)")
    g.add_argument("--hue", type=float, default=0.05, help="largest hue rotation, in turns (default 0.05)")
    g.add_argument("--gamma-p", type=float, default=0.0, help="probability of a gamma U(0.7, 1.5) (off by default)")
    g.add_argument("--cast-p", type=float, default=0.0, help="probability of a per-channel colour cast (off by default)")
    g.add_argument("--cast", type=float, default=0.15, help="colour cast strength c: channel gains U(1-c, 1+c)")
    g.add_argument("--blur-p", type=float, default=0.0, help="probability of a gaussian blur, sigma U(0.3, 1.5)")
    g.add_argument("--sky-p", type=float, default=0.0,
                   help="probability of recolouring the pixels labelled Sky as a clear blue sky (off by default)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    g.add_argument("--batch-size", type=int, default=8, help="images per batch (default 8)")
    g.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (default 5e-4)")
    g.add_argument("--schedule", choices=("exp", "cosine", "constant"), default="exp",
                   help="exp: lr*0.8^(epoch/3) (default); cosine: to 0 at --epochs")
    g.add_argument("--warmup-epochs", type=float, default=0.0, help="linear warm-up from lr/10 (default 0)")
    g.add_argument("--encoder-lr-mult", type=float, default=1.0,
                   help="liteN-fpn: encoder learning rate = lr x this (default 1)")
    g.add_argument("--freeze-encoder-epochs", type=float, default=0.0,
                   help="liteN-fpn: train only the decoder for this many epochs first (default 0)")
    g.add_argument("--l2", type=float, default=5e-5, help="lambda of the L2 penalty on conv kernels")
    g.add_argument("--class-weights", default=None,
                   help="'median' (median-frequency from the train masks), 'median-sqrt' (its square root, "
                        "milder) or comma-separated weights; default: unweighted")
    g.add_argument("--ohem", type=float, default=None, metavar="P",
                   help="online hard example mining: only pixels whose true-class probability is below P count "
                        "(e.g. 0.7; default off)")
    g.add_argument("--ohem-min-kept", type=float, default=1 / 16, metavar="SHARE",
                   help="with --ohem: keep at least this share of the labelled pixels, the hardest (default 1/16)")
    g.add_argument("--lovasz", type=float, default=0.0, metavar="W",
                   help="add W x the Lovász-softmax loss (a surrogate of 1 - IoU, good for fine-tuning thin "
                        "classes; e.g. 1; default 0)")
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, default=0, help="random seed for weights, shuffling and augmentation (default 0)")
    g.add_argument("--threads", type=int, default=2, help="TensorFlow intra-op threads (default 2)")
    g.add_argument("--val-every", type=int, default=1, help="validate every N epochs (default 1)")
    g.add_argument("--limit-train", type=int, default=None, help="use the first N training samples")
    g.add_argument("--limit-val", type=int, default=None, help="use the first N validation samples")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    g = p.add_argument_group("multi-worker (TensorFlow MultiWorkerMirroredStrategy)")
    g.add_argument("--distribute", choices=("none", "multiworker"), default="none",
                   help="multiworker: this process is one worker of a cluster read from TF_CONFIG or --workers; "
                        "--batch-size is the global batch, split over the workers; the chief (worker 0) writes --out")
    g.add_argument("--workers", default=None, metavar="HOST:PORT,...",
                   help="with --distribute multiworker: every worker's address, the chief first (instead of TF_CONFIG)")
    g.add_argument("--worker-index", type=int, default=None, metavar="N",
                   help="with --workers: this process's position in the list (0: the chief)")


def config_from_args(args: argparse.Namespace):
    """Build a :class:`mtkseg.train.loop.TrainConfig` from parsed arguments."""
    from ..train.loop import TrainConfig

    weights = args.class_weights
    if weights is not None and weights not in ("median", "median-sqrt"):
        try:
            weights = [float(v) for v in weights.split(",")]
        except ValueError:
            raise TrainingError(f"--class-weights: expected 'median', 'median-sqrt' or numbers, got {args.class_weights!r}") from None
    return TrainConfig(
        data=args.data, out=args.out, train_split=args.train_split, val_split=args.val_split,
        arch=args.arch, channels=args.channels, head_channels=args.head_channels,
        output_stride=args.output_stride, fine_channels=args.fine_channels,
        ohem_threshold=args.ohem, ohem_min_kept=args.ohem_min_kept, lovasz_weight=args.lovasz, pretrained=args.pretrained,
        encoder_lr_mult=args.encoder_lr_mult, freeze_encoder_epochs=args.freeze_encoder_epochs,
        hue_p=args.hue_p, hue=args.hue, gamma_p=args.gamma_p, cast_p=args.cast_p, cast=args.cast,
        blur_p=args.blur_p, sky_p=args.sky_p,
        base=args.base, depth=args.depth, residual=args.residual, input_size=args.input_size,
        crop_size=args.crop, scale_range=args.scale, flip_p=args.flip_p, brightness_p=args.brightness_p,
        noise_p=args.noise_p, noise_std=args.noise_std,
        color_jitter_p=args.color_jitter_p, color_jitter=args.color_jitter, init_weights=args.init_weights,
        epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, schedule=args.schedule, warmup_epochs=args.warmup_epochs, l2=args.l2,
        class_weights=weights, seed=args.seed, threads=args.threads, limit_train=args.limit_train,
        limit_val=args.limit_val, val_every=args.val_every, progress=args.progress,
    )


def cluster_from_args(args: argparse.Namespace):
    """The :class:`mtkseg.train.distribute.Cluster` of ``--distribute multiworker``, or None."""
    distribute = getattr(args, "distribute", "none")
    workers, index = getattr(args, "workers", None), getattr(args, "worker_index", None)
    if distribute != "multiworker":
        if workers or index is not None:
            raise TrainingError("--workers/--worker-index need --distribute multiworker")
        return None
    from ..train.distribute import resolve_cluster

    return resolve_cluster(workers, index)


#: Top-level modules of the train extra that mtkseg.train imports (some only once training starts).
TRAIN_EXTRA_MODULES = ("tensorflow", "keras")


def _missing_extra(exc: ImportError) -> TrainingError:
    return TrainingError(f"mtkseg train needs the train extra (TensorFlow/Keras), which is not usable here ({exc}); "
                         "install it with: pip install 'mtkseg[train]'")


def require_train_extra() -> None:
    """Raise :class:`TrainingError` naming ``pip install 'mtkseg[train]'`` unless TensorFlow
    and Keras are importable (checked before any data is read: mtkseg.train imports them lazily)."""
    for module in TRAIN_EXTRA_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise _missing_extra(exc) from exc


def handler(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    require_train_extra()
    try:
        from ..train.loop import train
    except ImportError as exc:
        raise _missing_extra(exc) from exc
    cluster = cluster_from_args(args)
    result = train(config_from_args(args), resume=args.resume, log=lambda s: print(s, flush=True), cluster=cluster)
    if cluster is not None and not cluster.is_chief:
        print(f"worker {cluster.index} done; the chief wrote {result.run_dir}")
        return 0
    best = result.run_dir / "best.weights.h5"
    where = f"weights: {best}" if best.is_file() else "its weights are not in this run directory (resumed copy)"
    print(f"best val mIoU {100 * result.best_miou:.2f} at epoch {result.best_epoch}; {where}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help=HELP, description=HELP)
    add_arguments(p)
    p.set_defaults(func=handler)
