"""mtkseg.runtime: model validation, introspection, metadata/sidecar, backends, delegates, accelerators."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import require_shared
from fixtures.reference import (
    DEFAULT_MODEL,
    SHARED_DATA,
    NearestResizeReference,
    Reference,
    SwappedColourReference,
    agreement,
    decode_frames,
    model_path,
    sidecar_normalization,
    smooth_frame,
)

import mtkseg
from mtkseg import runtime
from mtkseg.errors import (
    BackendError,
    DelegateError,
    InvalidArgumentError,
    InvalidModelError,
    InvalidTypeError,
    ModelNotFoundError,
    UnsupportedModelError,
    UnsupportedOpError,
)
from mtkseg.runtime import delegates as dl
from mtkseg.runtime.info import parse_normalization


@pytest.fixture
def frame():
    return smooth_frame(np.random.default_rng(5), 90, 140)


def _copy_model(tmp_path: Path, name: str, new_name: str = None) -> Path:
    dst = tmp_path / f"{new_name or name}.tflite"
    shutil.copy(model_path(name), dst)
    return dst


# ----------------------------------------------------------------------------- file validation

def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not found"):
        runtime.read_model_file(tmp_path / "nope.tflite")
    with pytest.raises(ModelNotFoundError, match="directory"):
        runtime.read_model_file(tmp_path)
    with pytest.raises(ModelNotFoundError):
        mtkseg.Segmenter(tmp_path / "nope.tflite")
    with pytest.raises(InvalidTypeError):
        mtkseg.Segmenter(12)


@pytest.mark.parametrize(
    "content,match",
    [(b"", "too small"), (b"x" * 10, "too small"), (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "not a TFLite"),
     (b"PK\x03\x04" + b"\0" * 64, "zip"), (b"\x08\x01\x12" + b"\0" * 64, "protobuf"), (bytes(range(256)) * 4, "not a TFLite")],
    ids=["empty", "tiny", "png", "zip", "protobuf", "noise"],
)
def test_not_a_flatbuffer(tmp_path, content, match):
    p = tmp_path / "bad.tflite"
    p.write_bytes(content)
    with pytest.raises(InvalidModelError, match=match):
        runtime.read_model_file(p)
    with pytest.raises(InvalidModelError):
        mtkseg.Segmenter(p)


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 0.999])
def test_truncated_models_raise_and_never_crash(tmp_path, fraction):
    data = Path(model_path("int8_io")).read_bytes()
    p = tmp_path / "truncated.tflite"
    p.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(InvalidModelError, match="truncated|corrupt|too small"):
        mtkseg.Segmenter(p)


def test_corrupt_root_offset(tmp_path):
    data = bytearray(Path(model_path("float32")).read_bytes())
    data[0:4] = (len(data) + 100).to_bytes(4, "little")
    p = tmp_path / "corrupt.tflite"
    p.write_bytes(bytes(data))
    with pytest.raises(InvalidModelError, match="corrupt"):
        runtime.read_model_file(p)


def test_model_from_bytes(frame):
    data = Path(model_path("float32")).read_bytes()
    seg = mtkseg.Segmenter(data, delegate="cpu")
    assert seg.info.path is None
    np.testing.assert_array_equal(seg.run(frame).mask, mtkseg.Segmenter(model_path("float32"), delegate="cpu").run(frame).mask)


# ----------------------------------------------------------------------------- introspection

EXPECTED = {
    # name: (input dtype, layout, channels, (h, w), output kind, output layout, output (h, w), classes, quantised out)
    "float32": ("float32", "nhwc", 3, (64, 96), "logits", "nhwc", (64, 96), 5, False),
    "float16": ("float32", "nhwc", 3, (64, 96), "logits", "nhwc", (32, 48), 5, False),
    "dynamic_range": ("float32", "nhwc", 3, (64, 96), "logits", "nhwc", (64, 96), 5, False),
    "int8_io": ("int8", "nhwc", 3, (192, 320), "logits", "nhwc", (192, 320), 11, True),
    "uint8_io": ("uint8", "nhwc", 3, (64, 96), "logits", "nhwc", (64, 96), 5, True),
    "float_io_int8": ("float32", "nhwc", 3, (64, 96), "logits", "nhwc", (64, 96), 5, False),
    "class_index": ("float32", "nhwc", 3, (64, 96), "class_index", "nhwc", (64, 96), None, False),
    "sigmoid": ("float32", "nhwc", 3, (64, 96), "binary_probability", "nhwc", (64, 96), 2, False),
    "nchw_output": ("float32", "nhwc", 3, (64, 96), "logits", "nchw", (64, 96), 5, False),
    "nchw_input": ("float32", "nchw", 3, (64, 96), "logits", "nhwc", (64, 96), 5, False),
    "portrait": ("float32", "nhwc", 3, (96, 48), "logits", "nhwc", (96, 48), 4, False),
    "gray_input": ("float32", "nhwc", 1, (64, 96), "logits", "nhwc", (64, 96), 3, False),
    "metadata": ("float32", "nhwc", 3, (64, 96), "logits", "nhwc", (64, 96), 4, False),
    "sidecar": ("float32", "nhwc", 3, (64, 96), "logits", "nhwc", (64, 96), 3, False),
    "custom_op": ("float32", "nhwc", 3, (32, 48), "logits", "nhwc", (32, 48), 5, False),
    "class_index_int32": ("float32", "nhwc", 3, (64, 96), "class_index", "nhwc", (64, 96), None, False),
    "class_index_uint8": ("float32", "nhwc", 3, (64, 96), "class_index", "nhwc", (64, 96), None, False),
    "logit_map": ("float32", "nhwc", 3, (64, 96), "binary_logit", "nhwc", (64, 96), 2, False),
    "softmax": ("float32", "nhwc", 3, (64, 96), "probabilities", "nhwc", (64, 96), 5, False),
    "float16_input": ("float16", "nhwc", 3, (64, 96), "logits", "nhwc", (64, 96), 5, False),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_inspect_model(name):
    info = runtime.inspect_model(model_path(name))
    dtype, layout, channels, hw, kind, out_layout, out_hw, classes, qout = EXPECTED[name]
    assert (info.input_dtype, info.input_layout, info.input_channels, info.input_size) == (dtype, layout, channels, hw)
    assert (info.output_kind, info.output_layout, info.output_size, info.num_classes) == (kind, out_layout, out_hw, classes)
    assert info.quantized_output == qout
    assert info.quantized_input == (dtype in ("int8", "uint8"))
    assert info.size_bytes == Path(model_path(name)).stat().st_size < 1024 * 1024
    d = json.loads(info.to_json())
    assert d["input_size"] == list(hw) and d["output_kind"] == kind
    text = str(info)
    assert "input size:" in text and kind in text


def test_quantisation_parameters_and_inferred_range():
    info = runtime.inspect_model(model_path("int8_io"))
    assert info.input_scale == pytest.approx(1 / 255, rel=1e-3) and info.input_zero_point == -128
    assert info.output_scale > 0 and -128 <= info.output_zero_point <= 127
    assert info.normalization_source == "quantization" and info.std == (255.0, 255.0, 255.0)


def test_operators_and_custom_ops():
    info = runtime.inspect_model(model_path("custom_op"))
    assert info.custom_ops == ("MtksegMagicOp",)
    assert info.operators["MtksegMagicOp"] == 2 and info.operators["CONV_2D"] >= 1
    assert "custom ops:" in str(info)


def test_custom_op_raises_unsupported_op_naming_op_and_backend():
    with pytest.raises(UnsupportedOpError, match="MtksegMagicOp") as exc:
        mtkseg.Segmenter(model_path("custom_op"))
    assert "ai-edge-litert" in str(exc.value)


@pytest.mark.parametrize(
    "name,match",
    [("classifier", r"not a segmentation map"), ("int32_input", r"dtype int32"), ("two_channel_input", r"2 channels")],
)
def test_unsupported_layouts(name, match):
    with pytest.raises(UnsupportedModelError, match=match):
        runtime.inspect_model(model_path(name))
    with pytest.raises(UnsupportedModelError):
        mtkseg.Segmenter(model_path(name))


def test_dynamic_input_needs_a_size():
    with pytest.raises(UnsupportedModelError, match="input_size"):
        runtime.inspect_model(model_path("dynamic_shape"))
    info = runtime.inspect_model(model_path("dynamic_shape"), input_size=(40, 56))
    assert info.resizable and info.input_size == (40, 56) and info.input_shape == (1, 40, 56, 3)


# ----------------------------------------------------------------------------- metadata + sidecar

def test_tflite_metadata_reader():
    mf = runtime.read_model_file(model_path("metadata"))
    assert "TFLITE_METADATA" in mf.metadata
    meta = runtime.read_tflite_metadata(mf.metadata["TFLITE_METADATA"], mf.data)
    assert meta.mean == (127.5, 127.5, 127.5) and meta.std == (127.5, 127.5, 127.5)
    assert meta.color_space == "rgb" and meta.label_file == "labels.txt"
    assert meta.labels == ("road", "lane marking", "vehicle", "other")
    assert (meta.name, meta.version) == ("mtkseg metadata fixture", "1.2.3")
    info = runtime.inspect_model(model_path("metadata"))
    assert info.normalization_source == "metadata" and info.labels_source == "metadata"
    assert info.class_names[1] == "lane marking" and info.metadata_version == "1.2.3"


def test_corrupt_metadata_buffer():
    with pytest.raises(InvalidModelError, match="metadata"):
        runtime.read_tflite_metadata(b"\x10\0\0\0XXXX" + b"\0" * 20, b"")
    data = runtime.read_model_file(model_path("metadata")).metadata["TFLITE_METADATA"]
    broken = data[:4] + data[4:8] + b"\xff" * (len(data) - 8)
    with pytest.raises(InvalidModelError, match="corrupt"):
        runtime.read_tflite_metadata(broken, b"")


def test_sidecar_is_used():
    info = runtime.inspect_model(model_path("sidecar"))
    assert info.normalization_source == "sidecar" and info.mean == (123.7, 116.3, 103.5)
    assert info.class_names == ("background", "road", "car") and info.labels_source == "sidecar"
    assert info.palette[1] == (128, 64, 128) and info.ignore_index == 255 and info.palette_source == "sidecar"
    assert info.sidecar.endswith("sidecar.json")


def test_short_sidecar_palette_is_reported_not_silently_replaced(tmp_path, capsys):
    model = _copy_model(tmp_path, "sidecar", "m")
    (tmp_path / "m.json").write_text(json.dumps({"palette": [[1, 2, 3], [4, 5, 6]]}))  # 2 colours, 3 classes
    info = runtime.inspect_model(model)
    assert info.palette_source == "default (the sidecar's palette lists 2 colours for 3 classes)"
    assert (1, 2, 3) not in info.palette and len(info.palette) == 3
    from mtkseg.cli import main

    assert main(["info", str(model), "--no-load"]) == 0
    assert "palette:        default (the sidecar's palette lists 2 colours for 3 classes)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "doc,match",
    [("{not json", "not valid JSON"), ([1, 2], "JSON object"), ({"format": "other/1"}, "unknown format"),
     ({"format": "mtkseg-model/2"}, "newer"), ({"labels": "abc"}, "labels"), ({"labels": ["a", "b"]}, "3 classes"),
     ({"palette": [[0, 0]]}, "palette"), ({"normalization": {"mean": [0, 0, 0]}}, "normalization"),
     ({"normalization": {"mean": [0, 0, 0], "std": [1, 0, 1]}}, "positive"), ({"color_order": "hsv"}, "color_order"),
     ({"input_size": [0, 5]}, "input_size"), ({"ignore_index": "x"}, "ignore_index")],
)
def test_invalid_sidecars(tmp_path, doc, match):
    model = _copy_model(tmp_path, "sidecar", "m")
    (tmp_path / "m.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
    with pytest.raises(InvalidModelError, match=match):
        runtime.inspect_model(model)


def test_sidecar_colour_order_and_explicit_overrides(tmp_path, frame):
    model = _copy_model(tmp_path, "sidecar", "m")
    (tmp_path / "m.json").write_text(json.dumps({"format": "mtkseg-model/1", "color_order": "bgr"}))
    seg = mtkseg.Segmenter(model, delegate="cpu", normalization="unit", labels=["x", "y", "z"])
    assert seg.info.color_order == "bgr" and seg.info.normalization_source == "argument"
    assert seg.class_names == ("x", "y", "z")
    # a BGR model fed a BGR frame = an RGB model fed the channel-swapped frame
    rgb_seg = mtkseg.Segmenter(model_path("float32").replace("float32", "sidecar"), delegate="cpu", normalization="unit")
    np.testing.assert_array_equal(seg.run(frame).mask, rgb_seg.run(np.ascontiguousarray(frame[:, :, ::-1])).mask)


def test_parse_normalization():
    assert parse_normalization("unit") == ((0.0,) * 3, (255.0,) * 3)
    assert parse_normalization("RAW") == ((0.0,) * 3, (1.0,) * 3)
    assert parse_normalization("symmetric") == ((127.5,) * 3, (127.5,) * 3)
    assert parse_normalization((128, 64)) == ((128.0,) * 3, (64.0,) * 3)
    assert parse_normalization({"mean": [1, 2, 3], "std": [4, 5, 6]}) == ((1.0, 2.0, 3.0), (4.0, 5.0, 6.0))
    assert parse_normalization(None) is None
    for bad in ("imagenet", (1, 2, 3), {"mean": 1}, ((1, 2), 3), ("a", "b"), (0, float("nan"))):
        with pytest.raises((InvalidArgumentError, InvalidTypeError)):
            parse_normalization(bad)


# ----------------------------------------------------------------------------- backends

def test_backend_order(monkeypatch):
    from mtkseg.runtime import backends

    assert backends.get_backend().name == "ai-edge-litert"
    monkeypatch.setattr(backends, "_cache", {})
    monkeypatch.setattr(backends, "BACKENDS", (("ai-edge-litert", "no_such_module_xyz"), ("tflite-runtime", "ai_edge_litert.interpreter")))
    assert backends.get_backend().name == "tflite-runtime"  # falls through to the next importable one
    monkeypatch.setattr(backends, "_cache", {})
    monkeypatch.setattr(backends, "BACKENDS", (("ai-edge-litert", "no_such_module_xyz"),))
    with pytest.raises(BackendError, match="pip install ai-edge-litert"):
        backends.get_backend()
    with pytest.raises(InvalidArgumentError):
        backends.get_backend("onnxruntime")


def test_num_threads(monkeypatch):
    from mtkseg.runtime import session

    assert session.check_num_threads(None) == runtime.default_num_threads() >= 1
    assert session.check_num_threads(3) == 3
    with pytest.raises(InvalidArgumentError):
        session.check_num_threads(0)
    with pytest.raises(InvalidTypeError):
        session.check_num_threads(2.0)
    assert mtkseg.Segmenter(model_path("float32"), delegate="cpu").num_threads == runtime.default_num_threads()


# ----------------------------------------------------------------------------- delegates

def test_delegate_chains(monkeypatch):
    for var in ("ANDROID_ROOT", "ANDROID_DATA", "MTKSEG_GPU_DELEGATE", "MTKSEG_NEURON_DELEGATE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(dl.platform, "machine", lambda: "x86_64")
    chain, explicit = dl.delegate_candidates("auto")
    assert [c.name for c in chain] == ["cpu"] and not explicit  # x86-64: XNNPACK only, no Neuron/NNAPI/GPU probing
    assert dl.delegate_candidates("gpu")[0][0].libraries == ("gpu_external_delegate.so", "libtensorflowlite_gpu_delegate.so")
    neuron = dl.delegate_candidates("neuron")[0][0]
    assert neuron.libraries == () and "no MediaTek NPU on this platform" in neuron.unavailable
    monkeypatch.setattr(dl.platform, "machine", lambda: "aarch64")  # e.g. a Genio board
    chain, _ = dl.delegate_candidates("auto")
    assert [c.name for c in chain] == ["neuron", "gpu", "cpu"]
    assert chain[0].libraries == ("libneuron_stable_delegate.so", "libneuron_delegate.so",
                                  "libtensorflowlite_neuron_delegate.so")
    monkeypatch.setattr(dl.platform, "machine", lambda: "x86_64")
    monkeypatch.setenv("ANDROID_ROOT", "/system")  # Android (emulators too): CompiledModel NPU first, then these
    chain, _ = dl.delegate_candidates("auto")
    assert [c.name for c in chain] == ["gpu", "cpu"]  # NNAPI only when asked
    assert "libtensorflowlite_gpu_jni.so" in chain[0].libraries
    monkeypatch.delenv("ANDROID_ROOT")
    monkeypatch.setenv("MTKSEG_GPU_DELEGATE", "/opt/gpu.so")
    assert dl.delegate_candidates("gpu") == ([dl.DelegateCandidate("gpu", ("/opt/gpu.so",))], True)
    chain, explicit = dl.delegate_candidates(["/x/lib.so", "xnnpack"])
    assert [c.name for c in chain] == ["/x/lib.so", "cpu"] and not explicit
    assert dl.delegate_candidates(Path("/x/libd.so"))[0][0].libraries == ("/x/libd.so",)
    monkeypatch.setenv("MTKSEG_NEURON_DELEGATE", "/opt/neuron.so")  # an explicit absolute override is probed
    assert [c.name for c in dl.delegate_candidates("auto")[0]] == ["neuron", "gpu", "cpu"]  # (gpu: MTKSEG_GPU_DELEGATE)
    for relative in ("libneuron_delegate.so", "lib/neuron.so"):
        monkeypatch.setenv("MTKSEG_NEURON_DELEGATE", relative)
        with pytest.raises(DelegateError, match=r"MTKSEG_NEURON_DELEGATE=.* is not an absolute path"):
            dl.delegate_candidates("auto")
    monkeypatch.delenv("MTKSEG_NEURON_DELEGATE")
    with pytest.raises(InvalidArgumentError, match="unknown delegate"):
        dl.delegate_candidates("tpu")
    with pytest.raises(InvalidArgumentError):
        dl.delegate_candidates([])
    with pytest.raises(InvalidTypeError):
        dl.delegate_candidates(3)


def test_delegate_options():
    gpu = dl.DelegateCandidate("gpu", ("libg.so",))
    assert dl.options_for(gpu, {"allow_fp16": True, "n": 2}) == {"allow_fp16": "true", "n": "2"}
    keyed = {"neuron": {"cache_dir": "/tmp"}, "gpu": {"allow_fp16": False}}
    assert dl.options_for(gpu, keyed) == {"allow_fp16": "false"}
    assert dl.options_for(dl.DelegateCandidate("nnapi"), keyed) is None
    assert dl.options_for(gpu, None) is None
    with pytest.raises(InvalidTypeError):
        dl.options_for(gpu, ["allow_fp16"])


@pytest.mark.parametrize("spec", ["gpu", "neuron", "nnapi", "/nonexistent/libbogus_delegate.so"])
def test_explicit_delegate_that_cannot_load_raises(spec, monkeypatch):
    for var in ("ANDROID_ROOT", "ANDROID_DATA", "MTKSEG_GPU_DELEGATE", "MTKSEG_NEURON_DELEGATE"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(DelegateError) as exc:
        mtkseg.Segmenter(model_path("float32"), delegate=spec)
    msg = str(exc.value)
    assert "delegate='auto'" in msg  # says what to try
    if spec == "nnapi":
        assert "Android" in msg
    elif spec.startswith("/"):
        assert "libbogus_delegate.so" in msg and "No such file" in msg
    else:
        assert ".so" in msg


def test_library_that_is_not_a_delegate():
    import ctypes.util

    from conftest import skip_unless_ci

    libm = ctypes.util.find_library("m")
    if libm is None:
        skip_unless_ci("ctypes.util.find_library('m') found no libm to load as a non-delegate library")
    with pytest.raises(DelegateError, match="tflite_plugin_create_delegate"):
        mtkseg.Segmenter(model_path("float32"), delegate=libm)


def test_fallback_chain_logs_and_reports_what_runs(caplog, frame):
    with caplog.at_level(logging.INFO, logger="mtkseg.runtime"):
        seg = mtkseg.Segmenter(model_path("float32"), delegate=["/nonexistent/libbogus.so", "gpu", "cpu"],
                               delegate_options={"allow_fp16": True})
    assert seg.delegate == "cpu"
    # one attempt per library tried (gpu: Genio's gpu_external_delegate.so, then TFLite's name)
    assert [name for name, _ in seg.delegate_attempts] == ["/nonexistent/libbogus.so", "gpu", "gpu"]
    skipped = [r for r in caplog.records if " skipped: " in r.getMessage()]
    assert len(skipped) == 3 and all(r.levelno == logging.WARNING for r in skipped)  # explicit list: warnings
    assert "libbogus.so" in skipped[0].getMessage()
    ref = Reference("float32")
    assert agreement(seg.run(frame).mask, ref.run(frame)) >= 0.999
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mtkseg.runtime"):
        auto = mtkseg.Segmenter(model_path("float32"))
    probed = (set() if dl._is_x86() and not dl.is_android() else
              {"npu", "gpu"} if dl.is_android() else {"neuron", "gpu"})
    assert auto.delegate == "cpu" and {n for n, _ in auto.delegate_attempts} == probed
    skipped = [r for r in caplog.records if " skipped: " in r.getMessage()]
    assert all(r.levelno == logging.INFO for r in skipped) and (skipped or not probed)  # auto: expected, quieter


def test_delegate_list_where_all_fail():
    with pytest.raises(DelegateError, match="gpu.*neuron|neuron.*gpu"):
        mtkseg.Segmenter(model_path("float32"), delegate=["gpu", "neuron"])


# ----------------------------------------------------------------------------- accelerators (CompiledModel)

def test_accelerator_cpu_matches_interpreter(frame):
    seg = mtkseg.Segmenter(model_path("int8_io"), accelerator="cpu", num_threads=1)
    assert seg.delegate == "cpu" and "CompiledModel" in seg.backend and seg.copies_per_frame == 2
    base = mtkseg.Segmenter(model_path("int8_io"), delegate="cpu", num_threads=1)
    r = seg.run(frame)
    assert agreement(r.mask, base.run(frame).mask) >= 0.999
    r2 = seg.run(frame[::-1].copy())
    assert r.confidence(3).shape == frame.shape[:2] and r2.mask.shape == frame.shape[:2]


#: accelerator="cpu" (LiteRT CompiledModel) against the independent reference (fixtures/reference.py:
#: OpenCV + numpy + a bare Interpreter; no mtkseg code): name -> (reference output kind, NCHW
#: output, minimum mask agreement).  Measured worst on the two smooth frames below: 1.00000 for
#: every float/uint8-input model, int8_io 0.99949 (1-LSB input rounding ties), so floats keep
#: test_segmenter's 0.9995 and int8 gets 0.999.
ACCEL_REFERENCE = {
    "float32": ("logits", False, 0.9995),
    "float_io_int8": ("logits", False, 0.9995),
    "int8_io": ("logits", False, 0.999),
    "uint8_io": ("logits", False, 0.9995),
    "nchw_output": ("logits", True, 0.9995),
    "sigmoid": ("score", False, 0.9995),
}
#: the bundled default model on real dash-cam frames 0, 100, 200: measured 0.99203 / 0.99535 / 0.99489
ACCEL_DEFAULT_MODEL_MIN = 0.99
REAL_CLIP = SHARED_DATA / "videos" / "udacity_lanelines_solidWhiteRight.mp4"


def _accel_frames():
    return [smooth_frame(np.random.default_rng(5), 90, 140), smooth_frame(np.random.default_rng(6), 300, 420)]


@pytest.mark.parametrize("name", sorted(ACCEL_REFERENCE))
def test_accelerator_cpu_matches_independent_reference(name):
    kind, nchw, min_agree = ACCEL_REFERENCE[name]
    seg = mtkseg.Segmenter(model_path(name), accelerator="cpu", num_threads=1)
    assert "CompiledModel" in seg.backend
    ref = Reference(name)
    for frame in _accel_frames():
        expected = ref.run(frame, kind=kind, nchw_out=nchw)
        assert agreement(seg.run(frame).mask, expected) >= min_agree, name


def test_accelerator_cpu_default_model_matches_independent_reference():
    require_shared(REAL_CLIP)
    path = str(DEFAULT_MODEL)
    mean, std = sidecar_normalization(path)
    seg = mtkseg.Segmenter(path, accelerator="cpu", num_threads=1)
    assert "CompiledModel" in seg.backend
    ref = Reference(path, mean=mean, std=std)
    for frame in decode_frames(REAL_CLIP, 100, 3):
        assert agreement(seg.run(frame).mask, ref.run(frame)) >= ACCEL_DEFAULT_MODEL_MIN


def test_accelerator_reference_tolerances_reject_plausible_bugs():
    """The tolerances above fail BGR fed as RGB and INTER_NEAREST input resizing on every
    frame.  Measured, best frame of the bug: BGR 0.48-0.88 (worst: nchw_output 0.878), nearest
    0.88-0.95 (worst: nchw_output 0.948); the default model on clip frames 0.910 and 0.977."""
    for name, (kind, nchw, min_agree) in ACCEL_REFERENCE.items():
        good = Reference(name)
        for frame in _accel_frames():
            expected = good.run(frame, kind=kind, nchw_out=nchw)
            for bug in (SwappedColourReference, NearestResizeReference):
                a = agreement(bug(name).run(frame, kind=kind, nchw_out=nchw), expected)
                assert a < min_agree, (name, bug.__name__, a)
    if REAL_CLIP.exists():
        path = str(DEFAULT_MODEL)
        mean, std = sidecar_normalization(path)
        good = Reference(path, mean=mean, std=std)
        for frame in decode_frames(REAL_CLIP, 100, 3):
            expected = good.run(frame)
            for bug in (SwappedColourReference, NearestResizeReference):
                a = agreement(bug(path, mean=mean, std=std).run(frame), expected)
                assert a < ACCEL_DEFAULT_MODEL_MIN, (bug.__name__, a)


def test_accelerator_fallback_and_errors(caplog, frame):
    with pytest.raises(DelegateError, match="npu"):
        mtkseg.Segmenter(model_path("float32"), accelerator="npu")
    with caplog.at_level(logging.WARNING, logger="mtkseg.runtime"):
        seg = mtkseg.Segmenter(model_path("float32"), accelerator=["npu", "cpu"])
    assert seg.delegate == "cpu" and [n for n, _ in seg.delegate_attempts] == ["npu"]
    assert any("accelerator npu skipped" in r.getMessage() for r in caplog.records)
    assert seg.run(frame).mask.shape == frame.shape[:2]
    with pytest.raises(InvalidArgumentError, match="cannot be combined"):
        mtkseg.Segmenter(model_path("float32"), accelerator="cpu", delegate="gpu")
    with pytest.raises(InvalidArgumentError):
        mtkseg.Segmenter(model_path("float32"), accelerator="tpu")
    with pytest.raises(UnsupportedModelError, match="int64"):
        mtkseg.Segmenter(model_path("class_index"), accelerator="cpu")


def test_metadata_default_size_for_resizable_inputs(caplog, frame):
    with caplog.at_level(logging.WARNING, logger="mtkseg.runtime"):
        info = runtime.inspect_model(model_path("dynamic_metadata"))
    assert info.resizable and info.input_size == (48, 80)
    assert info.labels_source == "generated"
    assert any("label file 'labels.txt'" in r.getMessage() for r in caplog.records)
    seg = mtkseg.Segmenter(model_path("dynamic_metadata"), delegate="cpu")
    assert seg.input_size == (48, 80) and seg.run(frame).shape == frame.shape[:2]
    assert mtkseg.Segmenter(model_path("dynamic_metadata"), delegate="cpu", input_size=(32, 64)).input_size == (32, 64)


def test_operator_version_newer_than_the_runtime(tmp_path):
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    data = Path(model_path("float32")).read_bytes()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    for code in model.operatorCodes:
        if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.CONV_2D:
            code.version = 99
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    p = tmp_path / "future.tflite"
    p.write_bytes(bytes(b.Output()))
    with pytest.raises(UnsupportedOpError, match="CONV_2D version 99.*upgrade"):
        mtkseg.Segmenter(p, delegate="cpu")


# ----------------------------------------------------------------------------- a real external delegate

@pytest.fixture(scope="module")
def fake_delegate(tmp_path_factory):
    """tests/fixtures/fake_delegate.c built with the system C compiler."""
    import subprocess

    from conftest import require_compiler

    cc = require_compiler("tests/fixtures/fake_delegate.c (the external-delegate tests)")
    out = tmp_path_factory.mktemp("delegate") / "libfake_delegate.so"
    src = Path(__file__).parent / "fixtures" / "fake_delegate.c"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(out), str(src)], check=True, capture_output=True)
    return str(out)


def test_external_delegate_loads_and_reports_itself(fake_delegate, frame):
    seg = mtkseg.Segmenter(model_path("float32"), delegate=fake_delegate, delegate_options={"mode": "ok"})
    assert seg.delegate == fake_delegate and seg.delegate_attempts == ()
    # the fake claims no nodes: the CPU kernels still run everything, results unchanged
    np.testing.assert_array_equal(seg.run(frame).mask, mtkseg.Segmenter(model_path("float32"), delegate="cpu").run(frame).mask)


@pytest.mark.parametrize("mode,match", [("null", "loader failed"), ("fail", "could not apply to the model")])
def test_external_delegate_failures(fake_delegate, mode, match, caplog):
    with pytest.raises(DelegateError, match=match):
        mtkseg.Segmenter(model_path("float32"), delegate=fake_delegate, delegate_options={"mode": mode})
    with caplog.at_level(logging.WARNING, logger="mtkseg.runtime"):
        seg = mtkseg.Segmenter(model_path("float32"), delegate=[fake_delegate, "cpu"],
                               delegate_options={fake_delegate: {"mode": mode}})
    assert seg.delegate == "cpu" and match in seg.delegate_attempts[0][1]
    assert any(match in r.getMessage() for r in caplog.records)


def test_accelerator_keeps_resizable_models_on_the_interpreter(caplog, frame):
    # LiteRT's CompiledModel corrupts the heap on dynamic output shapes: refused, never run.
    with pytest.raises(UnsupportedModelError, match="resizable"):
        mtkseg.Segmenter(model_path("dynamic_metadata"), accelerator="cpu")
    with caplog.at_level(logging.WARNING, logger="mtkseg.runtime"):
        seg = mtkseg.Segmenter(model_path("dynamic_metadata"), accelerator="auto")
    assert "CompiledModel" not in seg.backend and seg.run(frame).shape == frame.shape[:2]
    assert any("accelerator skipped" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("name", ["nchw_output", "nchw_input", "float16_input", "sigmoid", "uint8_io",
                                  "class_index_uint8", "softmax", "gray_input"])
def test_accelerator_cpu_layouts_match_interpreter(name, frame):
    a = mtkseg.Segmenter(model_path(name), accelerator="cpu", num_threads=1)
    b = mtkseg.Segmenter(model_path(name), delegate="cpu", num_threads=1)
    assert a.copies_per_frame == 2 and b.copies_per_frame == 0
    assert agreement(a.run(frame).mask, b.run(frame).mask) >= 0.999


def test_mutated_models_fail_with_typed_errors_never_crash(frame):
    """Random byte corruptions of a valid model: each either still runs or raises a typed
    mtkseg error (a native crash would take the test process down)."""
    from mtkseg.errors import MtksegError

    data = Path(model_path("float32")).read_bytes()
    rng = np.random.default_rng(2024)
    outcomes = set()
    for _ in range(60):
        d = bytearray(data)
        for _ in range(int(rng.integers(1, 6))):
            d[int(rng.integers(0, 2000))] = int(rng.integers(0, 256))
        try:
            mtkseg.Segmenter(bytes(d), delegate="cpu").run(frame)
            outcomes.add("ok")
        except MtksegError as exc:
            outcomes.add(type(exc).__name__)
    assert "InvalidModelError" in outcomes and len(outcomes) >= 2


# ----------------------------------------------------------------------------- library planting

PLANTED_C = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void planted(void) {
    FILE* f = fopen(getenv("MTKSEG_PLANT_MARKER"), "a");
    if (f) { fputs(LIBNAME "\n", f); fclose(f); }
}
"""

#: every library name mtkseg might probe on any platform
PROBED_NAMES = sorted({name for per_os in dl.LIBRARIES.values() for names in per_os.values() for name in names})


def _compiler() -> str:
    from conftest import require_compiler

    return require_compiler("the planted libraries of the delegate-search tests")


@pytest.mark.parametrize("android", [False, True])
def test_auto_never_loads_libraries_planted_in_the_current_directory(tmp_path, android):
    import subprocess
    import sys

    cc = _compiler()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    src = tmp_path / "planted.c"
    src.write_text(PLANTED_C)
    for name in PROBED_NAMES:
        subprocess.run([cc, "-shared", "-fPIC", f'-DLIBNAME="{name}"', "-o", str(cwd / name), str(src)],
                       check=True, capture_output=True)
    marker = tmp_path / "marker.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MTKSEG_") and k not in ("ANDROID_ROOT", "ANDROID_DATA")}
    env.update(LD_LIBRARY_PATH=":" + env.get("LD_LIBRARY_PATH", ""), MTKSEG_PLANT_MARKER=str(marker))
    if android:
        env["ANDROID_ROOT"] = "/system"  # probes the Android names too (neuron, gpu, nnapi)
    # The hole is real: with an empty LD_LIBRARY_PATH entry a bare name loads from the cwd.
    probe = f"import ctypes; ctypes.CDLL({PROBED_NAMES[0]!r})"
    subprocess.run([sys.executable, "-c", probe], cwd=cwd, env=env, check=True, capture_output=True)
    assert marker.read_text().split() == [PROBED_NAMES[0]]
    marker.unlink()
    code = (
        "import logging, sys, mtkseg\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stdout)\n"
        f"seg = mtkseg.Segmenter({model_path('float32')!r}, delegate='auto')\n"
        "print('DELEGATE', seg.delegate, [n for n, _ in seg.delegate_attempts])\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not marker.exists(), f"a planted library ran its constructor: {marker.read_text()}"
    assert "DELEGATE cpu" in run.stdout
    if android:  # x86-64 Linux probes no delegate library at all
        assert "the current directory is never searched" in run.stdout  # each skip says why
    assert f"loading delegate library {cwd}" not in run.stdout


def test_bare_delegate_names_resolve_to_logged_absolute_paths(fake_delegate, monkeypatch, caplog):
    lib = Path(fake_delegate)
    monkeypatch.setenv("LD_LIBRARY_PATH", f"::relative/dir:{lib.parent}")  # only the absolute entry counts
    assert dl.resolve_library(lib.name) == (str(lib), "")
    monkeypatch.chdir(lib.parent)
    monkeypatch.setenv("LD_LIBRARY_PATH", ":")
    path, why = dl.resolve_library(lib.name)
    assert path is None and "never searched" in why and "absolute path" in why
    assert dl.resolve_library("./" + lib.name) == (str(lib), "")  # an explicit relative path is explicit
    monkeypatch.setenv("LD_LIBRARY_PATH", str(lib.parent))
    with caplog.at_level(logging.INFO, logger="mtkseg.runtime"):
        seg = mtkseg.Segmenter(model_path("float32"), delegate=lib.name)
    assert seg.delegate == f"{lib.name} ({lib})"
    assert any(f"loading delegate library {lib}" in r.getMessage() for r in caplog.records)
    with pytest.raises(InvalidArgumentError, match="absolute path"):
        dl.preflight_library(lib.name)
