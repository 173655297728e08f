"""MediaTek Neuron: the stable-delegate shim, the per-platform auto chain, delegate coverage, AOT export.

No MediaTek hardware here: a fake *stable* delegate (tests/fixtures/fake_stable_delegate.c) built
with the system C compiler records the TFLiteSettings flatbuffer it receives; it is parsed below
field by field against configuration.proto's layout (flatbuffer field ids = declaration order).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from fixtures.reference import model_path, smooth_frame

import mtkseg
from mtkseg.errors import DelegateError, ExportError, InvalidArgumentError, InvalidTypeError
from mtkseg.runtime import delegates as dl
from mtkseg.runtime import neuron
from mtkseg.runtime.coverage import coverage_from_ops

FIXTURES = Path(__file__).parent / "fixtures"


def _compiler() -> str:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("no C compiler: CI must provide one")
        pytest.skip("no C compiler to build the fake stable delegate")
    return cc


@pytest.fixture(scope="module")
def fake_stable(tmp_path_factory):
    out = tmp_path_factory.mktemp("stable") / "libfake_stable_delegate.so"
    subprocess.run([_compiler(), "-shared", "-fPIC", "-o", str(out), str(FIXTURES / "fake_stable_delegate.c")],
                   check=True, capture_output=True)
    return str(out)


@pytest.fixture
def frame():
    return smooth_frame(np.random.default_rng(5), 90, 140)


@pytest.fixture
def x86(monkeypatch):
    for var in ("ANDROID_ROOT", "ANDROID_DATA", "MTKSEG_GPU_DELEGATE", "MTKSEG_NEURON_DELEGATE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(dl.platform, "machine", lambda: "x86_64")


# ----------------------------------------------------------------------------- an independent reader

class FB:
    """Reads a flatbuffer table with flatbuffers' Python Table API (no generated code)."""

    def __init__(self, buf: bytes, pos: int):
        self.t = flatbuffers.table.Table(bytearray(buf), pos)

    @classmethod
    def root(cls, buf: bytes) -> "FB":
        return cls(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, bytearray(buf), 0))

    def _off(self, field_id: int) -> int:
        return self.t.Offset(4 + 2 * field_id)

    def has(self, field_id: int) -> bool:
        return self._off(field_id) != 0

    def i32(self, field_id: int, default: int = 0) -> int:
        o = self._off(field_id)
        return self.t.Get(flatbuffers.number_types.Int32Flags, self.t.Pos + o) if o else default

    def bool(self, field_id: int, default: bool = False) -> bool:
        o = self._off(field_id)
        return bool(self.t.Get(flatbuffers.number_types.BoolFlags, self.t.Pos + o)) if o else default

    def string(self, field_id: int):
        o = self._off(field_id)
        return self.t.String(self.t.Pos + o).decode() if o else None

    def table(self, field_id: int):
        o = self._off(field_id)
        return FB(bytes(self.t.Bytes), self.t.Indirect(self.t.Pos + o)) if o else None

    def ints(self, field_id: int):
        o = self._off(field_id)
        if not o:
            return None
        start, n = self.t.Vector(o), self.t.VectorLen(o)
        return [self.t.Get(flatbuffers.number_types.Int32Flags, start + 4 * i) for i in range(n)]

    def strings(self, field_id: int):
        o = self._off(field_id)
        if not o:
            return None
        start, n = self.t.Vector(o), self.t.VectorLen(o)
        return [self.t.String(start + 4 * i).decode() for i in range(n)]


# TFLiteSettings / MtkNeuronSettings / CompilationCachingSettings field ids (configuration.proto)
TFL_CACHING, TFL_NEURON = 14, 16
(N_PREF, N_PRIO, N_HINTS, N_CHECK, N_FP16, N_AHWB, N_CACHEABLE, N_COMPILE, N_ACCEL, N_CONFIG, N_DEADLINE,
 N_ABORT) = range(12)


def _settings(path: Path) -> FB:
    data = path.read_bytes()
    assert data != b"BADLAYOUT", "the shim's buffer layout changed"
    return FB.root(data)


# ----------------------------------------------------------------------------- stable delegate loading

NEURON_OPTIONS = {
    "execution_preference": "sustained_speed", "execution_priority": "high",
    "optimization_hints": ["low_latency", "deep_fusion"], "operation_check_mode": "per_node_operation_check",
    "allow_fp16": True, "use_ahwb": False, "use_cacheable_buffer": False,
    "compile_options": "--opt-bw --relax-fp32", "accelerator_names": "mtk-mdla,mtk-dsp",
    "neuron_config_path": "/etc/neuron.cfg", "inference_deadline_ms": 33, "inference_abort_time_ms": 200,
    "cache_dir": "/var/cache/mtkseg", "model_token": "road-v1",
}


def test_stable_delegate_by_path_gets_mtk_neuron_settings(fake_stable, frame, tmp_path, monkeypatch, caplog):
    record = tmp_path / "settings.fb"
    monkeypatch.setenv("MTKSEG_FAKE_STABLE_SETTINGS", str(record))
    with caplog.at_level(logging.WARNING, logger="mtkseg.runtime"):
        seg = mtkseg.Segmenter(model_path("float32"), delegate=fake_stable, delegate_options=NEURON_OPTIONS)
    assert seg.delegate == fake_stable and seg.delegate_attempts == ()
    cpu = mtkseg.Segmenter(model_path("float32"), delegate="cpu")
    np.testing.assert_array_equal(seg.run(frame).mask, cpu.run(frame).mask)  # the fake claims no nodes
    cov = seg.delegate_coverage
    assert (cov.delegated_ops, cov.partitions) == (0, 0) and cov.total_ops == sum(cov.cpu_ops.values()) == 12
    assert any("took over only 0 of 12 ops" in r.getMessage() for r in caplog.records)  # warned
    assert cpu.delegate_coverage is None

    root = _settings(record)
    assert not root.has(0)  # delegate enum: no MTK value upstream, left unset
    caching = root.table(TFL_CACHING)
    assert (caching.string(0), caching.string(1)) == ("/var/cache/mtkseg", "road-v1")
    n = root.table(TFL_NEURON)
    assert n.i32(N_PREF) == 3 and n.i32(N_PRIO) == 110  # PREFERENCE_SUSTAINED_SPEED, PRIORITY_HIGH
    assert n.ints(N_HINTS) == [1, 2]  # OPTIMIZATION_LOW_LATENCY, OPTIMIZATION_DEEP_FUSION
    assert n.i32(N_CHECK) == 1  # PER_NODE_OPERATION_CHECK
    assert n.bool(N_FP16) is True and n.bool(N_AHWB) is False
    assert n.has(N_CACHEABLE) and n.bool(N_CACHEABLE, default=True) is False  # default true: written explicitly
    assert n.strings(N_COMPILE) == ["--opt-bw", "--relax-fp32"]
    assert n.strings(N_ACCEL) == ["mtk-mdla", "mtk-dsp"]
    assert n.string(N_CONFIG) == "/etc/neuron.cfg"
    assert (n.i32(N_DEADLINE), n.i32(N_ABORT)) == (33, 200)


def test_stable_delegate_through_env_and_neuron_name(fake_stable, frame, tmp_path, monkeypatch, x86):
    record = tmp_path / "settings.fb"
    monkeypatch.setenv("MTKSEG_FAKE_STABLE_SETTINGS", str(record))
    monkeypatch.setenv("MTKSEG_NEURON_DELEGATE", fake_stable)  # an explicit override works on any machine
    seg = mtkseg.Segmenter(model_path("int8_io"), delegate="neuron",
                           delegate_options={"neuron": {"execution_preference": "low_power"}})
    assert seg.delegate == f"neuron ({fake_stable})"
    np.testing.assert_array_equal(seg.run(frame).mask, mtkseg.Segmenter(model_path("int8_io"), delegate="cpu").run(frame).mask)
    root = _settings(record)
    assert root.table(TFL_NEURON).i32(N_PREF) == 1 and not root.table(TFL_NEURON).has(N_FP16)
    assert root.table(TFL_CACHING) is None  # only what was given is written
    record.unlink()
    mtkseg.Segmenter(model_path("int8_io"), delegate="neuron")  # no options: an empty TFLiteSettings
    root = _settings(record)
    assert root.table(TFL_NEURON) is None and root.table(TFL_CACHING) is None


def test_stable_delegate_failures_are_typed(fake_stable, monkeypatch, caplog):
    with pytest.raises(InvalidArgumentError, match="execution_preference.*turbo_boost"):
        mtkseg.Segmenter(model_path("float32"), delegate=fake_stable, delegate_options={"execution_preference": "fast"})
    with pytest.raises(InvalidArgumentError, match="unknown option.*allow_fp16_precision_for_fp32"):
        mtkseg.Segmenter(model_path("float32"), delegate=fake_stable, delegate_options={"fp16": True})
    with pytest.raises(InvalidArgumentError, match="hint"):
        mtkseg.Segmenter(model_path("float32"), delegate=fake_stable, delegate_options={"optimization_hints": "fastest"})
    with pytest.raises(InvalidTypeError):
        mtkseg.Segmenter(model_path("float32"), delegate=fake_stable, delegate_options={"use_ahwb": "maybe"})
    monkeypatch.setenv("MTKSEG_FAKE_STABLE_MODE", "null")  # the plugin's create() refuses
    with pytest.raises(DelegateError, match="refused to create a delegate"):
        mtkseg.Segmenter(model_path("float32"), delegate=fake_stable)
    with caplog.at_level(logging.WARNING, logger="mtkseg.runtime"):
        seg = mtkseg.Segmenter(model_path("float32"), delegate=[fake_stable, "cpu"])
    assert seg.delegate == "cpu" and "refused" in seg.delegate_attempts[0][1]


def test_library_kinds(fake_stable, tmp_path):
    external = tmp_path / "libfake_delegate.so"
    subprocess.run([_compiler(), "-shared", "-fPIC", "-o", str(external), str(FIXTURES / "fake_delegate.c")],
                   check=True, capture_output=True)
    assert neuron.library_kind(fake_stable) == ("stable", "")
    assert neuron.library_kind(str(external)) == ("external", "")
    assert neuron.library_kind(neuron.shim_library()) == ("external", "")
    kind, why = neuron.library_kind(str(tmp_path / "missing.so"))
    assert kind is None and why


def test_shim_never_crashes_on_bad_input(fake_stable, tmp_path):
    """The shim's C entry point, called directly: every bad input is reported, NULL returned."""
    import ctypes

    lib = ctypes.CDLL(neuron.shim_library())
    lib.tflite_plugin_create_delegate.restype = ctypes.c_void_p
    REPORT = ctypes.CFUNCTYPE(None, ctypes.c_char_p)
    messages = []
    report = REPORT(lambda msg: messages.append(msg.decode()))

    def create(**opts):
        keys = (ctypes.c_char_p * len(opts))(*[k.encode() for k in opts])
        values = (ctypes.c_char_p * len(opts))(*[str(v).encode() for v in opts.values()])
        messages.clear()
        return lib.tflite_plugin_create_delegate(keys, values, len(opts), report)

    assert create() is None and "stable_delegate_path" in messages[0]
    assert create(stable_delegate_path="relative.so") is None and "absolute" in messages[0]
    assert create(stable_delegate_path=str(tmp_path / "none.so")) is None and "cannot open" in messages[0]
    assert create(stable_delegate_path=neuron.shim_library()) is None and "TFL_TheStableDelegate" in messages[0]
    assert create(stable_delegate_path=fake_stable, bogus="1") is None and "unknown option 'bogus'" in messages[0]
    assert create(stable_delegate_path=fake_stable, execution_priority="x") is None and "invalid value" in messages[0]
    assert create(stable_delegate_path=fake_stable, optimization_hints="fast") is None and "hint" in messages[0]
    handle = create(stable_delegate_path=fake_stable, execution_priority="90", compile_options="")
    assert handle and not messages
    lib.tflite_plugin_destroy_delegate.argtypes = [ctypes.c_void_p]
    lib.tflite_plugin_destroy_delegate(handle)
    lib.tflite_plugin_destroy_delegate(None)


# ----------------------------------------------------------------------------- per-platform chains

def test_neuron_on_x86_fails_fast_with_the_platform_message(x86, monkeypatch):
    opened = []
    monkeypatch.setattr(dl, "resolve_library", lambda lib: opened.append(lib) or (None, "unexpected"))
    with pytest.raises(DelegateError, match="no MediaTek NPU on this platform") as exc:
        mtkseg.Segmenter(model_path("float32"), delegate="neuron")
    assert "x86_64" in str(exc.value) and "delegate='auto'" in str(exc.value) and not opened


def test_auto_on_x86_never_touches_a_neuron_name(x86, monkeypatch, caplog):
    from mtkseg.runtime import session

    touched = []
    real_resolve, real_kind = session.resolve_library, neuron.library_kind
    monkeypatch.setattr(session, "resolve_library", lambda lib: touched.append(lib) or real_resolve(lib))
    monkeypatch.setattr(dl, "library_kind", lambda p: touched.append(p) or real_kind(p))
    with caplog.at_level(logging.DEBUG):
        seg = mtkseg.Segmenter(model_path("float32"))
    assert seg.delegate == "cpu" and seg.delegate_attempts == () and touched == []
    assert not any("neuron" in r.getMessage().lower() for r in caplog.records)
    assert [c.name for c in dl.delegate_candidates("auto")[0]] == ["cpu"]


def test_auto_chains_per_platform(monkeypatch):
    for var in ("ANDROID_ROOT", "ANDROID_DATA", "MTKSEG_GPU_DELEGATE", "MTKSEG_NEURON_DELEGATE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(dl.platform, "machine", lambda: "aarch64")  # a Genio board
    chain, _ = dl.delegate_candidates("auto")
    assert [c.name for c in chain] == ["neuron", "gpu", "cpu"]
    assert chain[0].libraries[0] == "libneuron_stable_delegate.so" and chain[1].libraries[0] == "gpu_external_delegate.so"
    monkeypatch.setenv("ANDROID_ROOT", "/system")  # Android: CompiledModel NPU first (session), then gpu, cpu
    assert [c.name for c in dl.delegate_candidates("auto")[0]] == ["gpu", "cpu"]
    assert dl.delegate_candidates("nnapi")[0][0].libraries  # NNAPI only when asked


def test_android_auto_tries_the_compiled_model_npu_first(monkeypatch, caplog, frame):
    monkeypatch.setenv("ANDROID_ROOT", "/system")
    from mtkseg.runtime import session

    asked = []
    real = session._open_compiled

    def spy(backend, mf, threads, names, explicit, quiet):
        asked.append(names)
        return real(backend, mf, threads, ["npu"], explicit, quiet)  # no NPU here: fails and falls back

    monkeypatch.setattr(session, "_open_compiled", spy)
    with caplog.at_level(logging.INFO, logger="mtkseg.runtime"):
        seg = mtkseg.Segmenter(model_path("float32"))
    assert asked == [["npu|cpu"]]
    assert seg.delegate == "cpu" and seg.delegate_attempts[0][0] == "npu"
    assert any("CompiledModel npu|cpu skipped" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------------- coverage

def test_coverage_from_a_real_node_list():
    """XNNPACK's partitions of an allocated CPU interpreter are a real delegated node list."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=model_path("float32"), num_threads=1)
    it.allocate_tensors()
    ops = it._get_ops_details()
    cov = coverage_from_ops(ops, "xnnpack")
    assert cov.total_ops == 12 and cov.partitions == sum(op["op_name"] == "DELEGATE" for op in ops) >= 1
    assert 0 < cov.delegated_ops <= 12 and cov.delegated_ops + sum(cov.cpu_ops.values()) == 12
    assert cov.to_dict()["fraction"] == round(cov.delegated_ops / 12, 4) and "xnnpack runs" in str(cov)


def test_coverage_synthetic_partitions():
    ops = [{"op_name": "CONV_2D", "inputs": [0, 9], "outputs": [1]},
           {"op_name": "RELU", "inputs": [1], "outputs": [2]},
           {"op_name": "RESIZE_BILINEAR", "inputs": [2, 8], "outputs": [3]},
           {"op_name": "CONV_2D", "inputs": [3, 7], "outputs": [4]},
           {"op_name": "DELEGATE", "inputs": [0, 9], "outputs": [2]},
           {"op_name": "DELEGATE", "inputs": [3, 7], "outputs": [4]}]
    cov = coverage_from_ops(ops, "neuron")
    assert (cov.delegated_ops, cov.total_ops, cov.partitions, cov.cpu_ops) == (3, 4, 2, {"RESIZE_BILINEAR": 1})
    assert not cov.full and coverage_from_ops(ops[:4], "x").delegated_ops == 0
