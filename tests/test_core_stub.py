"""The native module's typed seam: _core.pyi names exactly what _core exports, the enums
replace bare int codes, and the version is the package's (one source: pyproject's regex
reads mtkseg/__init__.py, CMake defines MTKSEG_VERSION_INFO from it)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

import mtkseg
from mtkseg import _core
from mtkseg.errors import InvalidArgumentError

STUB = Path(mtkseg.__file__).resolve().parent / "_core.pyi"


def _stub_names() -> dict:
    tree = ast.parse(STUB.read_text())
    names = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
    return names


def test_version_is_the_packages():
    assert _core.__version__ == mtkseg.__version__


def test_stub_names_every_export_and_nothing_else():
    exported = {n for n in dir(_core) if not (n.startswith("__") and n.endswith("__"))}
    stub = _stub_names()
    assert exported - set(stub) == set(), "exported by _core but missing from _core.pyi"
    assert {n for n, node in stub.items() if isinstance(node, (ast.FunctionDef, ast.ClassDef))} - exported == set()
    assert "__version__" in stub


def test_stub_arguments_match_the_bindings():
    """Each stub function lists the parameters pybind11 reports (names, in order)."""
    stub = _stub_names()
    for name, node in stub.items():
        if not isinstance(node, ast.FunctionDef):
            continue
        doc = getattr(_core, name).__doc__ or ""
        m = re.match(rf"{re.escape(name)}\((.*?)\)\s*->", doc)
        assert m, (name, doc[:200])
        native = re.findall(r"(?:^|, )(\w+): ", m.group(1))
        assert native == [a.arg for a in node.args.args], name


@pytest.mark.parametrize("enum, members", [
    ("PixelFormat", ["GRAY", "RGB", "BGR", "RGBA", "BGRA"]),
    ("Layout", ["NHWC", "NCHW"]),
    ("Interpolation", ["LINEAR", "AREA"]),
    ("Mode", ["NEAREST", "BILINEAR"]),
])
def test_enums_replace_int_codes(enum, members):
    cls = getattr(_core, enum)
    assert [getattr(cls, m).name for m in members] == members
    assert [int(getattr(cls, m)) for m in members] == list(range(len(members)))


def test_int_codes_are_refused_by_the_bindings():
    out = np.zeros((4, 4), np.uint8)
    with pytest.raises(TypeError):
        _core.argmax_resize(np.zeros((4, 4, 3), np.float32), out, (0, 0, 4, 4), 0)
    _core.argmax_resize(np.zeros((4, 4, 3), np.float32), out, (0, 0, 4, 4), _core.Mode.BILINEAR)
    with pytest.raises(InvalidArgumentError, match="layout"):
        mtkseg.ops.preprocess(np.zeros((4, 4, 3), np.uint8), np.zeros((1, 4, 4, 3), np.float32), layout="chw")
