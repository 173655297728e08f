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
from mtkseg import _io, ops
from mtkseg.errors import MtksegError, OutputError, OutputExistsError
from mtkseg.video import MaskSink

LOGITS = np.zeros((4, 4, 3), np.float32)

CASES = {
    "postprocess size 2**31 x 1": (lambda: ops.postprocess(LOGITS, (2**31, 1)), "size"),
    "postprocess size with a bool": (lambda: ops.postprocess(LOGITS, (True, 4)), "size"),
    "confidence size over the side limit": (lambda: ops.confidence(LOGITS, (70000, 4)), "size"),
    "Segmenter output_size 10**6 x 10**6": (lambda: mtkseg.Segmenter(output_size=(10**6, 10**6)), "output_size"),
    "MaskSink pattern leaving its folder": (lambda: MaskSink("masks-never-created", pattern="../x{index}.png"), "pattern"),
    "MaskSink pattern with a folder": (lambda: MaskSink("masks-never-created", pattern="a/{index}.png"), "pattern"),
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
_core.argmax_resize(np.zeros((4, 4, 3), np.float32), out, (0, 0, 4, 4), 0)
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
