"""Model introspection: everything a Segmenter needs, read from the model, into ``ModelInfo``.

Sources, in order of precedence (an explicit argument always wins and is logged):

* tensors: input layout (NHWC/NCHW), channels (1/3, or 4 = RGB + the previous frame's
  mask), dtype, quantisation, fixed or resizable shape; output kind and layout.  A
  :class:`~mtkseg.Segmenter` describes the tensors the interpreter *allocated* (``tensors=``):
  TF1-era converters leave stale shapes in the flatbuffer (an ``ARG_MAX`` declared
  ``[1, H, W, C]`` that allocates ``[1, H, W]``); ``mtkseg info --no-load`` can only read the
  declared ones.
* output: ``output=`` (name or index) → the segmentation map among the outputs (the largest
  map; ties go to the first).  Class indices may lack the batch axis (``[H, W]``); flattened
  maps (``[1, H*W*C]``) are unflattened to the input's size (or a power-of-two fraction of it),
  or to ``output_map_size``.
* size of a resizable input: ``input_size`` argument → metadata ``ImageProperties.default_size``
  → sidecar ``input_size`` (else ``UnsupportedModelError`` asking for ``input_size``).
* value range: TFLite metadata ``NormalizationOptions`` → sidecar JSON → the ``normalization``
  argument → for quantised inputs, the range the tensor's scale/zero-point can represent
  ([0, 1] → ``"unit"``, [-1, 1] → ``"symmetric"``, [0, 255] → ``"raw"``) → ``"unit"`` (x/255)
  for float inputs, with a warning logged once per model.
* labels: ``labels`` argument (names or a label-map path) → TFLite metadata label file →
  sidecar → ``class_0..``.  A one-channel model with a single label names the foreground;
  class 0 is the background (MediaPipe's convention).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass, replace
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _validate as _v
from ..errors import InvalidArgumentError, InvalidModelError, InvalidTypeError, UnsupportedModelError
from .labels import LabelsArg, resolve_labels
from .metadata import Sidecar, TfliteMetadata, read_sidecar, read_tflite_metadata
from .modelfile import ModelFile, TensorSpec

__all__ = ["ModelInfo", "describe_model", "input_plan", "parse_normalization", "NORMALIZATIONS", "OUTPUT_KINDS",
           "OutputArg", "TensorsArg"]

log = logging.getLogger("mtkseg.runtime")

Triple = Tuple[float, float, float]
NormalizationArg = Union[str, Tuple[object, object], Dict[str, object], None]
OutputArg = Union[int, str, None]
#: (input specs, output specs) as allocated by an interpreter, in the model's order.
TensorsArg = Optional[Tuple[Sequence[TensorSpec], Sequence[TensorSpec]]]

#: Named value ranges: (mean, std) in pixel units, model_input = (pixel - mean) / std.
NORMALIZATIONS: Dict[str, Tuple[Triple, Triple]] = {
    "unit": ((0.0, 0.0, 0.0), (255.0, 255.0, 255.0)),
    "raw": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "symmetric": ((127.5, 127.5, 127.5), (127.5, 127.5, 127.5)),
}

#: Output kinds: how the output tensor turns into a class mask.
OUTPUT_KINDS = ("logits", "probabilities", "class_index", "binary_probability", "binary_logit")

_INPUT_DTYPES = ("float32", "float16", "int8", "uint8")
_SCORE_DTYPES = ("float32", "float16", "int8", "uint8")
_LABEL_DTYPES = ("int32", "int64", "uint8", "int8")
_FLAT_FACTORS = (1, 2, 4, 8, 16, 32)  # output stride candidates of a flattened map
_MIN_FLAT_PIXELS = 64
_warned_default: set = set()
_LABEL_SOURCES = {
    "argument": "names from labels=",
    "metadata": "names from the TFLite metadata label file",
    "sidecar": "names from the sidecar JSON",
    "generated": "the model carries no names: generated",
    "none": "class indices without names",
}


@dataclass(frozen=True)
class ModelInfo:
    """What mtkseg read from a segmentation model (``mtkseg info MODEL`` prints it)."""

    path: Optional[str]
    size_bytes: int
    # input
    input_name: str
    input_shape: Tuple[int, ...]
    input_shape_signature: Tuple[int, ...]
    input_dtype: str
    input_layout: str  # "nhwc" | "nchw"
    input_channels: int
    input_size: Tuple[int, int]  # (height, width)
    resizable: bool
    input_scale: Optional[float]
    input_zero_point: Optional[int]
    # output
    output_name: str
    output_shape: Tuple[int, ...]
    output_dtype: str
    output_layout: str  # "nhwc" | "nchw"
    output_kind: str  # one of OUTPUT_KINDS
    output_size: Tuple[int, int]
    output_scale: Optional[float]
    output_zero_point: Optional[int]
    # semantics
    num_classes: Optional[int]
    class_names: Tuple[str, ...]
    labels_source: str  # "argument" | "metadata" | "sidecar" | "generated" | "none"
    palette: Tuple[Tuple[int, int, int], ...]
    mean: Triple
    std: Triple
    normalization_source: str  # "argument" | "metadata" | "sidecar" | "quantization" | "default"
    color_order: str  # "rgb" | "bgr" | "gray"
    ignore_index: Optional[int]
    # provenance
    operators: Dict[str, int]
    custom_ops: Tuple[str, ...]
    metadata_name: Optional[str] = None
    metadata_version: Optional[str] = None
    sidecar: Optional[str] = None
    num_outputs: int = 1
    output_index: int = 0
    #: the 4th input channel takes the previous frame's foreground probability (RGB + mask models)
    input_prior: bool = False
    #: the output is a flattened ``[1, h*w*C]`` map (unflattened to ``output_size``)
    output_flattened: bool = False
    #: every output as ``"name [shape] dtype"`` (the chosen one is ``output_index``)
    outputs: Tuple[str, ...] = ()
    #: "interpreter" (allocated tensors) or "file" (declared in the flatbuffer)
    tensors_source: str = "file"
    #: where ``palette`` comes from: "sidecar", "default", or why the sidecar's was not used
    palette_source: str = "default"

    @property
    def output_map_shape(self) -> Tuple[int, ...]:
        """The shape postprocessing reads the output as: ``(1, h, w, C)`` / ``(1, C, h, w)``
        scores, ``(h, w)`` class indices or one-channel maps."""
        h, w = self.output_size
        if self.output_kind in ("class_index", "binary_probability", "binary_logit"):
            return (h, w)
        c = int(self.num_classes or 0)
        return (1, c, h, w) if self.output_layout == "nchw" else (1, h, w, c)

    @property
    def quantized_input(self) -> bool:
        return self.input_scale is not None

    @property
    def quantized_output(self) -> bool:
        return self.output_scale is not None

    @property
    def has_scores(self) -> bool:
        """True when the output holds per-class scores (``confidence()`` and ``score_filter`` work)."""
        return self.output_kind in ("logits", "probabilities")

    def to_dict(self) -> Dict[str, object]:
        """JSON-friendly dictionary of every field."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = [list(x) if isinstance(x, tuple) else x for x in v]
        return d

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        def q(scale, zp):
            return f", scale={scale:.6g}, zero_point={zp}" if scale is not None else ""

        names = ", ".join(self.class_names) if len(self.class_names) <= 24 else (
            ", ".join(self.class_names[:24]) + f", ... ({len(self.class_names)} names)"
        )
        ops = ", ".join(f"{name} x{n}" for name, n in sorted(self.operators.items(), key=lambda kv: (-kv[1], kv[0])))
        lines = [
            f"model:          {self.path or '<bytes>'} ({self.size_bytes / 1024:.1f} KiB)",
            f"input:          {self.input_name} {list(self.input_shape_signature)} {self.input_dtype} "
            f"{self.input_layout.upper()}{q(self.input_scale, self.input_zero_point)}",
            f"input size:     {self.input_size[0]}x{self.input_size[1]} (HxW), {self.input_channels} channel(s), "
            f"{'resizable' if self.resizable else 'fixed'}"
            + (" (RGB + previous frame's foreground probability in channel 4)" if self.input_prior else ""),
            f"colour order:   {self.color_order}",
            f"normalization:  mean={list(self.mean)} std={list(self.std)} (pixel units; from {self.normalization_source})",
            f"output:         {self.output_name} {list(self.output_shape)} {self.output_dtype} "
            f"{self.output_layout.upper()}{q(self.output_scale, self.output_zero_point)}",
            f"output kind:    {self.output_kind}, {self.output_size[0]}x{self.output_size[1]}"
            + (" (unflattened)" if self.output_flattened else ""),
            f"classes:        {self.num_classes if self.num_classes is not None else 'unknown'} "
            f"({_LABEL_SOURCES.get(self.labels_source, self.labels_source)})",
            f"class names:    {names or '-'}",
            f"palette:        {self.palette_source}",
            f"operators:      {ops}",
        ]
        if self.custom_ops:
            lines.append(f"custom ops:     {', '.join(self.custom_ops)}")
        if self.metadata_name or self.metadata_version:
            lines.append(f"tflite metadata: {self.metadata_name or '-'} {self.metadata_version or ''}".rstrip())
        if self.sidecar:
            lines.append(f"sidecar:        {self.sidecar}")
        if self.num_outputs > 1:
            lines.append(f"outputs:        {self.num_outputs} (using output {self.output_index}; output= picks another)")
            for i, desc in enumerate(self.outputs):
                lines.append(f"  {'*' if i == self.output_index else ' '} {i}: {desc}")
        lines.append(f"tensor shapes:  {'as allocated by the interpreter' if self.tensors_source == 'interpreter' else 'as declared in the file'}")
        return "\n".join(lines)

    def with_shapes(self, input_shape: Sequence[int], output_shape: Sequence[int]) -> "ModelInfo":
        """The same model after the interpreter (re)allocated tensors of these shapes.

        Raises:
            UnsupportedModelError: a shape's rank no longer fits the layout described (an
                output that became a vector after invoke, a 3-D NCHW input...).
        """
        input_shape = tuple(int(v) for v in input_shape)
        output_shape = tuple(int(v) for v in output_shape)
        need_in = 4 if self.input_layout == "nchw" else 3
        if len(input_shape) < need_in:
            raise UnsupportedModelError(
                f"{self.path or '<model bytes>'}: the runtime allocated input {self.input_name} as {list(input_shape)}, "
                f"but a {self.input_layout.upper()} image input needs at least {need_in} dimensions; the model's shapes "
                "are inconsistent (re-export it with a fixed [1, H, W, C] input)"
            )
        need_out = 4 if self.output_layout == "nchw" else 3  # or (h, w) class indices
        if not (self.output_flattened or len(output_shape) == 2 or len(output_shape) >= need_out):
            raise UnsupportedModelError(
                f"{self.path or '<model bytes>'}: the runtime produced output {self.output_name} of shape "
                f"{list(output_shape)}, which is not a {self.output_layout.upper()} segmentation map (it needs "
                f"{need_out} dimensions); pass output= to pick another output or re-export the model"
            )
        hw = (input_shape[2], input_shape[3]) if self.input_layout == "nchw" else (input_shape[1], input_shape[2])
        if self.output_flattened:
            ohw = self.output_size  # a flat vector does not say its height and width
        elif len(output_shape) == 2:  # class indices without a batch axis (h, w)
            ohw = (output_shape[0], output_shape[1])
        elif self.output_layout == "nchw":
            ohw = (output_shape[2], output_shape[3])
        else:  # (1, h, w, C) or class indices (1, h, w)
            ohw = (output_shape[1], output_shape[2])
        return replace(self, input_shape=input_shape, input_size=hw, output_shape=output_shape, output_size=ohw)


# ----------------------------------------------------------------------------- helpers

def _triple(value: object, name: str) -> Triple:
    return _v.triple(value, f"normalization: {name}")


def parse_normalization(value: NormalizationArg) -> Optional[Tuple[Triple, Triple]]:
    """``"unit"`` (x/255), ``"raw"`` (0..255), ``"symmetric"`` ([-1, 1]), ``(mean, std)`` or
    ``{"mean": .., "std": ..}`` in 0..255 pixel units (per channel or one value) → (mean, std)."""
    if value is None:
        return None
    if isinstance(value, str):
        key = value.lower()
        if key not in NORMALIZATIONS:
            raise InvalidArgumentError(
                f"normalization: expected one of {sorted(NORMALIZATIONS)} or (mean, std), got {value!r}"
            )
        return NORMALIZATIONS[key]
    if isinstance(value, dict):
        if set(value) != {"mean", "std"}:
            raise InvalidArgumentError(f"normalization: a dict needs exactly 'mean' and 'std', got {sorted(value)}")
        mean, std = value["mean"], value["std"]
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        mean, std = value
    else:
        raise InvalidTypeError(
            f"normalization: expected a name ('unit', 'raw', 'symmetric') or (mean, std), got {value!r}"
        )
    m, s = _triple(mean, "mean"), _triple(std, "std")
    if any(v <= 0 for v in s):
        raise InvalidArgumentError(f"normalization: std must be positive, got {list(s)}")
    return m, s


def _range_of_quantization(dtype: str, scale: float, zp: int) -> Optional[Tuple[str, Tuple[Triple, Triple]]]:
    qmin, qmax = (-128, 127) if dtype == "int8" else (0, 255)
    lo, hi = (qmin - zp) * scale, (qmax - zp) * scale
    for name, target in (("unit", (0.0, 1.0)), ("symmetric", (-1.0, 1.0)), ("raw", (0.0, 255.0))):
        span = target[1] - target[0]
        if abs(lo - target[0]) <= 0.03 * span and abs(hi - target[1]) <= 0.03 * span:
            return name, NORMALIZATIONS[name]
    return None


def _ratio_matches(a: int, b: int, ih: int, iw: int) -> bool:
    """True when an (a, b) map has the input's aspect ratio (one pixel of rounding allowed)."""
    if a <= 0 or b <= 0 or ih <= 0 or iw <= 0:
        return False
    return abs(a * iw - b * ih) <= max(ih, iw) and 1 / 64 <= a / ih <= 4


def _single_quant(spec: TensorSpec, what: str, label: str) -> Tuple[Optional[float], Optional[int]]:
    if not spec.quantized:
        return None, None
    if len(spec.scale) != 1:
        raise UnsupportedModelError(
            f"{label}: {what} tensor {spec.name!r} is quantised per channel ({len(spec.scale)} scales); "
            "mtkseg supports per-tensor quantisation of inputs and outputs"
        )
    return float(spec.scale[0]), int(spec.zero_point[0] if spec.zero_point else 0)


def _input_layout(spec: TensorSpec, label: str) -> Tuple[str, int, Tuple[int, int], bool]:
    shape, sig = spec.shape, spec.shape_signature
    if spec.dtype not in _INPUT_DTYPES:
        raise UnsupportedModelError(
            f"{label}: input {spec.name!r} has dtype {spec.dtype}; mtkseg feeds images as "
            f"{', '.join(_INPUT_DTYPES)} (re-export the model with one of these input types)"
        )
    if len(shape) != 4:
        raise UnsupportedModelError(
            f"{label}: input {spec.name!r} has shape {list(sig)}; expected an image tensor "
            "(1, h, w, 1|3) NHWC or (1, 1|3, h, w) NCHW"
        )
    if sig[0] not in (1, -1):
        raise UnsupportedModelError(f"{label}: input batch size is {sig[0]}; mtkseg runs batch 1 (re-export with batch 1)")
    if shape[3] in (1, 3, 4) and sig[3] != -1:
        layout, channels, hw, dyn = "nhwc", shape[3], (shape[1], shape[2]), (sig[1] == -1 or sig[2] == -1)
    elif shape[1] in (1, 3, 4) and sig[1] != -1:
        layout, channels, hw, dyn = "nchw", shape[1], (shape[2], shape[3]), (sig[2] == -1 or sig[3] == -1)
    else:
        raise UnsupportedModelError(
            f"{label}: input {spec.name!r} has shape {list(sig)}: {shape[3] if shape[3] > 0 else '?'} channels; "
            "mtkseg supports 1 (gray), 3 (colour) or 4 (colour + previous mask) channel images, NHWC or NCHW"
        )
    return layout, int(channels), (int(hw[0]), int(hw[1])), bool(dyn)


def _unflatten(n: int, in_hw: Tuple[int, int], map_size: Optional[Tuple[int, int]], what: str) -> Optional[Tuple[int, int, int]]:
    """(h, w, C) of a flattened ``[1, n]`` map: ``map_size`` if given, else the input size or a
    power-of-two fraction of it that divides ``n`` (None when nothing fits)."""
    if map_size is not None:
        h, w = map_size
        if n % (h * w):
            raise InvalidArgumentError(
                f"output_map_size: {what} holds {n} values, which is not a multiple of {h}x{w}; "
                "pass the (height, width) the model flattened"
            )
        return h, w, n // (h * w)
    ih, iw = in_hw
    for f in _FLAT_FACTORS:
        if ih % f or iw % f:
            continue
        h, w = ih // f, iw // f
        if h * w < _MIN_FLAT_PIXELS:
            break
        if n % (h * w) == 0 and n // (h * w) <= 256:
            return h, w, n // (h * w)
    return None


def _output_kind(spec: TensorSpec, producer: str, in_hw: Tuple[int, int], label: str,
                 map_size: Optional[Tuple[int, int]] = None) -> Tuple[str, str, Tuple[int, int], Optional[int], bool]:
    """(kind, layout, (h, w), num_classes, flattened) of an output tensor; UnsupportedModelError
    if none fits."""
    shape, sig, dtype = spec.shape, spec.shape_signature, spec.dtype
    what = f"{label}: output {spec.name!r} {list(sig)} {dtype}"
    integer = dtype in ("int32", "int64") or (dtype in ("uint8", "int8") and not spec.quantized)
    flattened = False
    if len(shape) == 2 and shape[0] == 1 and -1 not in sig:
        found = _unflatten(int(shape[1]), in_hw, map_size, what)
        if found is None:
            raise UnsupportedModelError(
                f"{what} is not a segmentation map: a flat [1, N] output must hold an h x w (x C) map; "
                f"{shape[1]} values fit no fraction of the {in_hw[0]}x{in_hw[1]} input (pass output_map_size=(h, w) "
                "if it is one)"
            )
        h, w, c = found
        shape = sig = (1, h, w, c)
        flattened = True
    elif len(shape) == 2 and integer and _ratio_matches(shape[0], shape[1], *in_hw):
        shape, sig = (1,) + shape + (1,), (1,) + sig + (1,)  # class indices without a batch axis
    elif len(shape) == 3 and shape[0] == 1:
        shape, sig = shape + (1,), sig + (1,)
    if len(shape) != 4 or shape[0] != 1:
        raise UnsupportedModelError(
            f"{what} is not a segmentation map: expected (1, h, w, C) / (1, C, h, w) scores, "
            "(1, h, w[, 1]) / (h, w) class indices, (1, h, w, 1) one-channel scores or a flattened (1, h*w*C) map"
        )
    if shape[3] == 1 and sig[3] != -1:
        hw = (shape[1], shape[2])
        if integer:
            if dtype not in _LABEL_DTYPES:
                raise UnsupportedModelError(f"{what}: class-index output must be int32/int64/uint8/int8")
            return "class_index", "nhwc", hw, None, flattened
        if dtype not in _SCORE_DTYPES:
            raise UnsupportedModelError(f"{what}: one-channel score output must be float32/float16/int8/uint8")
        return ("binary_probability" if producer == "LOGISTIC" else "binary_logit"), "nhwc", hw, 2, flattened
    if integer and dtype in ("int32", "int64"):
        raise UnsupportedModelError(f"{what}: integer output with several channels is neither scores nor class indices")
    if dtype not in _SCORE_DTYPES:
        raise UnsupportedModelError(f"{what}: score outputs must be float32/float16/int8/uint8")
    if flattened:
        layout = "nhwc"
    elif sig[3] == -1 and sig[1] != -1:
        layout = "nchw"
    elif sig[1] == -1 and sig[3] != -1:
        layout = "nhwc"
    else:
        ih, iw = in_hw
        nhwc_ok = _ratio_matches(shape[1], shape[2], ih, iw)
        nchw_ok = _ratio_matches(shape[2], shape[3], ih, iw)
        layout = "nchw" if (nchw_ok and not nhwc_ok) else "nhwc"
    if layout == "nchw":
        classes, hw = shape[1], (shape[2], shape[3])
    else:
        classes, hw = shape[3], (shape[1], shape[2])
    if classes < 2:
        raise UnsupportedModelError(f"{what}: a score map needs at least 2 classes")
    kind = "probabilities" if producer == "SOFTMAX" else "logits"
    return kind, layout, (int(hw[0]), int(hw[1])), int(classes), flattened


def _describe_tensor(spec: TensorSpec) -> str:
    return f"{spec.name} {list(spec.shape_signature if -1 in spec.shape_signature else spec.shape)} {spec.dtype}"


def _allocated_specs(mf: ModelFile, tensors: TensorsArg) -> Tuple[Tuple[TensorSpec, ...], Tuple[TensorSpec, ...]]:
    """The tensors to describe: as allocated when given (logging where the file disagrees)."""
    if tensors is None:
        return mf.inputs, mf.outputs
    ins, outs = tuple(tensors[0]), tuple(tensors[1])
    if len(ins) != len(mf.inputs) or len(outs) != len(mf.outputs):
        raise InvalidArgumentError(
            f"tensors: {len(ins)} inputs / {len(outs)} outputs given for a model with "
            f"{len(mf.inputs)} / {len(mf.outputs)}"
        )
    for declared, allocated in zip(mf.inputs + mf.outputs, ins + outs):
        if (declared.shape, declared.dtype) != (allocated.shape, allocated.dtype):
            log.info(
                "%s: tensor %r is declared %s %s in the file but allocated %s %s by the interpreter; "
                "using the allocated tensor",
                mf.label, declared.name, list(declared.shape), declared.dtype, list(allocated.shape), allocated.dtype,
            )
    return ins, outs


def _output_position(output: OutputArg, specs: Sequence[TensorSpec], label: str) -> int:
    names = [s.name for s in specs]
    if isinstance(output, bool) or not isinstance(output, (int, np.integer, str)):
        raise InvalidTypeError(f"output: expected an output index or name, got {type(output).__name__}")
    if isinstance(output, str):
        if output not in names:
            raise InvalidArgumentError(f"output: {label} has no output named {output!r}; its outputs are {names}")
        return names.index(output)
    if not 0 <= int(output) < len(specs):
        raise InvalidArgumentError(f"output: index {output} outside 0..{len(specs) - 1} ({label} outputs {names})")
    return int(output)


def _input_hw(mf: ModelFile, spec_in: TensorSpec, input_size: Optional[Sequence[int]],
              meta: Optional[TfliteMetadata], sidecar: Optional[Sidecar]) -> Tuple[str, int, Tuple[int, int], bool]:
    """(layout, channels, (h, w) to run at, resizable) of the input."""
    label = mf.label
    layout, channels, hw, resizable = _input_layout(spec_in, label)
    if input_size is not None:
        try:
            size = tuple(int(v) for v in input_size)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"input_size: expected (height, width), got {input_size!r}") from exc
        if len(size) != 2 or min(size) <= 0:
            raise InvalidArgumentError(f"input_size: expected positive (height, width), got {input_size!r}")
        if size != hw and not resizable:
            raise InvalidArgumentError(
                f"input_size: the model's input is fixed at {hw[0]}x{hw[1]}; it cannot run at {size[0]}x{size[1]} "
                "(only models exported with a dynamic height/width can be resized)"
            )
        hw = (size[0], size[1])
    elif resizable:
        if meta is not None and meta.default_size is not None:
            hw = meta.default_size
        elif sidecar is not None and sidecar.input_size is not None:
            hw = sidecar.input_size
        elif hw[0] <= 1 or hw[1] <= 1:
            raise UnsupportedModelError(
                f"{label}: the input height/width are dynamic {list(spec_in.shape_signature)}; "
                "pass input_size=(height, width) to choose the resolution"
            )
    return layout, channels, hw, resizable


def _metadata(mf: ModelFile) -> Tuple[Optional[TfliteMetadata], Optional[Sidecar]]:
    meta = None
    if "TFLITE_METADATA" in mf.metadata:
        meta = read_tflite_metadata(mf.metadata["TFLITE_METADATA"], mf.data, mf.label)
    return meta, read_sidecar(mf.path)


def _single_input(mf: ModelFile) -> TensorSpec:
    if len(mf.inputs) != 1:
        raise UnsupportedModelError(
            f"{mf.label}: the model has {len(mf.inputs)} inputs "
            f"({', '.join(repr(t.name) for t in mf.inputs)}); mtkseg runs single-image models"
        )
    return mf.inputs[0]


def input_plan(mf: ModelFile, input_size: Optional[Sequence[int]] = None) -> Tuple[Tuple[int, ...], bool]:
    """(input shape to allocate, resizable): what an interpreter needs before it can allocate
    tensors, read from the file alone.

    Raises:
        UnsupportedModelError: the input is not an image tensor mtkseg can feed.
        InvalidArgumentError: ``input_size`` is invalid for this model.
    """
    spec_in = _single_input(mf)
    meta, sidecar = _metadata(mf)
    layout, _, hw, resizable = _input_hw(mf, spec_in, input_size, meta, sidecar)
    return _input_shape(spec_in, layout, hw), resizable


def _input_shape(spec_in: TensorSpec, layout: str, hw: Tuple[int, int]) -> Tuple[int, ...]:
    in_shape = list(spec_in.shape)
    if layout == "nchw":
        in_shape[2], in_shape[3] = hw
    else:
        in_shape[1], in_shape[2] = hw
    in_shape[0] = 1
    return tuple(int(v) for v in in_shape)


def describe_model(
    mf: ModelFile,
    *,
    labels: LabelsArg = None,
    normalization: NormalizationArg = None,
    input_size: Optional[Sequence[int]] = None,
    output: OutputArg = None,
    output_map_size: Optional[Sequence[int]] = None,
    tensors: TensorsArg = None,
) -> ModelInfo:
    """Read a validated model into a :class:`ModelInfo` (see the module doc for precedence).

    Args:
        mf: the model file (:func:`~mtkseg.runtime.read_model_file`).
        labels: class names, or the path of a text label map.
        normalization: the input value range (see :func:`parse_normalization`).
        input_size: ``(height, width)`` for a resizable input.
        output: which output is the segmentation map (index or tensor name); default the
            largest map among the outputs.
        output_map_size: ``(height, width)`` of a flattened ``[1, h*w*C]`` output when it is
            not the input size (or a power-of-two fraction of it).
        tensors: ``(inputs, outputs)`` as an interpreter allocated them (preferred to the
            shapes declared in the file).

    Raises:
        UnsupportedModelError: the tensors are not a layout/dtype mtkseg supports (says which).
        InvalidModelError: metadata or sidecar is corrupt or contradicts the model.
        InvalidArgumentError: ``labels``/``normalization``/``input_size``/``output``/
            ``output_map_size`` are invalid.
    """
    label = mf.label
    _single_input(mf)
    specs_in, specs_out = _allocated_specs(mf, tensors)
    spec_in = specs_in[0]
    meta, sidecar = _metadata(mf)
    layout, channels, hw, resizable = _input_hw(mf, spec_in, input_size, meta, sidecar)
    in_scale, in_zp = _single_quant(spec_in, "input", label)
    map_size = None
    if output_map_size is not None:
        try:
            mh, mw = (int(v) for v in output_map_size)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"output_map_size: expected (height, width), got {output_map_size!r}") from exc
        if mh <= 0 or mw <= 0:
            raise InvalidArgumentError(f"output_map_size: expected positive (height, width), got {output_map_size!r}")
        map_size = (mh, mw)

    # Output: the largest segmentation map among the outputs (or the one asked for).
    positions = range(len(specs_out)) if output is None else [_output_position(output, specs_out, label)]
    found = []
    errors = []
    for i in positions:
        spec = specs_out[i]
        try:
            found.append((i, spec, _output_kind(spec, mf.source_op(spec.index), hw, label, map_size)))
        except UnsupportedModelError as exc:
            errors.append(str(exc))
    if not found:
        raise UnsupportedModelError("; ".join(errors) if errors else f"{label}: the model has no outputs")
    chosen = max(found, key=lambda f: (f[2][2][0] * f[2][2][1], not f[2][4], -f[0]))
    if len(found) > 1:
        log.info("%s: %d outputs look like maps (%s); using output %d %r, the largest (output= picks another)",
                 label, len(found), ", ".join(repr(f[1].name) for f in found), chosen[0], chosen[1].name)
    out_index, spec_out, (kind, out_layout, out_hw, num_classes, flattened) = chosen
    if map_size is not None and not flattened:
        raise InvalidArgumentError(
            f"output_map_size: output {spec_out.name!r} {list(spec_out.shape)} is not flattened; "
            "output_map_size only applies to [1, h*w*C] outputs"
        )
    if flattened:
        log.info("%s: output %r %s is a flattened map; read as %dx%d x %s", label, spec_out.name,
                 list(spec_out.shape), out_hw[0], out_hw[1], num_classes or 1)
    out_scale, out_zp = _single_quant(spec_out, "output", label)

    # Value range.
    explicit = parse_normalization(normalization)
    if explicit is not None:
        (mean, std), norm_source = explicit, "argument"
        if (meta and meta.mean) or (sidecar and sidecar.mean):
            log.info("%s: normalization=%r overrides the value range stored with the model", label, normalization)
    elif meta is not None and meta.mean is not None and meta.std is not None:
        mean, std, norm_source = meta.mean, meta.std, "metadata"
    elif sidecar is not None and sidecar.mean is not None and sidecar.std is not None:
        mean, std, norm_source = sidecar.mean, sidecar.std, "sidecar"
    else:
        inferred = _range_of_quantization(spec_in.dtype, in_scale, in_zp or 0) if in_scale is not None else None
        if inferred is not None:
            (mean, std), norm_source = inferred[1], "quantization"
        else:
            (mean, std), norm_source = NORMALIZATIONS["unit"], "default"
            key = label
            if key not in _warned_default:
                _warned_default.add(key)
                log.warning(
                    "%s: no normalization in TFLite metadata or sidecar JSON; assuming 'unit' (pixel/255). "
                    "Pass normalization='raw'|'symmetric'|(mean, std) if the model expects another range.",
                    label,
                )

    # Colour order.
    if channels == 1:
        color_order = "gray"
    elif sidecar is not None and sidecar.color_order:
        color_order = sidecar.color_order
    else:
        color_order = "rgb"

    # Labels.
    given = resolve_labels(labels)
    if given is not None:
        names, labels_source = given, "argument"
    elif meta is not None and meta.labels:
        names, labels_source = meta.labels, "metadata"
    elif sidecar is not None and sidecar.labels:
        names, labels_source = sidecar.labels, "sidecar"
    else:
        names, labels_source = (), "none"
    if kind in ("binary_probability", "binary_logit") and len(names) == 1:
        # MediaPipe's convention: a one-channel model's single label names the foreground.
        log.info("%s: the one label %r names the foreground of a one-channel model; class 0 is 'background'",
                 label, names[0])
        names = ("background", names[0])
    if num_classes is not None and names and len(names) != num_classes:
        if labels_source == "argument":
            raise InvalidArgumentError(f"labels: {len(names)} names for a model with {num_classes} classes")
        raise InvalidModelError(
            f"{label}: the {labels_source} lists {len(names)} labels but the model outputs {num_classes} classes; "
            "fix the label list or pass labels=[...]"
        )
    if not names and num_classes is not None:
        names, labels_source = tuple(f"class_{i}" for i in range(num_classes)), "generated"
    if num_classes is None and names:
        num_classes = len(names)

    from ..palettes import default_palette

    count = num_classes if num_classes is not None else 256
    palette_source = "default"
    colours = default_palette(count)
    if sidecar is not None and sidecar.palette is not None:
        if len(sidecar.palette) >= count:
            colours, palette_source = sidecar.palette, "sidecar"
        else:
            palette_source = (f"default (the sidecar's palette lists {len(sidecar.palette)} colours for "
                              f"{count} classes)")
    palette: Tuple[Tuple[int, int, int], ...] = tuple((int(c[0]), int(c[1]), int(c[2])) for c in colours)

    in_shape = _input_shape(spec_in, layout, hw)
    if channels == 4:
        log.info("%s: 4-channel input: channel 4 takes the previous frame's foreground probability "
                 "(Segmenter(prior=...) for single images)", label)
    return ModelInfo(
        path=str(mf.path) if mf.path is not None else None,
        size_bytes=mf.size,
        input_name=spec_in.name,
        input_shape=in_shape,
        input_shape_signature=spec_in.shape_signature,
        input_dtype=spec_in.dtype,
        input_layout=layout,
        input_channels=channels,
        input_size=hw,
        resizable=resizable,
        input_scale=in_scale,
        input_zero_point=in_zp,
        output_name=spec_out.name,
        output_shape=spec_out.shape,
        output_dtype=spec_out.dtype,
        output_layout=out_layout,
        output_kind=kind,
        output_size=out_hw,
        output_scale=out_scale,
        output_zero_point=out_zp,
        num_classes=num_classes,
        class_names=names,
        labels_source=labels_source,
        palette=palette,
        palette_source=palette_source,
        mean=tuple(float(v) for v in mean),  # type: ignore[arg-type]
        std=tuple(float(v) for v in std),  # type: ignore[arg-type]
        normalization_source=norm_source,
        color_order=color_order,
        ignore_index=sidecar.ignore_index if sidecar is not None else None,
        operators=dict(Counter(mf.operators)),
        custom_ops=mf.custom_ops,
        metadata_name=(meta.name or None) if meta else None,
        metadata_version=(meta.version or None) if meta else None,
        sidecar=str(sidecar.path) if sidecar is not None else None,
        num_outputs=len(mf.outputs),
        output_index=out_index,
        input_prior=channels == 4,
        output_flattened=flattened,
        outputs=tuple(_describe_tensor(t) for t in specs_out),
        tensors_source="file" if tensors is None else "interpreter",
    )

