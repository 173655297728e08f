"""``mtkseg run``: segment images, write mask (and overlay) PNGs, print timings and class shares.

Examples::

    mtkseg run model.tflite street.png -o out/ --overlay
    mtkseg run default photos/ --delegate neuron,cpu --threads 2 --json
    mtkseg run default photos/ "clips/*.mp4" -o out/ --engine ray --workers 4   # a local Ray cluster
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Sequence

from .. import _io
from ._engine import add_engine_arguments, check_engine_arguments, run_ray
from ._types import positive_int, size_hw, unit_float

if TYPE_CHECKING:  # pragma: no cover
    from ..options import SegmenterOptions
    from ..segmenter import Segmenter

HELP = "segment images: write mask/overlay PNGs, print timings and class shares"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def _name_list(text: str):
    """``"gpu"`` → ``"gpu"``; ``"neuron,cpu"`` → ``["neuron", "cpu"]``."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a name or a comma-separated list")
    return items[0] if len(items) == 1 else items


def add_runtime_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by ``info``, ``run``, ``video``, ``eval`` and ``compare`` that choose how the model runs."""
    g = p.add_argument_group("runtime")
    g.add_argument("--delegate", type=_name_list, default="auto",
                   help="auto (default), cpu, gpu, nnapi, neuron, a delegate .so path, or a comma-separated "
                        "fallback list such as neuron,gpu,cpu")
    g.add_argument("--accelerator", type=_name_list, default=None,
                   help="use LiteRT CompiledModel on npu, gpu or cpu (or auto / a comma-separated list) "
                        "instead of the interpreter")
    g.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="CPU threads (default: all usable cores)")
    g.add_argument("--input-size", type=size_hw, default=None, metavar="HxW",
                   help="run a model with a resizable input at this size")
    g.add_argument("--interpolation", choices=("linear", "area", "auto"), default="linear",
                   help="resizing of frames to the model input: linear (default, as in training pipelines), "
                        "area (anti-aliased, slower) or auto (area for downscales of 2x or more)")
    g = p.add_argument_group("model interpretation (what the file does not say, or says wrongly)")
    g.add_argument("--normalization", type=_normalization_arg, default=None, metavar="NAME|MEAN,STD",
                   help="input range of a float model without metadata: unit (x/255, the default guess), raw "
                        "(0..255), symmetric ([-1, 1]) or MEAN,STD in pixel units, e.g. 127.5,127.5")
    g.add_argument("--labels", default=None, metavar="FILE",
                   help="class names: a text label map, one name per line (Coral/MLPerf style; 'INDEX NAME' lines "
                        "too), or a JSON list; overrides the model's metadata and sidecar")
    g.add_argument("--output-tensor", type=_output_arg, default=None, metavar="NAME|INDEX",
                   help="which model output is the segmentation map, by tensor name or index (default: chosen "
                        "from the shapes; `mtkseg info` lists the outputs)")
    g.add_argument("--output-map-size", type=size_hw, default=None, metavar="HxW",
                   help="height and width of a flattened [1, H*W(*C)] output (default: the input's)")


def _normalization_arg(text: str):
    """``--normalization``: a name, or ``MEAN,STD`` (one value each, in 0..255 pixel units),
    checked by the same rules as ``Segmenter(normalization=...)``."""
    from ..errors import MtksegError
    from ..runtime.info import NORMALIZATIONS, parse_normalization

    key = text.strip().lower()
    try:
        value = key if key in NORMALIZATIONS else tuple(float(v) for v in key.split(","))
        parse_normalization(value)
    except (ValueError, MtksegError) as exc:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(sorted(NORMALIZATIONS))} or MEAN,STD (e.g. 127.5,127.5), got {text!r}"
            + (f" ({exc})" if isinstance(exc, MtksegError) else "")) from None
    return value


def _output_arg(text: str):
    """``--output-tensor``: an index when it is a non-negative integer, else a tensor name."""
    text = text.strip()
    if not text:
        raise argparse.ArgumentTypeError("expected a tensor name or index")
    return int(text) if text.isdigit() else text


def resolve_model(model: str) -> str:
    """``MODEL`` as given, or the bundled model's path for ``"default"`` (when no file of that name exists).

    Raises:
        ModelError: ``"default"`` but the bundled model is not installed.
    """
    import os

    if model != "default" or os.path.exists(model):
        return model
    from ..errors import ModelError
    from ..segmenter import DEFAULT_MODEL_NAME, default_model_path

    found = default_model_path()
    if found is None:
        raise ModelError(f"the bundled default model ({DEFAULT_MODEL_NAME}) is not installed; pass the path of a "
                         ".tflite model instead of 'default'")
    return str(found)


def segmenter_options(args: argparse.Namespace, **kwargs: Any) -> "SegmenterOptions":
    """The :class:`~mtkseg.SegmenterOptions` the runtime options ask for, with ``kwargs``
    (other fields: ``model``, ``fit``, ``upsample``...) on top."""
    from ..options import SegmenterOptions

    delegate = "auto" if args.accelerator is not None and args.delegate == "auto" else args.delegate
    return SegmenterOptions.from_kwargs(**{**dict(
        delegate=delegate, accelerator=args.accelerator, num_threads=args.threads,
        input_size=args.input_size, interpolation=args.interpolation, labels=getattr(args, "labels", None),
        normalization=getattr(args, "normalization", None),
        output=getattr(args, "output_tensor", None), output_map_size=getattr(args, "output_map_size", None)), **kwargs})


def make_segmenter(args: argparse.Namespace, model: Any = None, **kwargs: Any) -> "Segmenter":
    """A Segmenter built from :func:`segmenter_options`; ``model`` (default ``args.model``,
    "default" = bundled model) names the file."""
    from ..segmenter import Segmenter

    model = resolve_model(args.model if model is None else model)
    return Segmenter(options=segmenter_options(args, model=model, **kwargs))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="a .tflite segmentation model, or 'default' for the bundled one")
    p.add_argument("images", metavar="IMAGE", nargs="+",
                   help="image files or folders of images (--engine ray: also glob patterns and video files)")
    g = p.add_argument_group("outputs")
    g.add_argument("-o", "--out-dir", default="mtkseg-out", metavar="OUT_DIR",
                   help="folder for <name>_mask.png (class ids) and <name>_overlay.png (default ./mtkseg-out)")
    g.add_argument("--overwrite", action="store_true", help="replace existing output files (never an input image)")
    g.add_argument("--overlay", action="store_true", help="also write the colour overlay of each image")
    g.add_argument("--color-mask", action="store_true", help="also write the colourised mask <name>_color.png")
    g.add_argument("--alpha", type=unit_float, default=0.5, help="overlay opacity (default 0.5)")
    g.add_argument("--legend", action="store_true", help="draw the class colours and names on overlay/colour images")
    g.add_argument("--json", action="store_true", help="print one JSON object per image instead of text")
    g.add_argument("--top", type=positive_int, default=5, metavar="K", help="class shares to print per image (default 5)")
    g = p.add_argument_group("segmentation")
    g.add_argument("--fit", choices=("stretch", "letterbox"), default="stretch",
                   help="how an image meets the model input: stretch (default, resize to it) or letterbox "
                        "(keep the aspect ratio, pad)")
    g.add_argument("--upsample", choices=("nearest", "bilinear"), default="nearest",
                   help="how the mask is resized to the image: nearest (default) or bilinear (smoother edges)")
    add_runtime_arguments(p)
    add_engine_arguments(p)


def expand_images(items: Sequence[str]) -> List[Path]:
    """Files as given; folders expanded to their image files (sorted)."""
    out: List[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
        else:
            out.append(path)
    return out


def _unique_stem(path: Path, used: Dict[str, int]) -> str:
    stem = path.stem
    n = used.get(stem, 0)
    used[stem] = n + 1
    return stem if n == 0 else f"{stem}_{n + 1}"


def handler(args: argparse.Namespace) -> int:
    from ..errors import MtksegError

    check_engine_arguments(args)
    if args.engine == "ray":
        return run_ray(args)
    images = expand_images(args.images)
    if not images:
        print("mtkseg run: error: no images found in " + ", ".join(args.images), file=sys.stderr)
        return 1
    out_dir = Path(args.out_dir)
    overwrite = getattr(args, "overwrite", False)
    # Every output is checked before the model loads: none may be an input, a link, or (without
    # --overwrite) an existing file.
    names: Dict[str, int] = {}
    suffixes = ["_mask.png"] + (["_overlay.png"] if args.overlay else []) + (["_color.png"] if args.color_mask else [])
    for path in images:
        stem = _unique_stem(path, names)
        for suffix in suffixes:
            _io.check_output(out_dir / f"{stem}{suffix}", inputs=images, overwrite=overwrite, what="-o")
    _io.ensure_dir(out_dir, what="-o")
    seg = make_segmenter(args, fit=args.fit, upsample=args.upsample)
    failures = 0
    used: Dict[str, int] = {}
    totals: List[Dict[str, float]] = []
    with seg:
        if not args.json:
            print(f"model {seg.info.path or args.model}: {seg.backend}, {seg.delegate}, {seg.num_threads} thread(s), "
                  f"input {seg.input_size[0]}x{seg.input_size[1]}")
        for path in images:
            try:
                result = seg.run(path)
            except MtksegError as exc:
                failures += 1
                print(f"mtkseg run: error: {path}: {exc}", file=sys.stderr)
                continue
            stem = _unique_stem(path, used)
            written = [result.save(out_dir / f"{stem}_mask.png", overwrite=overwrite)]
            if args.overlay:
                written.append(result.save(out_dir / f"{stem}_overlay.png", "overlay", alpha=args.alpha,
                                           overwrite=overwrite, legend=args.legend))
            if args.color_mask:
                written.append(result.save(out_dir / f"{stem}_color.png", "color", overwrite=overwrite,
                                           legend=args.legend))
            totals.append(result.timings)
            shares = sorted(result.class_fractions().items(), key=lambda kv: -kv[1])
            if args.json:
                print(json.dumps({"image": str(path), **result.to_dict(), "outputs": [str(p) for p in written]}))
            else:
                t = result.timings
                top = "  ".join(f"{name} {share * 100:.1f}%" for name, share in shares[: args.top] if share > 0)
                print(f"{path}: {result.shape[0]}x{result.shape[1]}  pre {t['pre']:.1f} ms  infer {t['infer']:.1f} ms  "
                      f"post {t['post']:.1f} ms  |  {top}")
    if totals and not args.json and len(totals) > 1:
        import numpy as np

        med = {k: float(np.median([t[k] for t in totals])) for k in ("pre", "infer", "post")}
        print(f"{len(totals)} image(s): median pre {med['pre']:.1f} ms, infer {med['infer']:.1f} ms, "
              f"post {med['post']:.1f} ms; outputs in {out_dir}")
    return 1 if failures else 0


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help=HELP, description=HELP + ".",
                              epilog="Exit status: 0 all images done, 1 an error (other images are still processed), 2 usage "
                                     "error (e.g. an existing output without --overwrite).")
    add_arguments(p)
    p.set_defaults(func=handler)
