"""A short fuzz run of the model pre-validation (runtime/modelfile.py, runtime/metadata.py).

Hypothesis draws cases (a fixture model, a seed, how many field edits and byte flips); each case
is turned into a mutated model deterministically from its seed: random edits of quantisation
parameters, tensor types, shapes, buffer/tensor/opcode indices and buffer contents through the
object API (``ModelT``), then random byte flips.  Every mutated model must either load and run or
raise a typed :class:`mtkseg.errors.MtksegError`; the models are loaded in a child process per
batch (tests/fixtures/isolated.py), so a crash is reported with the case that caused it.

``MTKSEG_FUZZ_EXAMPLES`` (default 40, under 20 s) sets the number of cases and
``MTKSEG_FUZZ_SEED`` a seed for other cases than CI's fixed ones (see README, "Development");
``MTKSEG_FUZZ_CASE=model:seed:edits:flips`` replays one reported case.
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from fixtures import mutate
from fixtures.isolated import describe, load_isolated
from fixtures.reference import MODELS

EXAMPLES = int(os.environ.get("MTKSEG_FUZZ_EXAMPLES", "40"))
SEED = os.environ.get("MTKSEG_FUZZ_SEED")
BATCH = 200
#: small fixtures with quantised, float, multi-output, custom-op and metadata variants
FIXTURES = ("int8_io", "uint8_io", "float32", "class_index", "logit_map", "sigmoid", "metadata",
            "dynamic_range", "float16", "nchw_output", "custom_op", "dynamic_shape")

Case = Tuple[str, int, int, int]  # model, seed, field edits, byte flips

_SCALES = (0.0, -1.0, math.nan, math.inf, -math.inf, 1e-45, 1e-30, 1e30, 3.4e38)
_INTS = (-(2**40), -(2**31), -129, -2, -1, 0, 1, 127, 128, 255, 256, 32768, 65536, 2**31, 2**40)


def _pick_int(rng: random.Random, n: int) -> int:
    """An index near the valid range 0..n-1 (or one of the usual offenders)."""
    value = rng.choice([rng.randrange(-2, n + 3), -1, n, n + 1, rng.choice(_INTS)])
    return max(-(2**31), min(2**31 - 1, value))  # index vectors are int32


def _edit(m, rng: random.Random) -> None:
    """One random field change somewhere in the model."""
    sg = m.subgraphs[0]
    tensors = sg.tensors
    t = rng.choice(tensors)
    what = rng.randrange(12)
    if what == 0 and t.quantization is not None and t.quantization.scale is not None and len(t.quantization.scale):
        scale = np.array(t.quantization.scale, np.float32)
        scale[rng.randrange(len(scale))] = rng.choice(_SCALES)
        t.quantization.scale = scale
    elif what == 1 and t.quantization is not None and t.quantization.zeroPoint is not None and len(t.quantization.zeroPoint):
        zp = np.array(t.quantization.zeroPoint, np.int64)
        zp[rng.randrange(len(zp))] = rng.choice(_INTS)
        t.quantization.zeroPoint = zp
    elif what == 2 and t.quantization is not None:
        t.quantization.quantizedDimension = rng.randrange(-1, 6)
        if t.quantization.scale is not None and len(t.quantization.scale) and rng.random() < 0.5:
            keep = rng.randrange(len(t.quantization.scale) + 1)
            t.quantization.scale = np.array(t.quantization.scale[:keep], np.float32)
    elif what == 3:
        t.type = rng.randrange(0, 20)
    elif what == 4 and t.shape is not None and len(t.shape):
        shape = np.array(t.shape, np.int32)
        shape[rng.randrange(len(shape))] = rng.choice([-2, -1, 0, 1, 2, 3, 1000, 2**20])
        t.shape = shape
    elif what == 5:
        t.buffer = max(0, _pick_int(rng, len(m.buffers)))
    elif what in (6, 7) and sg.operators:
        op = rng.choice(sg.operators)
        name = "inputs" if what == 6 else "outputs"
        vec = getattr(op, name)
        if vec is not None and len(vec):
            vec = np.array(vec, np.int32)
            vec[rng.randrange(len(vec))] = _pick_int(rng, len(tensors))
            setattr(op, name, vec)
    elif what == 8 and sg.operators:
        rng.choice(sg.operators).opcodeIndex = max(0, _pick_int(rng, len(m.operatorCodes)))
    elif what == 9:
        name = rng.choice(["inputs", "outputs"])
        vec = np.array(getattr(sg, name), np.int32)
        vec[rng.randrange(len(vec))] = _pick_int(rng, len(tensors))
        setattr(sg, name, vec)
    elif what == 10:
        full = [b for b in m.buffers if b.data is not None and len(b.data)]
        if full:
            b = rng.choice(full)
            b.data = np.array(b.data[: rng.randrange(len(b.data))], np.uint8)
    else:
        if t.shapeSignature is not None and len(t.shapeSignature):
            sig = np.array(t.shapeSignature, np.int32)
            sig[rng.randrange(len(sig))] = rng.choice([-1, 0, 5])
            t.shapeSignature = sig


def mutated_model(case: Case) -> bytes:
    """The model bytes of one case (deterministic in the case)."""
    name, case_seed, edits, flips = case
    rng = random.Random(case_seed)
    data = (MODELS / f"{name}.tflite").read_bytes()
    if edits:
        m = mutate.unpack(data)
        for _ in range(edits):
            _edit(m, rng)
        try:
            data = mutate.pack(m)
        except Exception:  # an edit the serializer itself refuses (e.g. a negative uint index)
            data = (MODELS / f"{name}.tflite").read_bytes()
    if flips:
        raw = bytearray(data)
        for _ in range(flips):
            i = rng.randrange(8, len(raw))  # keep the root offset and identifier: reach the parser
            raw[i] ^= 1 << rng.randrange(8)
        data = bytes(raw)
    return data


cases_strategy = st.tuples(st.sampled_from(FIXTURES), st.integers(0, 2**32 - 1), st.integers(0, 4), st.integers(0, 6))


def _draw_cases() -> List[Case]:
    if os.environ.get("MTKSEG_FUZZ_CASE"):
        name, s, e, f = os.environ["MTKSEG_FUZZ_CASE"].split(":")
        return [(name, int(s), int(e), int(f))]
    drawn: List[Case] = []

    @settings(max_examples=EXAMPLES, database=None, derandomize=SEED is None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(cases_strategy)
    def collect(case: Case) -> None:
        drawn.append(case)

    if SEED is not None:
        collect = seed(int(SEED))(collect)
    collect()
    return list(dict.fromkeys(drawn))


def test_mutated_models_load_and_run_or_raise_typed_errors(tmp_path):
    cases = _draw_cases()
    paths = {}
    for n, case in enumerate(cases):
        p = tmp_path / f"case{n}.tflite"
        p.write_bytes(mutated_model(case))
        paths[str(p)] = case
    results = {}
    names = list(paths)
    for start in range(0, len(names), BATCH):
        results.update(load_isolated(names[start : start + BATCH], timeout=300))
    bad = [(paths[p], r) for p, r in results.items() if r["outcome"] not in ("ran", "error")]
    outcomes = {}
    for r in results.values():
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    report = "\n".join(f"MTKSEG_FUZZ_CASE={c[0]}:{c[1]}:{c[2]}:{c[3]} -> {describe(r)}" for c, r in bad[:20])
    assert not bad, f"{len(bad)} of {len(results)} mutated models crashed or raised untyped errors " \
                    f"(outcomes {outcomes}):\n{report}"
    assert len(results) == len(cases)


def test_mutations_are_deterministic():
    case = ("int8_io", 1234, 3, 4)
    assert mutated_model(case) == mutated_model(case)
    assert mutated_model(("float32", 1, 0, 0)) == Path(MODELS / "float32.tflite").read_bytes()
