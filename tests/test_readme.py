"""README.md runs as written: every ```python block and every ```bash command line.

How the README is run
    * All ```python blocks run, in order, in one ``python`` subprocess (later blocks use earlier
      names).  The first section's block is a sketch whose ``frame`` is "a frame": the
      subprocess starts with :data:`PRELUDE`, which defines ``frame`` (the first frame of the
      bundled clip, BGR) and imports ``cv2``; every other name must be defined by the README.
    * Each ```bash line is one command, run with ``bash -c``.  Chains ``a && b`` are split and
      parts that install packages (``pip install``, ``python -m pip install``) are dropped, and
      so are parts that run the test suite (``pytest``): this test is part of it.
    * Commands and blocks run in a scratch *mirror of the repository root*: a temporary folder
      holding a symbolic link to every top-level entry of the repository (``examples/``,
      ``models/``, ``tests/``, ...) beside a link ``../shared`` to the real shared folder, so
      relative paths (``examples/lanelines_4s.mp4``, ``../shared/data/camvid``) resolve as
      from the root while outputs (``out/``, ``mask.png``, ``runs/``) land in the temporary
      folder, never in the checkout.

Marking what is not run (the comment convention)
    A bash line whose trailing ``#`` comment contains ``not run by tests`` is skipped, e.g.
    ``mtkseg train ...   # the recipe ([train] extra; hours: not run by tests)``.  Use it only
    for commands that train for long, need hardware this machine may lack, or depend on such
    a command.  Lines of the Development section (``./scripts/dev-build.sh``, the test suite,
    the benchmarks) are not run: they rebuild or re-run the suite itself.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

from conftest import require_shared

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHARED = ROOT.parent / "shared"
SKIP_MARK = "not run by tests"
#: Sections whose bash lines are not run (they rebuild the package or run the suite/benchmarks).
SKIP_SECTIONS = ("Development",)
PRELUDE = (
    "import cv2\n"
    "ok, frame = cv2.VideoCapture('examples/lanelines_4s.mp4').read()\n"
    "assert ok, 'examples/lanelines_4s.mp4 did not decode'\n"
)
_FENCE = re.compile(r"^```(\w*)\s*$")


def blocks(text: str) -> List[Tuple[str, str, str]]:
    """``(section, language, code)`` of each fenced block of ``text``."""
    out, section, lang, buf = [], "", None, []
    for line in text.splitlines():
        m = _FENCE.match(line)
        if lang is None:
            if line.startswith("## "):
                section = line[3:].strip()
            elif m:
                lang, buf = m.group(1), []
        elif m and not m.group(1):
            out.append((section, lang, "\n".join(buf)))
            lang = None
        else:
            buf.append(line)
    return out


def _is_install(part: str) -> bool:
    words = shlex.split(part)
    return "pip" in words and "install" in words


def _runs_tests(part: str) -> bool:
    return "pytest" in shlex.split(part)


def bash_commands(text: str) -> List[Tuple[str, str]]:
    """``(command, skip reason or "")`` for each bash line, install parts dropped."""
    out = []
    for section, lang, code in blocks(text):
        if lang not in ("bash", "sh", "shell"):
            continue
        for line in code.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            command, _, comment = line.partition("  #")
            if section in SKIP_SECTIONS:
                out.append((command.strip(), f"section {section!r} is not run"))
                continue
            if SKIP_MARK in comment:
                out.append((command.strip(), comment.strip()))
                continue
            parts = [p.strip() for p in command.split("&&")]
            kept = [p for p in parts if not _is_install(p) and not _runs_tests(p)]
            if kept:
                out.append((" && ".join(kept), ""))
    return out


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    """A temporary stand-in for the repository root (see the module docs)."""
    base = tmp_path_factory.mktemp("readme")
    root = base / "repo"
    root.mkdir()
    for entry in ROOT.iterdir():
        if entry.name in (".git", "out", "runs", "mtkseg-out", "compare_out"):
            continue
        (root / entry.name).symlink_to(entry)
    if SHARED.exists():
        (base / "shared").symlink_to(SHARED)
    return root


def _env() -> dict:
    env = dict(os.environ)
    env.pop("MTKSEG_LOG_LEVEL", None)
    # the installed package, as a user has it (the source tree has no built _core unless installed editable)
    return env


def test_readme_has_runnable_blocks():
    text = README.read_text()
    langs = [lang for _, lang, _ in blocks(text)]
    assert langs.count("python") >= 2 and langs.count("bash") >= 3
    run = [c for c, why in bash_commands(text) if not why]
    assert any(c.startswith("mtkseg video default") for c in run), "the Set-up command is run"
    assert not any("pip install" in c for c in run)


def test_readme_python_blocks_run(mirror: Path):
    require_shared(SHARED / "data" / "camvid")
    code = PRELUDE + "\n".join(c for _, lang, c in blocks(README.read_text()) if lang == "python")
    proc = subprocess.run([sys.executable, "-c", code], cwd=mirror, env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert (mirror / "out.mp4").is_file() and (mirror / "overlay.png").is_file()


@pytest.mark.parametrize("command,skip", bash_commands(README.read_text()),
                         ids=[c[:60] for c, _ in bash_commands(README.read_text())])
def test_readme_bash_line_runs(mirror: Path, command: str, skip: str):
    if skip:
        pytest.skip(skip)
    if "../shared" in command:
        rel = command.split("../shared/", 1)[1].split()[0].strip("\"'")
        target = SHARED / rel
        require_shared(target.parent if any(ch in rel for ch in "*?[") else target)
    bin_dir = Path(sys.executable).parent  # the `mtkseg` console script of this environment
    env = _env()
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    proc = subprocess.run(["bash", "-c", command], cwd=mirror, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"$ {command}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
