"""Compute of a ``.tflite`` model: multiply-accumulates per forward pass, counted from the file.

Counts the ops that carry nearly all the arithmetic of a convolutional network, from the tensor
shapes the flatbuffer declares (use a model with a fixed input size):

* ``CONV_2D``: ``H_out * W_out * C_out * k_h * k_w * C_in`` (per batch item);
* ``DEPTHWISE_CONV_2D``: ``H_out * W_out * C_out * k_h * k_w``;
* ``TRANSPOSE_CONV``: ``H_in * W_in * C_in * k_h * k_w * C_out``;
* ``FULLY_CONNECTED``: ``output elements * input features``.

Elementwise ops, pooling, resizing and the int8 (de)quantisation are not counted (they are
memory-bound and small next to the convolutions).  Folded BatchNorm adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Union

import numpy as np

from ..errors import InvalidModelError
from .modelfile import _op_name, _schema, read_model_file

__all__ = ["ComputeCount", "count_macs"]

_COUNTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED")


@dataclass(frozen=True)
class ComputeCount:
    """Multiply-accumulates of one inference, in total and per op type."""

    macs: int
    by_op: Dict[str, int] = field(default_factory=dict)
    ops_counted: int = 0

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9


def _shape(subgraph, index: int) -> tuple:
    t = subgraph.Tensors(index)
    return tuple(int(v) for v in t.ShapeAsNumpy()) if t.ShapeLength() else ()


def count_macs(model: Union[str, Path, bytes]) -> ComputeCount:
    """Count the multiply-accumulates of subgraph 0 of a model (path or bytes).

    Raises:
        InvalidModelError: the file is not a readable model, or a counted op has a tensor
            whose shape is not declared (a dynamic-shape model: export it at a fixed size).
    """
    info = read_model_file(model)
    schema = _schema()
    m = schema.Model.GetRootAs(info.data, 0)
    sg = m.Subgraphs(0)
    by_op: Dict[str, int] = {}
    counted = 0
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = m.OperatorCodes(op.OpcodeIndex())
        name = _op_name(schema, max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode())))
        if name not in _COUNTED:
            continue
        ins = [int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(v) for v in op.OutputsAsNumpy()] if op.OutputsLength() else []
        try:
            if name == "TRANSPOSE_CONV":
                w, x = _shape(sg, ins[1]), _shape(sg, ins[2])  # inputs: output_shape, weights, input
                macs = int(np.prod(x[1:])) * w[0] * w[1] * w[2]
            else:
                x, w, y = _shape(sg, ins[0]), _shape(sg, ins[1]), _shape(sg, outs[0])
                if name == "CONV_2D":  # weights (C_out, kh, kw, C_in)
                    macs = y[1] * y[2] * y[3] * w[1] * w[2] * w[3]
                elif name == "DEPTHWISE_CONV_2D":  # weights (1, kh, kw, C_out)
                    macs = y[1] * y[2] * y[3] * w[1] * w[2]
                else:  # FULLY_CONNECTED: weights (C_out, C_in)
                    macs = int(np.prod(y[1:] if len(y) > 1 else y)) * w[1]
        except (IndexError, ValueError) as exc:
            raise InvalidModelError(
                f"{info.label}: operator {i} ({name}) has undeclared tensor shapes; export the model at a fixed "
                f"input size to count its compute ({exc})"
            ) from None
        if macs < 0:
            raise InvalidModelError(f"{info.label}: operator {i} ({name}) has a dynamic shape; use a fixed-size model")
        by_op[name] = by_op.get(name, 0) + int(macs)
        counted += 1
    return ComputeCount(sum(by_op.values()), by_op, counted)
