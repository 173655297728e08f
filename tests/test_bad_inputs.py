"""Catalogue of bad inputs: each raises a typed mtkseg error whose message names the argument.

Cases that used to crash the interpreter run in a subprocess, so a crash fails the test.
(Covers the cases fixed so far; see the reliability issue for those still open.)
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import mtkseg
import json
import logging
import shutil
import time
from pathlib import Path

from mtkseg import _io, ops, viz
from mtkseg.errors import MtksegError, OutputError, OutputExistsError, SourceError
from mtkseg.metrics import ConfusionMatrix
from mtkseg.video import MaskSink, open_source

LOGITS = np.zeros((4, 4, 3), np.float32)
MASK = np.zeros((4, 4), np.uint8)
FRAME = np.zeros((4, 4, 3), np.uint8)
FIXTURE_MODELS = Path(__file__).resolve().parent / "fixtures" / "models"


def _sidecar_model(palette, labels=True):
    """fixtures' sidecar model copied into the current folder with its JSON's palette replaced."""
    doc = json.loads((FIXTURE_MODELS / "sidecar.json").read_text())
    doc["palette"] = palette
    if not labels:
        doc.pop("labels")
    shutil.copy(FIXTURE_MODELS / "sidecar.tflite", "m.tflite")
    Path("m.json").write_text(json.dumps(doc))
    return "m.tflite"

CASES = {
    "postprocess size 2**31 x 1": (lambda: ops.postprocess(LOGITS, (2**31, 1)), "size"),
    "postprocess size with a bool": (lambda: ops.postprocess(LOGITS, (True, 4)), "size"),
    "confidence size over the side limit": (lambda: ops.confidence(LOGITS, (70000, 4)), "size"),
    "Segmenter output_size 10**6 x 10**6": (lambda: mtkseg.Segmenter(output_size=(10**6, 10**6)), "output_size"),
    "MaskSink pattern leaving its folder": (lambda: MaskSink("masks-never-created", pattern="../x{index}.png"), "pattern"),
    "MaskSink pattern with a folder": (lambda: MaskSink("masks-never-created", pattern="a/{index}.png"), "pattern"),
    # ignore_index=None is "no ignore index": -1 is then an out-of-range label (was silently skipped)
    "ConfusionMatrix ignore_index=None, a -1 label": (
        lambda: ConfusionMatrix(3, ignore_index=None).update(np.array([-1, 0], np.int32), np.array([0, 0], np.int32)),
        "ignore_index"),
    "confusion_matrix ignore_index=None, a -1 label": (
        lambda: ops.confusion_matrix(np.array([0, -1], np.int32), np.array([0, 0], np.int32), 3, ignore_index=None),
        "ignore_index"),
    "ConfusionMatrix ignore_index a bool": (lambda: ConfusionMatrix(3, ignore_index=True), "ignore_index"),
    "ConfusionMatrix ignore_index a float": (lambda: ConfusionMatrix(3, ignore_index=255.0), "ignore_index"),
    "viz.colorize palette with a boolean colour value": (lambda: viz.colorize(MASK, [[1, True, 3]]), "palette"),
    "viz.overlay palette of booleans": (lambda: viz.overlay(FRAME, MASK, np.ones((2, 3), bool)), "palette"),
    "ops.overlay palette with a boolean": (lambda: ops.overlay(FRAME, MASK, [[0, 0, False]]), "palette"),
    "viz.palette_for 300 colours": (lambda: viz.palette_for(np.zeros((300, 3), np.uint8)), "palette"),
    "viz.legend 257 colours": (lambda: viz.legend(["c"] * 257, np.zeros((257, 3), np.uint8)), "palette"),
    "Segmenter with a sidecar palette of 300 colours": (
        lambda: mtkseg.Segmenter(_sidecar_model([[0, 0, 0]] * 300), delegate="cpu"), "palette"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_raises_typed_error_naming_the_argument(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fn, argument = CASES[name]
    with pytest.raises(MtksegError) as info:
        fn()
    assert argument in str(info.value)


def test_outputs_over_inputs_links_and_existing_files(tmp_path):
    src = tmp_path / "in.mp4"
    src.write_bytes(b"video")
    with pytest.raises(OutputError, match="-o.*input"):
        _io.check_output(tmp_path / "x" / ".." / "in.mp4", inputs=[src], overwrite=True, what="-o")
    (tmp_path / "link.mp4").symlink_to(src)
    with pytest.raises(OutputError, match="-o.*symbolic link"):
        _io.check_output(tmp_path / "link.mp4", overwrite=True, what="-o")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        _io.write_text(src, "new", what="-o")
    assert src.read_bytes() == b"video"
    with pytest.raises(OutputError, match="masks"):
        _io.ensure_dir(src / "sub", what="masks")


NATIVE = {
    "preprocess frame 2**31 wide (zero strides)": """
import numpy as np
from numpy.lib.stride_tricks import as_strided
from mtkseg import ops
frame = as_strided(np.zeros(3, np.uint8), shape=(2, 2**31, 3), strides=(0, 0, 1))
ops.preprocess(frame, np.zeros((1, 8, 8, 3), np.float32))
""",
    "argmax_resize out wider than int32": """
import numpy as np
from numpy.lib.stride_tricks import as_strided
from mtkseg import _core
out = as_strided(np.zeros(1, np.uint8), shape=(1, 2**31), strides=(0, 0))
_core.argmax_resize(np.zeros((4, 4, 3), np.float32), out, (0, 0, 4, 4), _core.Mode.NEAREST)
""",
}


@pytest.mark.parametrize("name", list(NATIVE))
def test_native_bad_input_is_a_typed_error_not_a_crash(name):
    code = NATIVE[name] + "\n"
    wrapped = ("import sys\nfrom mtkseg.errors import MtksegError\ntry:\n" + "".join(
        "    " + line + "\n" for line in code.strip().splitlines()) +
        "except MtksegError as exc:\n    print(type(exc).__name__, exc)\n    sys.exit(0)\nsys.exit(3)\n")
    proc = subprocess.run([sys.executable, "-c", wrapped], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"exit {proc.returncode} (3: no error raised): {proc.stderr[-1500:]}"
    assert "InvalidArgumentError" in proc.stdout and ("frame" in proc.stdout or "out" in proc.stdout)


def test_short_sidecar_palette_is_warned_about_once_naming_the_file(tmp_path, monkeypatch, caplog):
    """A sidecar palette with fewer colours than classes (no labels to check it against) used
    to be replaced by the default palette without a word."""
    monkeypatch.chdir(tmp_path)
    model = _sidecar_model([[0, 0, 0], [255, 0, 0]], labels=False)
    with caplog.at_level(logging.WARNING, logger="mtkseg"):
        seg = mtkseg.Segmenter(model, delegate="cpu")
        mtkseg.Segmenter(model, delegate="cpu").close()
    warned = [r.getMessage() for r in caplog.records if "palette" in r.getMessage()]
    assert len(warned) == 1, warned
    assert "m.json" in warned[0] and "2 colours" in warned[0] and "3 classes" in warned[0]
    assert seg.palette.shape == (3, 3)
    assert seg.run(np.zeros((20, 30, 3), np.uint8)).overlay().shape == (20, 30, 3)


def test_refused_url_names_the_time_it_took_not_the_timeout():
    t0 = time.monotonic()
    with pytest.raises(SourceError) as info:
        open_source("rtsp://127.0.0.1:9/none")  # port 9: refused at once
    elapsed = time.monotonic() - t0
    message = str(info.value)
    assert "rtsp://127.0.0.1:9/none" in message
    if elapsed < 5:
        assert "did not answer within" not in message and "failed after" in message and "refused" in message


_NO_TENSORFLOW = """
import runpy, sys

class _NoTensorflow:
    # `import tensorflow` / `import keras` fail as if the train extra were not installed.
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoTensorflow)
sys.argv = ["mtkseg", *sys.argv[1:]]
runpy.run_module("mtkseg.cli", run_name="__main__", alter_sys=True)
"""


def test_train_without_tensorflow_says_how_to_install_it(tmp_path):
    (tmp_path / "data").mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", _NO_TENSORFLOW, "train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-1500:]
    assert "pip install 'mtkseg[train]'" in proc.stderr, proc.stderr[-1500:]


@pytest.mark.parametrize("palette, message", [
    ([[0, 0, 0]] * 257, "at most 256"),
    ([[True, 0, 0]], "integers in 0..255"),
    ([[0, 0, 256]], "integers in 0..255"),
])
def test_sidecar_palette_is_checked_where_it_enters(tmp_path, palette, message):
    import json
    import shutil

    from fixtures.reference import model_path
    from mtkseg.errors import InvalidModelError
    from mtkseg.runtime.metadata import read_sidecar

    model = tmp_path / "m.tflite"
    shutil.copyfile(model_path("int8_io"), model)
    (tmp_path / "m.json").write_text(json.dumps({"format": "mtkseg-model/1", "palette": palette}))
    with pytest.raises(InvalidModelError, match=message):
        read_sidecar(model)
