"""How much of a model a delegate took over (``Segmenter.delegate_coverage``).

A delegate replaces the subgraphs it supports with ``DELEGATE`` nodes; the rest stays on the CPU.
The interpreter's node list (``_get_ops_details()``) keeps the model's own ops and appends one
``DELEGATE`` node per partition.  The user's delegate is applied when the interpreter is
constructed, LiteRT's default XNNPACK delegate only at ``allocate_tensors()``, so the node list
read between the two holds only the user delegate's partitions.  The ops a partition replaced are
found from the dataflow: walking back from the partition's outputs through the ops that produce
them, stopping at the partition's inputs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Sequence, Set

__all__ = ["DelegateCoverage", "coverage_from_ops"]


@dataclass(frozen=True)
class DelegateCoverage:
    """Ops of the model a delegate took over."""

    delegate: str
    delegated_ops: int
    total_ops: int
    partitions: int
    #: ``{op name: count}`` of the ops left on the CPU
    cpu_ops: Dict[str, int] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """Share of the model's ops that run on the delegate (0..1)."""
        return self.delegated_ops / self.total_ops if self.total_ops else 0.0

    @property
    def full(self) -> bool:
        return self.total_ops > 0 and self.delegated_ops == self.total_ops

    def to_dict(self) -> Dict[str, Any]:
        return {"delegate": self.delegate, "delegated_ops": self.delegated_ops, "total_ops": self.total_ops,
                "partitions": self.partitions, "fraction": round(self.fraction, 4), "cpu_ops": dict(self.cpu_ops)}

    def __str__(self) -> str:
        text = (f"{self.delegate} runs {self.delegated_ops}/{self.total_ops} ops ({100 * self.fraction:.0f}%) in "
                f"{self.partitions} partition(s)")
        if self.cpu_ops:
            left = ", ".join(f"{name} x{n}" for name, n in sorted(self.cpu_ops.items(), key=lambda kv: (-kv[1], kv[0])))
            text += f"; on the CPU: {left}"
        return text


def coverage_from_ops(ops: Sequence[Mapping[str, Any]], delegate: str) -> DelegateCoverage:
    """Coverage from an interpreter's ``_get_ops_details()`` list (see the module docstring)."""
    model_ops = [op for op in ops if op.get("op_name") != "DELEGATE"]
    partitions = [op for op in ops if op.get("op_name") == "DELEGATE"]
    producer: Dict[int, int] = {}
    for pos, op in enumerate(model_ops):
        for t in op.get("outputs", ()):
            producer[int(t)] = pos
    covered: Set[int] = set()
    for node in partitions:
        stop = {int(t) for t in node.get("inputs", ())}
        todo: List[int] = [int(t) for t in node.get("outputs", ())]
        seen: Set[int] = set()
        while todo:
            t = todo.pop()
            if t in seen or t in stop or t not in producer:
                continue
            seen.add(t)
            pos = producer[t]
            if pos in covered:
                continue
            covered.add(pos)
            todo.extend(int(i) for i in model_ops[pos].get("inputs", ()) if int(i) >= 0)
    left = Counter(str(op.get("op_name")) for pos, op in enumerate(model_ops) if pos not in covered)
    return DelegateCoverage(delegate, len(covered), len(model_ops), len(partitions), dict(left))
