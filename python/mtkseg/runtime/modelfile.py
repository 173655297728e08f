"""Read and validate a ``.tflite`` flatbuffer before any interpreter sees it.

The interpreter backends abort or print cryptic messages on bad files, so every model goes
through :func:`read_model_file` first: the file must exist, be large enough, carry the
``TFL3`` identifier, and every table and buffer the model references must lie inside the file
(a truncated download fails here with :class:`~mtkseg.errors.InvalidModelError`).  What LiteRT's
kernels trust without checking is checked here too (a crafted value aborts or segfaults the
process there): every quantisation scale finite and positive, zero points in the range of the
tensor type, per-channel arrays as long as the quantised dimension, every tensor, buffer and
opcode index in range (``-1`` only for optional operator inputs, never for outputs).  The parse
also yields what introspection needs without running the model: input/output tensors, the
operators (with custom ops named), the operator producing each output, and the metadata
buffers (``TFLITE_METADATA``, ``min_runtime_version``...).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

from ..errors import InvalidModelError, ModelNotFoundError

__all__ = ["TensorSpec", "ModelFile", "read_model_file", "TFLITE_IDENTIFIER"]

TFLITE_IDENTIFIER = b"TFL3"
_MIN_SIZE = 32  # root offset + identifier + the smallest possible tables

# schema.fbs TensorType -> numpy dtype name (None: a type mtkseg never reads or writes).
_TENSOR_TYPES = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool", 7: "int16",
    8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64", 13: "resource",
    14: "variant", 15: "uint32", 16: "uint16", 17: "int4", 18: "bfloat16",
}


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor as declared in the flatbuffer."""

    index: int
    name: str
    dtype: str
    shape: Tuple[int, ...]
    shape_signature: Tuple[int, ...]
    scale: Tuple[float, ...] = ()
    zero_point: Tuple[int, ...] = ()

    @property
    def quantized(self) -> bool:
        """True when the tensor carries a (non-zero) quantisation scale."""
        return len(self.scale) > 0 and any(s != 0 for s in self.scale)


@dataclass(frozen=True)
class ModelFile:
    """A validated TFLite model held in memory."""

    path: Optional[Path]
    data: bytes = field(repr=False)
    inputs: Tuple[TensorSpec, ...]
    outputs: Tuple[TensorSpec, ...]
    operators: Tuple[str, ...]
    custom_ops: Tuple[str, ...]
    producers: Dict[int, str] = field(repr=False)
    metadata: Dict[str, bytes] = field(repr=False)
    schema_version: int = 3
    description: str = ""
    #: tensor index -> input tensor indices of the operator that produces it
    producer_inputs: Dict[int, Tuple[int, ...]] = field(default_factory=dict, repr=False)

    def source_op(self, tensor_index: int) -> str:
        """The operator that computes ``tensor_index``, looking through the shape-only and
        (de)quantisation ops converters append (a flattened sigmoid map is
        ``LOGISTIC → RESHAPE``): what says whether an output holds probabilities."""
        seen = set()
        t = int(tensor_index)
        op = self.producers.get(t, "")
        while op in _PASS_THROUGH_OPS and t not in seen:
            seen.add(t)
            inputs = self.producer_inputs.get(t, ())
            if not inputs:
                break
            t = inputs[0]
            op = self.producers.get(t, op)
        return op

    @property
    def size(self) -> int:
        """File size in bytes."""
        return len(self.data)

    @property
    def label(self) -> str:
        """How to name the model in messages."""
        return str(self.path) if self.path is not None else "<model bytes>"


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - ai-edge-litert is a core dependency
        try:
            from tflite_runtime import schema_py_generated as schema  # type: ignore[import-not-found,no-redef]
        except ImportError:
            from tensorflow.lite.python import schema_py_generated as schema  # type: ignore[no-redef]
    return schema


_OP_NAMES: Dict[int, str] = {}

#: Operators that move or re-encode values without changing what they mean.
_PASS_THROUGH_OPS = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "QUANTIZE", "DEQUANTIZE", "CAST"})


def _op_name(schema, code: int) -> str:
    if not _OP_NAMES:
        for name, value in vars(schema.BuiltinOperator).items():
            if not name.startswith("_") and isinstance(value, int):
                _OP_NAMES[value] = name
    return _OP_NAMES.get(code, f"BUILTIN_{code}")


def _vector_end(table, slot_offset: int) -> int:
    """End offset of the vector in ``slot_offset`` of a table (0 when absent)."""
    o = table._tab.Offset(slot_offset)
    if o == 0:
        return 0
    start = table._tab.Vector(o)
    return start + table._tab.VectorLen(o) * 1


def _tensor_spec(tensor, index: int) -> TensorSpec:
    dtype = _TENSOR_TYPES.get(tensor.Type(), f"type_{tensor.Type()}")
    shape = tuple(int(v) for v in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    sig = tuple(int(v) for v in tensor.ShapeSignatureAsNumpy()) if tensor.ShapeSignatureLength() else shape
    scale: Tuple[float, ...] = ()
    zp: Tuple[int, ...] = ()
    q = tensor.Quantization()
    if q is not None and q.ScaleLength():
        scale = tuple(float(v) for v in q.ScaleAsNumpy())
        zp = tuple(int(v) for v in q.ZeroPointAsNumpy()) if q.ZeroPointLength() else (0,) * len(scale)
    name = tensor.Name()
    return TensorSpec(index, name.decode("utf-8", "replace") if name else f"tensor_{index}", dtype, shape, sig, scale, zp)


#: zero-point range per integer TensorType (int16 is symmetric in TFLite: zero point 0).
_ZERO_POINT_RANGES = {
    9: (-128, 127), 3: (0, 255), 7: (0, 0), 17: (-8, 7), 16: (0, 65535),
    2: (-(2**31), 2**31 - 1), 4: (-(2**31), 2**31 - 1), 15: (0, 2**32 - 1), 12: (0, 2**32 - 1),
}
_FLOAT_TYPES = frozenset({0, 1, 10, 18})  # float32, float16, float64, bfloat16

#: Leading operator inputs that must be tensors (not -1); -1 here: all of them.  Builtin ops
#: not listed need their first input; the rest are optional for some op (bias, LSTM gates...).
_REQUIRED_INPUTS = {
    "CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "CONV_3D": 2, "TRANSPOSE_CONV": 3,
    "ADD": 2, "SUB": 2, "MUL": 2, "DIV": 2, "MAXIMUM": 2, "MINIMUM": 2, "SQUARED_DIFFERENCE": 2, "POW": 2,
    "FLOOR_DIV": 2, "FLOOR_MOD": 2, "BATCH_MATMUL": 2, "PRELU": 2, "STRIDED_SLICE": 4, "SLICE": 3,
    "GATHER": 2, "GATHER_ND": 2, "PAD": 2, "PADV2": 2, "MIRROR_PAD": 2, "MEAN": 2, "SUM": 2, "REDUCE_MAX": 2,
    "REDUCE_MIN": 2, "REDUCE_PROD": 2, "TRANSPOSE": 2, "RESIZE_BILINEAR": 2, "RESIZE_NEAREST_NEIGHBOR": 2,
    "SPLIT": 2, "SPLIT_V": 3, "ARG_MAX": 2, "ARG_MIN": 2, "TILE": 2, "EXPAND_DIMS": 2, "BROADCAST_TO": 2,
    "SPACE_TO_BATCH_ND": 3, "BATCH_TO_SPACE_ND": 3, "SELECT": 3, "SELECT_V2": 3, "CONCATENATION": -1, "PACK": -1,
}


def _check_quantization(tensor, t: int, sg: int, label: str) -> None:
    """Scales finite and > 0, zero points in the type's range, per-channel arrays as long as
    the quantised dimension: what the quantised kernels (and XNNPACK) assume."""
    q = tensor.Quantization()
    if q is None or not q.ScaleLength():
        return
    ttype = int(tensor.Type())
    where = f"{label}: tensor {t} ({_tensor_name(tensor, t)}, {_TENSOR_TYPES.get(ttype, f'type {ttype}')})"
    where += f" of subgraph {sg}" if sg else ""
    scales = q.ScaleAsNumpy()
    n = len(scales)
    if ttype in _FLOAT_TYPES:
        # Converters leave scale 0 on float tensors; float kernels never read it.
        if not all(math.isfinite(v) and v >= 0 for v in scales.tolist()):
            raise InvalidModelError(f"{where} has quantization scale {scales.tolist()[:4]}: scales must be finite and "
                                    ">= 0; the file is corrupt, re-export the model")
        return
    bad = [v for v in scales.tolist() if not (math.isfinite(v) and v > 0)]
    if bad:
        raise InvalidModelError(f"{where} has quantization scale {bad[0]!r}: scales must be finite and > 0; "
                                "the file is corrupt or badly quantised, re-export the model")
    zps = q.ZeroPointAsNumpy().tolist() if q.ZeroPointLength() else []
    if len(zps) != n:
        raise InvalidModelError(f"{where} has {n} quantization scale(s) but {len(zps)} zero point(s); they must match "
                                "(the file is corrupt, re-export the model)")
    lo, hi = _ZERO_POINT_RANGES.get(ttype, (-(2**31), 2**31 - 1))
    bad = [z for z in zps if not lo <= z <= hi]
    if bad:
        raise InvalidModelError(f"{where} has zero point {bad[0]}, outside {lo}..{hi} for its type; the file is "
                                "corrupt or badly quantised, re-export the model")
    if n > 1:
        shape = tensor.ShapeAsNumpy().tolist() if tensor.ShapeLength() else []
        dim = int(q.QuantizedDimension())
        if not 0 <= dim < len(shape):
            raise InvalidModelError(f"{where} is quantized per channel along dimension {dim} of a rank-{len(shape)} "
                                    "tensor; the file is corrupt, re-export the model")
        if shape[dim] > 0 and shape[dim] != n:
            raise InvalidModelError(f"{where} has {n} per-channel scales for dimension {dim} of size {shape[dim]}; "
                                    "they must match (the file is corrupt, re-export the model)")


def _tensor_name(tensor, t: int) -> str:
    name = tensor.Name()
    return repr(name.decode("utf-8", "replace")) if name else f"tensor_{t}"


def _has_data(model, tensor) -> bool:
    """True when the tensor is a constant (its buffer holds data)."""
    b = int(tensor.Buffer())
    if not 0 < b < model.BuffersLength():
        return False
    buf = model.Buffers(b)
    return bool(buf.DataLength()) or int(buf.Offset()) > 1


def _check_graph(model, codes: List[str], custom: frozenset, label: str) -> None:
    """Every subgraph's tensor, buffer and opcode indices in range and every quantisation sane."""
    num_buffers = model.BuffersLength()
    num_subgraphs = model.SubgraphsLength()
    for sg in range(num_subgraphs):
        sub = model.Subgraphs(sg)
        of = f" of subgraph {sg}" if sg else ""
        num_tensors = sub.TensorsLength()
        for t in range(num_tensors):
            tensor = sub.Tensors(t)
            tensor.ShapeLength()  # a truncated tensor table fails here, not in native code
            b = int(tensor.Buffer())
            if b and b >= num_buffers:
                raise InvalidModelError(f"{label}: tensor {t}{of} uses buffer {b}, but the model has {num_buffers} "
                                        "buffers (the file is corrupt, re-export the model)")
            _check_quantization(tensor, t, sg, label)
        for what, getter, count in (("input", sub.Inputs, sub.InputsLength()),
                                    ("output", sub.Outputs, sub.OutputsLength())):
            for j in range(count):
                t = int(getter(j))
                if not 0 <= t < num_tensors:
                    raise InvalidModelError(f"{label}: subgraph {sg} {what} {j} is tensor {t}, outside 0..{num_tensors - 1} "
                                            "(the file is corrupt, re-export the model)")
        graph_inputs = set(sub.InputsAsNumpy().tolist()) if sub.InputsLength() else set()
        written: Dict[int, int] = {}  # tensor -> the operator that writes it
        for i in range(sub.OperatorsLength()):
            op = sub.Operators(i)
            idx = int(op.OpcodeIndex())
            if idx >= len(codes):
                raise InvalidModelError(f"{label}: corrupt model (operator {i}{of} uses opcode {idx} of {len(codes)})")
            name = codes[idx]
            ins = op.InputsAsNumpy().tolist() if op.InputsLength() else []
            required = 0 if idx in custom else _REQUIRED_INPUTS.get(name, 1)
            required = len(ins) if required < 0 else required
            for pos, t in enumerate(ins):
                if t == -1 and pos >= required:
                    continue  # an omitted optional input (e.g. a convolution without bias)
                if not 0 <= t < num_tensors:
                    need = "" if t != -1 else " (-1, but this input is not optional)"
                    raise InvalidModelError(f"{label}: operator {i}{of} ({name}) input {pos} is tensor {t}{need}, "
                                            f"outside 0..{num_tensors - 1} (the file is corrupt, re-export the model)")
            outs = op.OutputsAsNumpy().tolist() if op.OutputsLength() else []
            for pos, t in enumerate(outs):
                if not 0 <= t < num_tensors:
                    raise InvalidModelError(f"{label}: operator {i}{of} ({name}) output {pos} is tensor {t}, "
                                            f"outside 0..{num_tensors - 1} (outputs are never optional; the file is "
                                            "corrupt, re-export the model)")
                # LiteRT's allocator segfaults on some graphs that write a tensor twice or in place.
                if t in written or t in ins or t in graph_inputs:
                    other = ("one of its own inputs" if t in ins else "a model input" if t in graph_inputs
                             else f"also written by operator {written[t]}")
                    raise InvalidModelError(f"{label}: operator {i}{of} ({name}) output {pos} is tensor {t}, {other}; "
                                            "every tensor has one producer (the file is corrupt, re-export the model)")
                written[t] = i
            for t in op.IntermediatesAsNumpy().tolist() if op.IntermediatesLength() else []:
                if not -1 <= t < num_tensors:
                    raise InvalidModelError(f"{label}: operator {i}{of} ({name}) intermediate tensor {t} is outside "
                                            f"0..{num_tensors - 1} (the file is corrupt, re-export the model)")
        for j in range(sub.OutputsLength()):
            t = int(sub.Outputs(j))
            if t not in written and t not in graph_inputs and not _has_data(model, sub.Tensors(t)):
                raise InvalidModelError(f"{label}: subgraph {sg} output {j} is tensor {t}, which no operator computes "
                                        "(the file is corrupt, re-export the model)")
    for i in range(model.SignatureDefsLength()):
        sig = model.SignatureDefs(i)
        sg = int(sig.SubgraphIndex())
        if not 0 <= sg < num_subgraphs:
            raise InvalidModelError(f"{label}: signature {i} names subgraph {sg} of {num_subgraphs} (the file is corrupt)")
        n = model.Subgraphs(sg).TensorsLength()
        for getter, count in ((sig.Inputs, sig.InputsLength()), (sig.Outputs, sig.OutputsLength())):
            for j in range(count):
                t = int(getter(j).TensorIndex())
                if not 0 <= t < n:
                    raise InvalidModelError(f"{label}: signature {i} refers to tensor {t}, outside 0..{n - 1} "
                                            "(the file is corrupt, re-export the model)")
    for i in range(model.MetadataLength()):
        b = int(model.Metadata(i).Buffer())
        if not 0 <= b < num_buffers:
            raise InvalidModelError(f"{label}: metadata entry {i} uses buffer {b} of {num_buffers} (the file is corrupt)")


def _parse(data: bytes, label: str, path: Optional[Path]) -> ModelFile:
    schema = _schema()
    size = len(data)
    root = struct.unpack_from("<I", data, 0)[0]
    if root < 8 or root + 4 > size:
        raise InvalidModelError(f"{label}: corrupt TFLite flatbuffer (root table offset {root} outside the {size}-byte file)")
    model = schema.Model.GetRootAs(data, 0)
    if model.SubgraphsLength() < 1:
        raise InvalidModelError(f"{label}: the TFLite model has no subgraph")
    # Buffers: every data vector (and every external offset/size) must lie inside the file.
    for i in range(model.BuffersLength()):
        buf = model.Buffers(i)
        if buf is None:
            continue
        end = _vector_end(buf, 4)
        if end > size:
            raise InvalidModelError(f"{label}: truncated model (buffer {i} ends at byte {end} of a {size}-byte file)")
        offset, length = int(buf.Offset()), int(buf.Size())
        if offset > 1 and offset + length > size:
            raise InvalidModelError(
                f"{label}: truncated model (buffer {i} expects {offset + length} bytes, the file has {size})"
            )
    codes = []
    custom = []
    custom_codes = []  # opcode indices of custom operators (whose inputs mtkseg cannot know)
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        if code == schema.BuiltinOperator.CUSTOM:
            raw = oc.CustomCode()
            name = raw.decode("utf-8", "replace") if raw else "<unnamed custom op>"
            custom.append(name)
            custom_codes.append(i)
            codes.append(name)
        else:
            codes.append(_op_name(schema, code))
    _check_graph(model, codes, frozenset(custom_codes), label)
    sub = model.Subgraphs(0)
    num_tensors = sub.TensorsLength()
    producers: Dict[int, str] = {}
    producer_inputs: Dict[int, Tuple[int, ...]] = {}
    operators = []
    for i in range(sub.OperatorsLength()):
        op = sub.Operators(i)
        idx = int(op.OpcodeIndex())
        if idx >= len(codes):
            raise InvalidModelError(f"{label}: corrupt model (operator {i} uses opcode {idx} of {len(codes)})")
        operators.append(codes[idx])
        ins = tuple(int(v) for v in op.InputsAsNumpy()) if op.InputsLength() else ()
        for t in op.OutputsAsNumpy() if op.OutputsLength() else ():
            producers[int(t)] = codes[idx]
            producer_inputs[int(t)] = ins
    inputs: List[TensorSpec] = []
    outputs: List[TensorSpec] = []
    for getter, count, dest in ((sub.Inputs, sub.InputsLength(), inputs), (sub.Outputs, sub.OutputsLength(), outputs)):
        for j in range(count):
            t = int(getter(j))
            if not 0 <= t < num_tensors:
                raise InvalidModelError(f"{label}: corrupt model (tensor index {t} of {num_tensors})")
            dest.append(_tensor_spec(sub.Tensors(t), t))
    metadata: Dict[str, bytes] = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        name = (entry.Name() or b"").decode("utf-8", "replace")
        b = int(entry.Buffer())
        if 0 <= b < model.BuffersLength():
            buf = model.Buffers(b)
            off, length = int(buf.Offset()), int(buf.Size())
            if buf.DataLength():
                start = buf._tab.Vector(buf._tab.Offset(4))
                metadata[name] = bytes(data[start : start + buf.DataLength()])
            elif off > 1:
                metadata[name] = bytes(data[off : off + length])
    desc = model.Description()
    return ModelFile(
        path=path,
        data=data,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        operators=tuple(operators),
        custom_ops=tuple(dict.fromkeys(custom)),
        producers=producers,
        metadata=metadata,
        schema_version=int(model.Version()),
        description=desc.decode("utf-8", "replace") if desc else "",
        producer_inputs=producer_inputs,
    )


def read_model_file(model: Union[str, Path, bytes, bytearray, memoryview]) -> ModelFile:
    """Load and validate a TFLite model from a path (or from bytes already in memory).

    Raises:
        ModelNotFoundError: the path does not exist or is a directory.
        InvalidModelError: not a TFLite flatbuffer (wrong identifier, too small) or truncated.
    """
    path: Optional[Path]
    if isinstance(model, (bytes, bytearray, memoryview)):
        data, path, label = bytes(model), None, "<model bytes>"
    elif isinstance(model, (str, Path)):
        path = Path(model).expanduser()
        label = str(path)
        if not path.exists():
            raise ModelNotFoundError(f"model file not found: {path} (pass the path of a .tflite file)")
        if path.is_dir():
            raise ModelNotFoundError(f"model path is a directory, not a .tflite file: {path}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelNotFoundError(f"cannot read model file {path}: {exc}") from exc
    else:
        from ..errors import InvalidTypeError

        raise InvalidTypeError(f"model: expected a path (str or Path) or bytes, got {type(model).__name__}")
    if len(data) < _MIN_SIZE:
        raise InvalidModelError(f"{label}: {len(data)} bytes is too small to be a TFLite model (empty or truncated file?)")
    ident = data[4:8]
    if ident != TFLITE_IDENTIFIER:
        hint = ""
        if data[:4] == b"PK\x03\x04":
            hint = " (it is a zip archive: extract the .tflite file from it)"
        elif data[:8] == b"\x89HDF\r\n\x1a\n":
            hint = " (it is a Keras .h5 file: convert it with `mtkseg export` or tf.lite.TFLiteConverter)"
        elif data[:1] == b"\x08":
            hint = " (it looks like a protobuf, e.g. ONNX or a SavedModel .pb: convert it to TFLite first)"
        raise InvalidModelError(
            f"{label}: not a TFLite flatbuffer (file identifier {ident!r}, expected {TFLITE_IDENTIFIER!r}){hint}"
        )
    try:
        return _parse(data, label, path)
    except InvalidModelError:
        raise
    except (struct.error, IndexError, ValueError, TypeError, AttributeError, UnicodeError) as exc:
        raise InvalidModelError(f"{label}: truncated or corrupt TFLite flatbuffer ({type(exc).__name__}: {exc})") from exc

