"""Crafted model files: runtime/modelfile.py and runtime/metadata.py must refuse them with a
typed error before LiteRT (or zipfile) trusts what they declare.

* associated-file zip bombs appended to a model's metadata (bounded size and ratio, capped read);
* quantisation parameters, tensor/buffer indices and per-channel arrays that LiteRT's kernels
  trust (a bad scale aborts in QuantizeMultiplierSmallerThanOneExp, an output index of -1
  segfaults in strided_slice::Prepare).  Models are mutated through the flatbuffer object API
  (``ModelT``) and every interpreter-touching check runs in a subprocess, so a crash fails the
  test instead of killing pytest.
"""

from __future__ import annotations

import io
import math
import re
import struct
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, require_shared
from fixtures import mutate
from fixtures.isolated import describe, load_isolated
from fixtures.reference import model_path

from mtkseg import runtime
from mtkseg.errors import InvalidModelError, UnsupportedModelError
from mtkseg.runtime import metadata as md

MiB = 1024 * 1024
EXTERNAL = SHARED_DATA.parent / "models" / "external"
CORAL = "coral_deeplabv3_mnv2_pascal_quant.tflite"  # uint8, per-tensor
FACE = "terryky_face_segmentation_bisenetv2_celebamaskhq_256x256_integer_quant.tflite"  # int8, per-channel


# ----------------------------------------------------------------------------- zip bombs

def _zeros_deflate(total: int, chunk: int = MiB) -> bytes:
    """A raw deflate stream of ``total`` zero bytes, built without compressing them all: after
    a full flush the compressor's output for the same chunk repeats."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(b"\0" * chunk) + c.flush(zlib.Z_FULL_FLUSH)
    repeat = c.compress(b"\0" * chunk) + c.flush(zlib.Z_FULL_FLUSH)
    last = c.compress(b"\0" * chunk) + c.flush()
    n = total // chunk
    assert n >= 3
    return first + repeat * (n - 2) + last


def _zip(name: str, payload: bytes, declared_size: int, crc: int = 0) -> bytes:
    """A one-member deflate zip whose headers declare ``declared_size`` uncompressed bytes
    (ZIP64 extra fields when it does not fit 32 bits)."""
    fname = name.encode()
    zip64 = declared_size >= 0xFFFFFFFF
    size32 = 0xFFFFFFFF if zip64 else declared_size
    csize32 = 0xFFFFFFFF if zip64 else len(payload)
    extra = struct.pack("<HHQQ", 1, 16, declared_size, len(payload)) if zip64 else b""
    version = 45 if zip64 else 20
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, version, 0, 8, 0, 0x21, crc, csize32, size32,
                        len(fname), len(extra)) + fname + extra
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, version, version, 0, 8, 0, 0x21, crc, csize32,
                          size32, len(fname), len(extra), 0, 0, 0, 0, 0) + fname + extra
    body = local + payload
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(body), 0)
    return body + central + eocd


def _bomb_model(tmp_path: Path, kind: str) -> Path:
    """tests/fixtures/models/metadata.tflite with a crafted zip appended (zipfile reads the last
    archive in the file, so its labels.txt replaces the fixture's)."""
    base = Path(model_path("metadata")).read_bytes()
    if kind == "declared_10GiB":  # headers say 10 GiB; ~1 MiB of real deflate data
        payload = _zeros_deflate(1024 * MiB)
        archive = _zip("labels.txt", payload, 10 * 1024 * MiB)
    elif kind == "ratio_1000":  # honest headers: 12 MiB (under the size cap) compressed ~1000:1
        payload = _zeros_deflate(12 * MiB)
        archive = _zip("labels.txt", payload, 12 * MiB, crc=zlib.crc32(b"\0" * 12 * MiB))
    else:  # "understated": headers claim a plausible 4 MiB, the data inflates to 1 GiB
        payload = _zeros_deflate(1024 * MiB)
        archive = _zip("labels.txt", payload, 4 * MiB)
    path = tmp_path / f"bomb_{kind}.tflite"
    path.write_bytes(base + archive)
    return path


@pytest.mark.parametrize("kind, match", [
    ("declared_10GiB", r"'labels\.txt'.*10737418240 bytes.*16777216-byte limit"),
    ("ratio_1000", r"'labels\.txt'.*compressed \d+:1.*100:1 limit"),
    ("understated", r"'labels\.txt'.*inflates past its declared 4194304 bytes"),
])
def test_metadata_zip_bomb_fails_fast_with_bounded_memory(tmp_path, kind, match):
    path = _bomb_model(tmp_path, kind)
    assert path.stat().st_size < 1.2 * MiB
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(InvalidModelError, match=match):
            runtime.inspect_model(str(path))
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Measured (x86-64, 2 cores shared with a training job): 4-22 ms and 0.1-1.1 MiB traced for the
    # header checks, 14 ms and 5.8 MiB for the understated member (inflated to its declared 4 MiB).
    # Before the fix the understated and ratio cases took ~5 s each (1 GiB / 12 MiB inflated).
    assert elapsed < 0.5, f"{kind}: {elapsed:.2f} s"
    assert peak < 16 * MiB, f"{kind}: peak {peak / MiB:.1f} MiB"


def test_associated_file_limits_keep_real_label_files():
    info = runtime.inspect_model(model_path("metadata"))
    assert info.class_names == ("road", "lane marking", "vehicle", "other")
    text = "\n".join(f"class {i}" for i in range(20000)).encode()  # ~200 KB, compresses well
    archive = zlib.compress(text)
    assert len(text) / len(archive) < md.MAX_COMPRESSION_RATIO
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("labels.txt", text)
    assert md._zip_file(buf.getvalue(), "labels.txt") == text
    assert md._zip_file(buf.getvalue(), "other.txt") is None
    assert md._zip_file(b"not a zip", "labels.txt") is None


# ----------------------------------------------------------------------------- crafted tensors and indices

def _scale(value):
    def edit(m):
        i, t = next(mutate.quantized_tensors(m, types=(9, 3)))
        t.quantization.scale = np.array([value], np.float32)
    return edit


def _zero_point(value, types):
    def edit(m):
        i, t = next(mutate.quantized_tensors(m, types=types, channels=0))
        t.quantization.zeroPoint = np.full(len(t.quantization.scale), value, np.int64)
    return edit


def _per_channel(edit_q):
    def edit(m):
        i, t = next(mutate.quantized_tensors(m, channels=2))
        edit_q(t.quantization)
    return edit


def _op_output(op_name, value):
    def edit(m):
        op = m.subgraphs[0].operators[mutate.operator_index(m, op_name) if op_name else 0]
        op.outputs = np.array(op.outputs, np.int32)  # unpacked vectors are read-only views
        op.outputs[0] = len(m.subgraphs[0].tensors) if value == "end" else value
    return edit


def _op_input(value):
    def edit(m):
        op = m.subgraphs[0].operators[0]
        op.inputs = np.array(op.inputs, np.int32)
        op.inputs[0] = len(m.subgraphs[0].tensors) if value == "end" else value
    return edit


def _last_op_output(to):
    """The last operator writes ``to``: "input" (in place; segfaults LiteRT's allocator) or
    "earlier" (an earlier operator's output; the model output is then never computed)."""
    def edit(m):
        ops = m.subgraphs[0].operators
        ops[-1].outputs = np.array([ops[-1].inputs[0] if to == "input" else ops[-3].outputs[0]], np.int32)
    return edit


def _truncate_channels(q):
    q.scale, q.zeroPoint = q.scale[:-1], q.zeroPoint[:-1]


def _tensor_buffer(m):
    m.subgraphs[0].tensors[0].buffer = len(m.buffers) + 5


def _subgraph_output(m):
    m.subgraphs[0].outputs = np.array(m.subgraphs[0].outputs, np.int32)
    m.subgraphs[0].outputs[0] = 10**6


def _unchanged(m):
    pass


#: name -> (model: fixture name or external file, edit, expected message)
MUTATIONS = {
    "roundtrip_int8": ("int8_io", _unchanged, None),
    "roundtrip_coral": (CORAL, _unchanged, None),
    "scale_zero": ("int8_io", _scale(0.0), r"tensor \d+ .*int8\) has quantization scale 0\.0: scales must be finite and > 0"),
    "scale_nan": ("int8_io", _scale(math.nan), r"quantization scale nan"),
    "scale_negative": ("uint8_io", _scale(-0.25), r"uint8\) has quantization scale -0\.25"),
    "scale_inf_external": (CORAL, _scale(math.inf), r"quantization scale inf"),
    "scale_tiny_external": (FACE, _scale(0.0), r"int8\) has quantization scale 0\.0"),
    "zero_point_int8": ("int8_io", _zero_point(200, (9,)), r"zero point 200, outside -128\.\.127"),
    "zero_point_uint8": (CORAL, _zero_point(-1, (3,)), r"zero point -1, outside 0\.\.255"),
    "zero_point_int32": ("int8_io", _zero_point(2**40, (2,)), r"zero point 1099511627776, outside -2147483648"),
    "per_channel_length": (FACE, _per_channel(_truncate_channels), r"per-channel scales for dimension \d+ of size"),
    "per_channel_dimension": (FACE, _per_channel(lambda q: setattr(q, "quantizedDimension", 7)),
                              r"per channel along dimension 7 of a rank-\d tensor"),
    "zero_point_count": (FACE, _per_channel(lambda q: setattr(q, "zeroPoint", q.zeroPoint[:1])),
                         r"\d+ quantization scale\(s\) but 1 zero point\(s\)"),
    "strided_slice_output_minus1": ("logit_map", _op_output("STRIDED_SLICE", -1),
                                    r"\(STRIDED_SLICE\) output 0 is tensor -1.*outputs are never optional"),
    "output_past_end": ("float32", _op_output(None, "end"), r"operator 0 \(\w+\) output 0 is tensor \d+, outside"),
    "output_minus1_external": (CORAL, _op_output(None, -1), r"operator 0 \(\w+\) output 0 is tensor -1"),
    "output_is_own_input": ("uint8_io", _last_op_output("input"),
                            r"\(QUANTIZE\) output 0 is tensor \d+, one of its own inputs"),
    "output_written_twice": ("uint8_io", _last_op_output("earlier"),
                             r"\(QUANTIZE\) output 0 is tensor \d+, also written by operator \d+"),
    "input_minus1": ("float32", _op_input(-1), r"input 0 is tensor -1 \(-1, but this input is not optional\)"),
    "input_past_end": ("int8_io", _op_input("end"), r"input 0 is tensor \d+, outside"),
    "buffer_past_end": ("float32", _tensor_buffer, r"tensor 0 uses buffer \d+, but the model has \d+ buffers"),
    "subgraph_output_past_end": ("float32", _subgraph_output, r"subgraph 0 output 0 is tensor 1000000"),
}


@pytest.fixture(scope="module")
def mutated(tmp_path_factory):
    """Every MUTATIONS model written out and loaded in one child process: name -> result."""
    out = tmp_path_factory.mktemp("mutated")
    paths = {}
    for name, (source, edit, _) in MUTATIONS.items():
        src = Path(model_path(source)) if not source.endswith(".tflite") else EXTERNAL / source
        if not src.exists():
            continue  # the test itself calls require_shared
        model = mutate.unpack(src)
        edit(model)
        paths[name] = out / f"{name}.tflite"
        paths[name].write_bytes(mutate.pack(model))
    results = load_isolated(list(paths.values()))
    return {name: results[str(p)] for name, p in paths.items()}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_crafted_model_is_refused_before_litert(mutated, name):
    source, _, expected = MUTATIONS[name]
    if source.endswith(".tflite"):
        require_shared(EXTERNAL / source)
    result = mutated[name]
    assert result["outcome"] not in ("crash", "hang", "untyped"), describe(result)
    if expected is None:  # the object-API round trip itself keeps a valid model
        assert result["outcome"] == "ran", describe(result)
        return
    assert result["outcome"] == "error" and result["type"] == "InvalidModelError", describe(result)
    assert re.search(expected, result["message"]), describe(result)
    assert "re-export" in result["message"]  # says what to do


def test_with_shapes_of_the_wrong_rank_is_a_typed_error():
    info = runtime.inspect_model(model_path("float32"))
    with pytest.raises(UnsupportedModelError, match=r"output .* of shape \[5\].*pass output="):
        info.with_shapes(info.input_shape, (5,))
    with pytest.raises(UnsupportedModelError, match=r"input .* as \[64\].*at least 3 dimensions"):
        info.with_shapes((64,), info.output_shape)
    assert info.with_shapes(info.input_shape, info.output_shape) == info
