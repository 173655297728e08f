"""Convert a trained checkpoint to TFLite (float32, float16, dynamic-range or full int8).

The model is rebuilt at a fixed input size (default: the run's ``input_size``), its weights
loaded, and converted from a concrete function.  Full-int8 calibrates on real training
images (resized to the input size exactly as the Segmenter does, bilinear).  Labels, palette
and normalisation are written to a sidecar ``NAME.json`` next to ``NAME.tflite``
(see :mod:`mtkseg.train.sidecar`) so ``Segmenter(path)`` needs no extra arguments.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..data import SegmentationDataset, resize_image
from ..errors import ExportError, InvalidArgumentError
from .sidecar import build_sidecar, sidecar_path, write_sidecar

__all__ = ["QUANT_MODES", "IO_TYPES", "ExportResult", "export_tflite", "resolve_checkpoint", "tflite_ops",
           "prior_correction_offsets", "apply_prior_correction"]

QUANT_MODES = ("float32", "float16", "dynamic", "int8")
IO_TYPES = ("float32", "int8", "uint8")
PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class ExportResult:
    """What :func:`export_tflite` wrote."""

    model_path: Path
    sidecar_path: Path
    quant: str
    io_type: str
    input_size: Tuple[int, int]
    size_bytes: int
    ops: Dict[str, int] = field(default_factory=dict)
    weights_path: Optional[Path] = None  # the checkpoint that was converted


def resolve_checkpoint(checkpoint: PathLike) -> Tuple[Path, Path]:
    """``(weights file, run config.json)`` for a run directory or a ``*.weights.h5`` file.

    A run directory resolves to its ``best.weights.h5``; a weights file needs ``config.json``
    in the same folder.
    """
    p = Path(checkpoint)
    if p.is_dir():
        weights = p / "best.weights.h5"
        if not weights.is_file():
            weights = p / "last.weights.h5"
        config = p / "config.json"
    else:
        weights, config = p, p.parent / "config.json"
    if not weights.is_file():
        raise ExportError(f"{checkpoint}: no weights found (give a run directory or a .weights.h5 file)")
    if not weights.name.endswith(".weights.h5"):
        raise ExportError(f"{weights}: expected a Keras weights file named *.weights.h5")
    if not config.is_file():
        raise ExportError(f"{config}: run config not found; it is written by `mtkseg train` next to the weights")
    return weights, config


def tflite_ops(model_path: PathLike) -> Dict[str, int]:
    """``{op name: count}`` of a .tflite file (via ai-edge-litert; no TensorFlow needed)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=os.fspath(model_path))
    counts: Dict[str, int] = {}
    for op in interp._get_ops_details():  # noqa: SLF001 - the public API has no op listing
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return counts


def _calibration_images(calib_dir: PathLike, split: str, count: int, size: Tuple[int, int], seed: int) -> np.ndarray:
    ds = SegmentationDataset(calib_dir, split, require_masks=False)
    n = min(int(count), len(ds))
    if n < 1:
        raise ExportError(f"--calib-count must be >= 1, got {count}")
    idx = np.sort(np.random.default_rng(seed).choice(len(ds), size=n, replace=False))
    return np.stack([resize_image(ds[int(i)][0], size) for i in idx]).astype(np.float32) / 255.0


def _convert(converter, tf, quant, io_type, cfg, calib_dir, calib_split, calib_count, size, seed) -> bytes:
    """Apply the quantization settings to ``converter`` and run it."""
    if quant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quant == "int8":
        data_dir = calib_dir if calib_dir is not None else cfg.data
        if not data_dir:
            raise ExportError("int8 export needs calibration images: pass --calib DIR")
        calib = _calibration_images(data_dir, calib_split, calib_count, size, seed)

        def representative() -> Iterator[List[np.ndarray]]:
            for img in calib:
                yield [img[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io_type != "float32":
            dtype = tf.int8 if io_type == "int8" else tf.uint8
            converter.inference_input_type = dtype
            converter.inference_output_type = dtype
    try:
        return converter.convert()
    except Exception as exc:  # noqa: BLE001 - the converter raises many internal types
        raise ExportError(f"TFLite conversion failed ({quant}): {exc}") from exc


def export_tflite(
    checkpoint: PathLike,
    output: PathLike,
    quant: str = "int8",
    calib_dir: Optional[PathLike] = None,
    calib_split: str = "train",
    calib_count: int = 100,
    io_type: str = "float32",
    input_size: Optional[Sequence[int]] = None,
    metrics: Optional[dict] = None,
    license_text: Optional[str] = None,
    dataset_name: Optional[str] = None,
    seed: int = 0,
    metadata: bool = True,
    model_name: Optional[str] = None,
    overwrite: bool = True,
    prior_correction: float = 0.0,
) -> ExportResult:
    """Convert ``checkpoint`` (run dir or ``*.weights.h5``) to ``output`` (.tflite) + sidecar JSON.

    Args:
        quant: ``float32``, ``float16`` (weights fp16), ``dynamic`` (int8 weights, float
            activations) or ``int8`` (full integer, calibrated on ``calib_count`` images of
            ``calib_dir/images/calib_split``; defaults to the run's training data).
        io_type: input/output tensor type; ``int8``/``uint8`` only with ``quant="int8"``.
        input_size: ``(H, W)`` of the exported model; default the run's ``input_size``.
        metrics, license_text, dataset_name: copied into the sidecar JSON.
        metadata: embed standard TFLite metadata (normalisation, RGB, labels as a
            TENSOR_AXIS_LABELS file, softmax activation) so MediaPipe Tasks' ImageSegmenter and
            Android tooling read the model as it is; the sidecar JSON is written either way.
        model_name: name stored in the metadata (default: the output file's stem).
        overwrite: replace an existing model/sidecar (the CLI passes False unless --overwrite);
            both are written atomically and never over the checkpoint being converted.
        prior_correction: ``alpha`` in [0, 1]: subtract ``alpha * log(w_c)`` from the logits of
            a run trained with class weights ``w_c`` (folded into the last convolution's bias, so it
            costs nothing at run time).  Weighted cross-entropy shifts each logit by about
            ``log(w_c)``; taking part of that back trades rare-class recall for precision.
            ``alpha`` is a hyperparameter: choose it on a held-out split
            (``scripts/choose_prior_correction.py``), not on the test set.
    """
    if quant not in QUANT_MODES:
        raise InvalidArgumentError(f"quant: expected one of {QUANT_MODES}, got {quant!r}")
    if io_type not in IO_TYPES:
        raise InvalidArgumentError(f"io_type: expected one of {IO_TYPES}, got {io_type!r}")
    if io_type != "float32" and quant != "int8":
        raise InvalidArgumentError(f"io_type={io_type} needs quant='int8' (got quant={quant!r})")
    out = Path(output)
    if out.suffix != ".tflite":
        raise InvalidArgumentError(f"output: expected a .tflite path, got {out}")
    if isinstance(prior_correction, bool) or not isinstance(prior_correction, (int, float)) \
            or not 0.0 <= float(prior_correction) <= 1.0:
        raise InvalidArgumentError(f"prior_correction: expected a number in [0, 1], got {prior_correction!r}")
    weights_path, config_path = resolve_checkpoint(checkpoint)
    from .. import _io

    for target in (out, sidecar_path(out)):
        _io.check_output(target, inputs=[weights_path, config_path], overwrite=overwrite, what="output")

    from .loop import configure_threads, load_run_config

    configure_threads(2)
    import tensorflow as tf

    from .loop import model_from_config
    from .models import with_input_size

    cfg, classes = load_run_config(config_path)
    size = tuple(int(v) for v in (input_size or cfg.input_size))
    factor = 2 ** (cfg.depth - 1) if cfg.arch == "unet" else 32
    if len(size) != 2 or any(s < factor or s % factor for s in size):
        raise InvalidArgumentError(f"input_size: {size} must be two sizes divisible by {factor}")
    model = model_from_config(cfg, int(cfg.num_classes))
    try:
        model.load_weights(weights_path)
    except Exception as exc:  # noqa: BLE001 - keras raises several types for mismatched files
        raise ExportError(f"{weights_path}: cannot load weights into the run's model ({exc})") from exc
    offsets = None
    if prior_correction:
        offsets = apply_prior_correction(model, config_path, float(prior_correction))
    fixed = with_input_size(model, size)

    with tempfile.TemporaryDirectory(prefix="mtkseg-export-") as tmp:
        # A SavedModel round trip freezes Keras 3 variables into constants (from_concrete_functions
        # would leave VAR_HANDLE/READ_VARIABLE ops and unfused BatchNorm in the graph).
        fixed.export(tmp, format="tf_saved_model", verbose=False,
                     input_signature=[tf.TensorSpec([1, size[0], size[1], 3], tf.float32, name="image")])
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        blob = _convert(converter, tf, quant, io_type, cfg, calib_dir, calib_split, calib_count, size, seed)
    if metadata:
        from ..runtime.metadata_writer import embed_segmenter_metadata

        blob = embed_segmenter_metadata(
            blob, build_sidecar(classes, input_size=size)["labels"], mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0), name=model_name or out.stem,
            description=f"mtkseg {cfg.arch} semantic segmentation" + (f" trained on {dataset_name}" if dataset_name else ""),
            author="mtkseg", license_text=license_text or "", activation="softmax")
    out.parent.mkdir(parents=True, exist_ok=True)
    _io.write_bytes(out, blob, inputs=[weights_path, config_path], overwrite=overwrite, what="output")
    side = write_sidecar(
        sidecar_path(out), classes, input_size=size, overwrite=overwrite, metrics=metrics,
        dataset=dataset_name, license_text=license_text,
        extra={"quantization": quant, "io_type": io_type, "architecture": _architecture(cfg, model),
               **({"prior_correction": {"alpha": float(prior_correction), "logit_offsets": offsets}}
                  if offsets is not None else {})},
    )
    return ExportResult(out, side, quant, io_type, size, len(blob), tflite_ops(out), weights_path)


def prior_correction_offsets(class_weights: Sequence[float], alpha: float) -> np.ndarray:
    """``-alpha * log(w)``: the logit offsets that take back ``alpha`` of class weighting ``w``."""
    w = np.asarray(class_weights, np.float64)
    if w.ndim != 1 or not len(w) or not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise InvalidArgumentError(f"class weights: expected positive numbers, got {class_weights!r}")
    return (-float(alpha) * np.log(w)).astype(np.float32)


def apply_prior_correction(model, config_path: PathLike, alpha: float) -> List[float]:
    """Fold :func:`prior_correction_offsets` of the run's class weights into the ``logits`` layer's bias."""
    import json

    weights = json.loads(Path(config_path).read_text()).get("class_weights")
    if weights is None:
        raise ExportError(f"--prior-correction: {config_path} records no class weights (the run was trained "
                          "without them), so there is nothing to correct")
    offsets = prior_correction_offsets(weights, alpha)
    try:
        layer = model.get_layer("logits")
    except ValueError as exc:
        raise ExportError("--prior-correction: the model has no layer named 'logits'") from exc
    kernel, bias = layer.get_weights()
    if bias.shape != offsets.shape:
        raise ExportError(f"--prior-correction: {len(offsets)} class weights for {bias.shape[0]} logits")
    layer.set_weights([kernel, bias + offsets])
    return [round(float(v), 6) for v in offsets]


def _architecture(cfg, model) -> dict:
    if cfg.arch == "unet":
        arch = {"name": "unet", "base": cfg.base, "depth": cfg.depth, "residual": cfg.residual}
    else:
        arch = {"name": cfg.arch, "channels": cfg.channels, "head_channels": cfg.head_channels,
                "output_stride": cfg.output_stride}
        if cfg.output_stride == 2:
            arch["fine_channels"] = cfg.fine_channels
    arch["parameters"] = int(model.count_params())
    return arch
