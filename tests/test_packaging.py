"""Packaging: the sdist leaves out checkpoints, runs, media and fixture models but keeps the
bundled default model; the cibuildwheel configuration names test files that exist."""

from __future__ import annotations

import re
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else pytest.importorskip("tomli")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.mark.slow
def test_sdist_leaves_out_training_state_and_media(tmp_path):
    build = pytest.importorskip("scikit_build_core.build")
    if not (ROOT / ".git").exists():
        pytest.skip("not a source checkout")
    import os

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        name = build.build_sdist(str(tmp_path))
    finally:
        os.chdir(cwd)
    path = tmp_path / name
    with tarfile.open(path) as tar:
        names = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
    bad = [n for n in names if re.match(r"(runs|build|dist|models/checkpoints|models/previous|tests/fixtures/models)/", n)
           or n.endswith((".h5", ".mp4", ".so"))]
    assert bad == []
    bundled = [n for n in names if re.fullmatch(r"models/[^/]+\.(tflite|json)", n)]
    on_disk = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "models").glob("*") if p.suffix in (".tflite", ".json"))
    assert sorted(bundled) == on_disk  # what CMakeLists.txt installs into the wheel
    assert "python/mtkseg/_core.pyi" in names and "python/mtkseg/py.typed" in names
    assert "scripts/aarch64-check.sh" in names and "CMakeLists.txt" in names
    model_bytes = sum((ROOT / n).stat().st_size for n in bundled)
    assert path.stat().st_size < model_bytes + 1_500_000, f"{path.stat().st_size} bytes"


def test_cibuildwheel_targets_and_test_command():
    cfg = _pyproject()["tool"]["cibuildwheel"]
    assert set(cfg["linux"]["archs"]) == {"x86_64", "aarch64"} and cfg["macos"]["archs"] == ["arm64"]
    files = re.findall(r"\{project\}/(\S+\.py)", " ".join(cfg["test-command"]))
    assert files and all((ROOT / f).is_file() for f in files), files


def test_version_has_one_source():
    cfg = _pyproject()
    assert cfg["project"]["dynamic"] == ["version"]
    assert cfg["tool"]["scikit-build"]["metadata"]["version"]["input"] == "python/mtkseg/__init__.py"
