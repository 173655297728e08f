"""House rule: arrows point down — train/ never imports the CLI (checked on the source, by AST)."""

import ast
from pathlib import Path

TRAIN = Path(__file__).resolve().parents[1] / "python" / "mtkseg" / "train"


def test_train_does_not_import_cli():
    offenders = []
    for path in TRAIN.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                target = ("." * node.level) + (node.module or "")
                if target.startswith("..cli") or target.startswith("mtkseg.cli"):
                    offenders.append(f"{path.name}: from {target}")
            elif isinstance(node, ast.Import):
                offenders += [f"{path.name}: import {a.name}" for a in node.names if a.name.startswith("mtkseg.cli")]
    assert not offenders, offenders
