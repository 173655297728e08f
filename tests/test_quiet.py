"""mtkseg._quiet: LiteRT's native fd-2 output is muted by default, shown with MTKSEG_LOG_LEVEL=debug,
and load-time fallbacks are logged once per Segmenter, not once per replica."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mtkseg import _quiet

from conftest import require_shared

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "models" / "metadata.tflite"  # has metadata: no normalization warning
XNNPACK_FAILS = ROOT.parent / "shared" / "models" / "external" / "anil_deeplab_aiseg_quant513_argmax.tflite"
XNNPACK_LINE = "Created TensorFlow Lite XNNPACK delegate"


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != _quiet.ENV_VAR}
    environment.update(env)
    # stderr is the child's fd 2 itself (a pipe), so native writes are seen as they would be on a terminal.
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=120)


def test_segmenter_load_prints_nothing_by_default():
    proc = _run(f"import mtkseg; s = mtkseg.Segmenter({str(FIXTURE)!r}); s.replicate(num_threads=1); print(s.delegate)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "cpu"
    assert proc.stderr == ""


def test_debug_level_shows_native_lines():
    proc = _run(f"import mtkseg; mtkseg.Segmenter({str(FIXTURE)!r})", MTKSEG_LOG_LEVEL="debug")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    # Printed by LiteRT as it happens (muting is off), not a replayed "DEBUG mtkseg.runtime: native: ..." record.
    assert any(line.startswith(f"INFO: {XNNPACK_LINE}") for line in lines), proc.stderr
    assert not any("native: " in line for line in lines), proc.stderr
    # The mtkseg logger got a stderr handler: the load's choice of delegate is shown (on every platform).
    assert any(line.startswith("INFO mtkseg.runtime: ") and "running on cpu" in line for line in lines), proc.stderr


def test_bad_env_level_warns_but_imports():
    proc = _run("import mtkseg; print('ok')", MTKSEG_LOG_LEVEL="loud")
    assert proc.returncode == 0 and proc.stdout.strip() == "ok"
    assert "MTKSEG_LOG_LEVEL" in proc.stderr and "loud" in proc.stderr


def test_captured_native_output_is_replayed_at_debug(caplog):
    with caplog.at_level(logging.DEBUG, logger="mtkseg.runtime"):
        with _quiet.native_output_muted():
            with _quiet.native_output_muted():  # re-entrant
                os.write(2, b"native says hello\n")
    assert any("native says hello" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)


def test_fd2_is_restored_after_an_exception(tmp_path):
    before = os.fstat(2)
    with pytest.raises(RuntimeError):
        with _quiet.native_output_muted():
            raise RuntimeError("boom")
    after = os.fstat(2)
    assert (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino)


def test_fallback_logged_once_per_segmenter_not_per_replica(caplog):
    import mtkseg

    model = require_shared(XNNPACK_FAILS)
    with caplog.at_level(logging.INFO, logger="mtkseg"):
        seg = mtkseg.Segmenter(model, num_threads=1)
        replicas = [seg.replicate(num_threads=1) for _ in range(2)]
    try:
        fallbacks = [r for r in caplog.records if "XNNPACK could not prepare" in r.getMessage()]
        assert [r.levelno for r in fallbacks if r.levelno > logging.DEBUG] == [logging.WARNING]
        assert all(rep.delegate == seg.delegate for rep in replicas)
    finally:
        for rep in replicas:
            rep.close()
        seg.close()
