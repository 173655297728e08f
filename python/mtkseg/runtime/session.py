"""Sessions: one model loaded in a runtime, with zero-copy access to its I/O buffers.

:class:`InterpreterSession` (TFLite/LiteRT ``Interpreter`` + optional delegate)
    ``input_buffer()`` and ``output_buffer()`` are numpy views of the interpreter's own tensors
    (``interpreter.tensor(i)()``): preprocessing writes straight into the input, postprocessing
    reads the output where it lies, so a frame costs **no copies** beyond the model's own.
    The backend refuses to invoke while a view is alive, so views must be dropped (or
    copied) before the next :meth:`invoke`.

:class:`CompiledModelSession` (LiteRT ``CompiledModel`` + ``HardwareAccelerator``)
    The Python API exposes tensor buffers only through ``write``/``read``: one copy in (the
    staging array preprocessing writes into) and one copy out (a fresh array per frame).

:func:`open_session` walks the delegate/accelerator fallback chain (see
:mod:`mtkseg.runtime.delegates`) and maps backend failures to typed errors.  On the CPU
(``delegate="auto"``/``"cpu"``), a model XNNPACK cannot prepare (e.g. "failed to delegate
RESIZE_BILINEAR") runs on LiteRT's builtin kernels without the default delegate
(``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``), logged, and ``delegate`` says so;
``delegate="xnnpack"`` never falls back.  XNNPACK is always tried first, because some models
(MediaPipe's selfie and hair models) use custom ops only XNNPACK implements.

A session is opened before the model is described: :meth:`Session.tensor_specs` reports the
tensors as *allocated* (stale declared shapes in old converters' files are common), the
caller describes them (:func:`mtkseg.runtime.describe_model`) and then picks the output
with :meth:`Session.select_output`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .._quiet import native_output_muted
from .. import _validate as _v
from ..errors import (
    DelegateError,
    InvalidArgumentError,
    InvalidTypeError,
    ModelError,
    UnsupportedModelError,
    UnsupportedOpError,
)
from .backends import Backend, default_num_threads, get_backend
from .coverage import DelegateCoverage, coverage_from_ops
from .delegates import (
    DelegateCandidate,
    DelegateSpec,
    accelerator_candidates,
    delegate_candidates,
    is_android,
    options_for,
    preflight,
    raise_delegate_error,
    raw_options_for,
    resolve_library,
)
from .neuron import shim_library, stable_options
from .modelfile import ModelFile, TensorSpec

__all__ = ["Session", "InterpreterSession", "CompiledModelSession", "open_session", "check_num_threads",
           "spec_from_details", "BUILTIN_CPU"]

log = logging.getLogger("mtkseg.runtime")


class Session:
    """Common interface of the runtime sessions (used by :class:`mtkseg.Segmenter`)."""

    backend: str = ""
    delegate: str = ""
    attempts: Tuple[Tuple[str, str], ...] = ()
    #: Copies of frame-sized data a frame costs beyond the model's own compute.
    copies_per_frame: int = 0
    #: True when :meth:`output_buffer` returns an array the caller may keep (fresh per frame).
    output_owned: bool = False
    num_threads: int = 1
    #: ops the delegate took over (None on the CPU and with CompiledModel, which does not say)
    coverage: Optional[DelegateCoverage] = None

    def input_buffer(self) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def invoke(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def output_buffer(self) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def shapes(self) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:  # pragma: no cover - interface
        """(input shape, output shape) as allocated now."""
        raise NotImplementedError

    def tensor_specs(self) -> Tuple[Tuple[TensorSpec, ...], Tuple[TensorSpec, ...]]:  # pragma: no cover
        """(inputs, outputs) as the runtime allocated them, in the model's order."""
        raise NotImplementedError

    def select_output(self, position: int) -> None:  # pragma: no cover - interface
        """Make output ``position`` (in the model's output order) the one :meth:`output_buffer` returns."""
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


# ----------------------------------------------------------------------------- error mapping

_CUSTOM_RE = re.compile(r"(?:unresolved custom op|find custom op for name)[:\s]*'?([\w./-]+)", re.I)
_BUILTIN_RE = re.compile(r"Didn't find op for builtin opcode '(\w+)' version '(\d+)'", re.I)


def op_error(exc: BaseException, mf: ModelFile, backend: Backend) -> Optional[UnsupportedOpError]:
    """An UnsupportedOpError when ``exc`` says an operator is missing (else None)."""
    msg = str(exc)
    m = _CUSTOM_RE.search(msg)
    if m or ("custom op" in msg.lower() and mf.custom_ops):
        op = m.group(1).rstrip(".") if m else mf.custom_ops[0]
        if op.startswith("Flex"):
            where = "the tensorflow backend with the Flex (select TF ops) delegate, or re-export with builtin ops only"
        elif op.upper().startswith("MTKEXT"):
            where = "MediaTek's Neuron delegate (delegate='neuron'), which implements MTKEXT_* operators"
        else:
            where = "a backend or delegate that registers it (e.g. a vendor delegate), or re-export the model without it"
        return UnsupportedOpError(f"{mf.label}: custom operator {op!r} is not provided by {backend}; it needs {where}")
    m = _BUILTIN_RE.search(msg)
    if m:
        return UnsupportedOpError(
            f"{mf.label}: operator {m.group(1)} version {m.group(2)} is newer than {backend} supports; "
            "upgrade the runtime (pip install -U ai-edge-litert) or convert the model with an older converter"
        )
    if "select tensorflow op" in msg.lower() or "flex" in msg.lower() and "delegate" in msg.lower():
        return UnsupportedOpError(
            f"{mf.label}: the model uses TensorFlow (Flex) ops, which {backend} lacks; use the tensorflow backend "
            "or re-export with builtin ops only"
        )
    return None


def spec_from_details(d: Mapping[str, Any]) -> TensorSpec:
    """A :class:`TensorSpec` from an interpreter's ``get_input/output_details()`` entry."""
    q = d.get("quantization_parameters") or {}
    scales = tuple(float(v) for v in np.asarray(q.get("scales", ())).reshape(-1))
    zps = tuple(int(v) for v in np.asarray(q.get("zero_points", ())).reshape(-1))
    if scales and len(zps) != len(scales):
        zps = (0,) * len(scales)
    shape = tuple(int(v) for v in d["shape"])
    sig = tuple(int(v) for v in d.get("shape_signature", shape)) or shape
    return TensorSpec(int(d["index"]), str(d["name"]), np.dtype(d["dtype"]).name, shape, sig, scales, zps)


def check_num_threads(num_threads: Optional[int]) -> int:
    """Validate ``num_threads`` (None → usable cores)."""
    if num_threads is None:
        return default_num_threads()
    if not _v.is_int(num_threads):
        raise InvalidTypeError(f"num_threads: expected an int or None, got {type(num_threads).__name__}")
    return _v.integer(num_threads, "num_threads", minimum=1, expected=">= 1 (or None for all usable cores)")


# ----------------------------------------------------------------------------- interpreter

class InterpreterSession(Session):
    """A TFLite/LiteRT Interpreter with zero-copy I/O views (not thread-safe)."""

    copies_per_frame = 0
    output_owned = False

    def __init__(self, interpreter: Any, input_index: int, output_index: int, backend: Backend, delegate: str,
                 attempts: Sequence[Tuple[str, str]], delegate_handle: Any, num_threads: int,
                 coverage: Optional[DelegateCoverage] = None):
        self._it = interpreter
        self.coverage = coverage
        self._in = int(input_index)
        self._out = int(output_index)
        self._outputs = [int(d["index"]) for d in interpreter.get_output_details()]
        self._delegate_handle = delegate_handle  # keep the delegate alive as long as the interpreter
        self.backend = str(backend)
        self.delegate = delegate
        self.attempts = tuple(attempts)
        self.num_threads = num_threads

    def _require_open(self) -> Any:
        if self._it is None:
            raise ModelError("the session is closed")
        return self._it

    def input_buffer(self) -> np.ndarray:
        return self._require_open().tensor(self._in)()

    def output_buffer(self) -> np.ndarray:
        return self._require_open().tensor(self._out)()

    def invoke(self) -> None:
        it = self._require_open()
        try:
            it.invoke()
        except RuntimeError as exc:
            if "reference to internal data" in str(exc):
                raise ModelError(
                    "the interpreter's output is still referenced (a score_filter or caller kept a view of it); "
                    "copy what you need to keep before the next run()"
                ) from exc
            raise ModelError(f"inference failed: {exc}") from exc

    def shapes(self) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
        it = self._require_open()
        details = {d["index"]: d for d in it.get_input_details() + it.get_output_details()}
        return tuple(int(v) for v in details[self._in]["shape"]), tuple(int(v) for v in details[self._out]["shape"])

    def tensor_specs(self) -> Tuple[Tuple[TensorSpec, ...], Tuple[TensorSpec, ...]]:
        it = self._require_open()
        return (tuple(spec_from_details(d) for d in it.get_input_details()),
                tuple(spec_from_details(d) for d in it.get_output_details()))

    def select_output(self, position: int) -> None:
        if not 0 <= int(position) < len(self._outputs):
            raise InvalidArgumentError(f"output: index {position} outside 0..{len(self._outputs) - 1}")
        self._out = self._outputs[int(position)]

    def close(self) -> None:
        self._it = None
        self._delegate_handle = None


def _make_interpreter(backend: Backend, mf: ModelFile, input_shape: Sequence[int], threads: int,
                      delegates: List[Any], builtin: bool = False, nodes: Optional[List[Any]] = None) -> Any:
    """The allocated interpreter; ``nodes`` (when given) receives its node list as it stands after
    the user delegates were applied and before LiteRT's default XNNPACK delegate (which is applied
    at ``allocate_tensors()``), for :func:`mtkseg.runtime.coverage.coverage_from_ops`."""
    kwargs: dict = {"model_content": mf.data, "num_threads": threads}
    if delegates:
        kwargs["experimental_delegates"] = delegates
    if builtin:
        kwargs["experimental_op_resolver_type"] = backend.builtin_resolver
    with native_output_muted():  # LiteRT prints "INFO: Created ... XNNPACK delegate" to fd 2
        it = backend.interpreter_class(**kwargs)
        if nodes is not None:
            try:
                nodes.extend(it._get_ops_details())  # noqa: SLF001 - no public node listing
            except Exception as exc:  # an older backend without it: coverage unknown
                log.debug("%s: cannot list the interpreter's nodes (%s)", mf.label, exc)
        in_index = mf.inputs[0].index
        declared = tuple(int(v) for v in mf.inputs[0].shape)
        if tuple(input_shape) != declared:
            it.resize_tensor_input(in_index, list(input_shape), strict=False)
        it.allocate_tensors()
    return it


#: ``delegate`` of a session on LiteRT's builtin kernels after XNNPACK failed.
BUILTIN_CPU = "cpu (builtin kernels: XNNPACK could not prepare the model)"


def _open_cpu(backend: Backend, mf: ModelFile, input_shape: Sequence[int], threads: int,
              attempts: List[Tuple[str, str]], allow_builtin: bool) -> Tuple[Any, str]:
    """The interpreter on the CPU: XNNPACK (the default delegate), else the builtin kernels."""
    try:
        return _make_interpreter(backend, mf, input_shape, threads, []), "cpu"
    except (RuntimeError, ValueError) as exc:
        err = op_error(exc, mf, backend)
        if err is not None:
            raise err from exc
        reason = " ".join(str(exc).split())
        if not allow_builtin or backend.builtin_resolver is None:
            how = ("delegate='xnnpack' does not fall back; use delegate='cpu' to run on the builtin kernels"
                   if backend.builtin_resolver is not None else
                   f"{backend} cannot disable its default delegate; try ai-edge-litert")
            raise ModelError(f"{mf.label}: {backend} could not load the model: {reason} ({how})") from exc
        try:
            it = _make_interpreter(backend, mf, input_shape, threads, [], builtin=True)
        except (RuntimeError, ValueError) as exc2:
            err = op_error(exc2, mf, backend)
            if err is not None:
                raise err from exc2
            raise ModelError(
                f"{mf.label}: {backend} could not load the model with XNNPACK ({reason}) nor with its builtin "
                f"kernels ({' '.join(str(exc2).split())})"
            ) from exc2
        attempts.append(("xnnpack", reason))
        log.warning("%s: XNNPACK could not prepare the model (%s); running on LiteRT's builtin CPU kernels "
                    "without the default delegate (slower)", mf.label, reason[:300])
        return it, BUILTIN_CPU


def _load_delegate(backend: Backend, cand: DelegateCandidate, path: str, kind: str,
                   delegate_options: Optional[Mapping[str, object]]) -> Any:
    """The backend's delegate handle for library ``path``: an external delegate directly, a
    stable delegate through mtkseg's shim with its options as ``TFLiteSettings``.  Bad options
    raise (typed) before anything is loaded."""
    if kind == "stable":
        opts = stable_options(raw_options_for(cand, delegate_options), path)
        shim = shim_library()
        log.info("loading stable delegate %s through %s", path, shim)
        with native_output_muted():
            return backend.load_delegate(shim, opts)
    with native_output_muted():
        return backend.load_delegate(path, options_for(cand, delegate_options))


def _coverage(mf: ModelFile, nodes: List[Any], desc: str, level: int) -> Optional[DelegateCoverage]:
    if not nodes:
        return None
    cov = coverage_from_ops(nodes, desc)
    if cov.total_ops and not cov.full:
        how = ("nothing runs on it: every op stays on the CPU" if cov.delegated_ops == 0 else
               "the rest runs on the CPU, with a copy at each partition boundary")
        log.log(level, "%s: delegate %s took over only %d of %d ops (%s); %s", mf.label, desc, cov.delegated_ops,
                cov.total_ops, str(cov).split("; ", 1)[-1] if cov.cpu_ops else "", how)
    else:
        log.info("%s: %s", mf.label, cov)
    return cov


def _open_interpreter(backend: Backend, mf: ModelFile, input_shape: Sequence[int], threads: int,
                      candidates: List[DelegateCandidate], explicit: bool,
                      delegate_options: Optional[Mapping[str, object]], quiet: bool,
                      allow_builtin: bool = True,
                      attempts: Optional[List[Tuple[str, str]]] = None) -> InterpreterSession:
    attempts = list(attempts or [])
    # "auto" expects most delegates to be missing on a given machine: log skips at INFO.
    level = logging.INFO if quiet else logging.WARNING
    in_index, out_index = mf.inputs[0].index, mf.outputs[0].index
    for cand in candidates:
        if cand.is_cpu:
            skipped = len(attempts)
            it, desc = _open_cpu(backend, mf, input_shape, threads, attempts, allow_builtin)
            if skipped:
                log.log(level, "%s: running on cpu (%d delegate attempt(s) skipped)", mf.label, skipped)
            elif desc != BUILTIN_CPU:  # (warned of already) the choice is logged even when auto is the CPU alone
                log.info("%s: running on %s", mf.label, desc)
            return InterpreterSession(it, in_index, out_index, backend, desc, attempts, None, threads)
        if not cand.libraries:
            reason = cand.unavailable or "no delegate library for this platform"
            if explicit and len(candidates) == 1:
                hint = "" if "delegate='auto'" in reason else "; use delegate='auto' to fall back to the CPU"
                raise DelegateError(f"delegate {cand.name!r} cannot be used: {reason}{hint}")
            attempts.append((cand.name, reason))
            log.log(level, "%s: delegate %s skipped: %s", mf.label, cand.name, reason)
            continue
        for library in cand.libraries:
            where = "" if library == cand.name else f"{library}: "
            path, why = resolve_library(library)  # never the current directory
            kind = None
            if path is not None:
                kind, why = preflight(path)
            if why or path is None or kind is None:
                attempts.append((cand.name, why))
                log.log(level, "%s: delegate %s skipped: %s", mf.label, cand.name, why)
                continue
            try:
                handle = _load_delegate(backend, cand, path, kind, delegate_options)
            except (InvalidArgumentError, InvalidTypeError):
                raise  # bad delegate_options: the caller's to fix, not a reason to fall back
            except DelegateError as exc:  # the shim is missing
                attempts.append((cand.name, str(exc)))
                log.log(level, "%s: delegate %s skipped: %s", mf.label, cand.name, exc)
                continue
            except Exception as exc:  # ValueError/RuntimeError/OSError from the loader
                reason = f"{where}loader failed: {' '.join(str(exc).split())}"
                attempts.append((cand.name, reason))
                log.log(level, "%s: delegate %s skipped: %s", mf.label, cand.name, reason)
                continue
            nodes: List[Any] = []
            try:
                it = _make_interpreter(backend, mf, input_shape, threads, [handle], nodes=nodes)
            except Exception as exc:
                err = op_error(exc, mf, backend)
                if explicit and err is not None:
                    raise err from exc
                reason = f"{where}could not apply to the model: {' '.join(str(exc).split())}"
                attempts.append((cand.name, reason))
                log.log(level, "%s: delegate %s skipped: %s", mf.label, cand.name, reason)
                continue
            desc = cand.name if cand.name == path else f"{cand.name} ({path})"
            log.info("%s: running on delegate %s%s", mf.label, desc, " (stable delegate)" if kind == "stable" else "")
            coverage = _coverage(mf, nodes, cand.name, level if quiet else logging.WARNING)
            return InterpreterSession(it, in_index, out_index, backend, desc, attempts, handle, threads, coverage)
        if explicit:
            break
    hint = (
        "Install the delegate library or pass its path (delegate='/path/lib.so'), set MTKSEG_<NAME>_DELEGATE, "
        "or use delegate='auto' to fall back to the CPU"
    )
    what = f"delegate {candidates[0].name!r}" if len(candidates) == 1 else f"delegates {[c.name for c in candidates]}"
    raise_delegate_error(what, attempts, hint)
    raise AssertionError("unreachable")  # pragma: no cover


# ----------------------------------------------------------------------------- compiled model

def _aligned_empty(shape: Sequence[int], dtype: np.dtype, alignment: int = 64) -> np.ndarray:
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    offset = (-raw.ctypes.data) % alignment
    return raw[offset : offset + nbytes].view(dtype).reshape(tuple(shape))


class CompiledModelSession(Session):
    """A LiteRT ``CompiledModel`` on one hardware accelerator (one copy in, one copy out)."""

    copies_per_frame = 2
    output_owned = True

    def __init__(self, model: Any, mf: ModelFile, backend: Backend, accelerator: str,
                 attempts: Sequence[Tuple[str, str]], num_threads: int):
        self._cm = model
        self._mf = mf
        self.backend = f"{backend} (CompiledModel)"
        self.delegate = accelerator
        self.attempts = tuple(attempts)
        self.num_threads = num_threads
        self._bind()

    def _bind(self) -> None:
        sig = self._cm.get_signature_list()
        self._key = next(iter(sig))
        ins = self._cm.get_input_tensor_details(self._key)
        outs = self._cm.get_output_tensor_details(self._key)
        in_name = next(iter(ins))
        self._out_details = [outs[n] for n in outs]
        in_d = ins[in_name]
        self._in_shape = tuple(int(v) for v in in_d["shape"])
        self._staging = _aligned_empty(self._in_shape, np.dtype(str(in_d["dtype"])))
        self._inputs = self._cm.create_input_buffers(0)
        self._outputs = self._cm.create_output_buffers(0)
        self._result: Optional[np.ndarray] = None
        self.select_output(0)

    def tensor_specs(self) -> Tuple[Tuple[TensorSpec, ...], Tuple[TensorSpec, ...]]:
        # The CompiledModel API reports shapes and dtypes but not quantisation: the file's
        # specs with the compiled shapes where the counts agree.
        outs = list(self._mf.outputs)
        if len(self._out_details) == len(outs):
            outs = [replace(spec, shape=tuple(int(v) for v in d["shape"])) for spec, d in zip(outs, self._out_details)]
        return tuple(self._mf.inputs), tuple(outs)

    def select_output(self, position: int) -> None:
        pos = int(position)
        if not 0 <= pos < len(self._mf.outputs):
            raise InvalidArgumentError(f"output: index {position} outside 0..{len(self._mf.outputs) - 1}")
        wanted = self._mf.outputs[pos].name
        names = [d.get("name") for d in self._out_details]
        self._out_pos = names.index(wanted) if wanted in names else min(pos, len(self._out_details) - 1)
        out_d = self._out_details[self._out_pos]
        self._out_shape = tuple(int(v) for v in out_d["shape"])
        self._out_dtype = np.dtype(str(out_d["dtype"]))
        if self._out_dtype.name not in _TENSOR_BUFFER_DTYPES:
            raise UnsupportedModelError(
                f"{self._mf.label}: LiteRT CompiledModel buffers cannot hold {self._out_dtype.name} outputs; "
                "use the Interpreter path (delegate=..., accelerator=None)"
            )

    def input_buffer(self) -> np.ndarray:
        return self._staging

    def invoke(self) -> None:
        if self._cm is None:
            raise ModelError("the session is closed")
        try:
            self._inputs[0].write(self._staging)
            self._cm.run_by_index(0, self._inputs, self._outputs)
            n = int(np.prod(self._out_shape))
            self._result = self._outputs[self._out_pos].read(n, self._out_dtype).reshape(self._out_shape)
        except RuntimeError as exc:
            raise ModelError(f"inference failed on {self.delegate}: {exc}") from exc

    def output_buffer(self) -> np.ndarray:
        if self._result is None:
            raise ModelError("no output yet: invoke() first")
        return self._result

    def shapes(self) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
        return self._in_shape, self._out_shape

    def close(self) -> None:
        with native_output_muted():  # "DestroyAccelerator" lines on fd 2
            self._cm = None
            self._inputs = self._outputs = []
        self._result = None


_TENSOR_BUFFER_DTYPES = ("float32", "float16", "int32", "int8", "uint8")


def _fully_accelerated(session: "CompiledModelSession") -> bool:
    try:
        return bool(session._cm.is_fully_accelerated())  # noqa: SLF001
    except Exception:  # an older ai-edge-litert without it
        return False


def _open_compiled(backend: Backend, mf: ModelFile, threads: int, names: List[str],
                   explicit: bool, quiet: bool) -> CompiledModelSession:
    from ai_edge_litert.compiled_model import CompiledModel  # type: ignore[import-not-found]
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator  # type: ignore[import-not-found]
    from ai_edge_litert.options import CpuOptions, Options  # type: ignore[import-not-found]

    in_dtype = mf.inputs[0].dtype
    if in_dtype not in _TENSOR_BUFFER_DTYPES or not any(o.dtype in _TENSOR_BUFFER_DTYPES for o in mf.outputs):
        out_dtypes = sorted({o.dtype for o in mf.outputs})
        raise UnsupportedModelError(
            f"{mf.label}: LiteRT CompiledModel buffers cannot hold {in_dtype} inputs / "
            f"{'/'.join(out_dtypes)} outputs; use the Interpreter path (delegate=..., accelerator=None)"
        )
    flags = {"npu": HardwareAccelerator.NPU, "gpu": HardwareAccelerator.GPU, "cpu": HardwareAccelerator.CPU,
             "npu|cpu": HardwareAccelerator.NPU | HardwareAccelerator.CPU}
    level = logging.INFO if quiet else logging.WARNING
    attempts: List[Tuple[str, str]] = []
    for name in names:
        try:
            options = Options(hardware_accelerators=flags[name], cpu_options=CpuOptions(num_threads=threads))
            with native_output_muted():  # accelerator registry lines on fd 2
                cm = CompiledModel.from_buffer(mf.data, options=options)
                session = CompiledModelSession(cm, mf, backend, name, attempts, threads)
        except Exception as exc:  # RuntimeError from the native layer
            err = op_error(exc, mf, backend)
            if err is not None and name == "cpu":
                raise err from exc
            reason = " ".join(str(exc).split())[:400] or type(exc).__name__
            attempts.append((name, reason))
            log.log(level, "%s: accelerator %s skipped: %s", mf.label, name, reason)
            if explicit:
                break
            continue
        if attempts:
            log.log(level, "%s: running on accelerator %s (%d skipped)", mf.label, name, len(attempts))
        return session
    raise_delegate_error(
        f"accelerator {names[0]!r}" if explicit else f"accelerators {names}",
        attempts,
        "The NPU needs a vendor dispatch library (e.g. MediaTek NeuroPilot) and the GPU a working OpenCL/WebGPU "
        "driver; use accelerator='auto' or a list ending in 'cpu' to fall back",
    )
    raise AssertionError("unreachable")  # pragma: no cover


# ----------------------------------------------------------------------------- entry point

def open_session(
    mf: ModelFile,
    input_shape: Sequence[int],
    *,
    resizable: bool = False,
    delegate: DelegateSpec = "auto",
    delegate_options: Optional[Mapping[str, object]] = None,
    num_threads: Optional[int] = None,
    accelerator: Union[str, Sequence[str], None] = None,
    backend: Optional[Backend] = None,
) -> Session:
    """Load ``mf`` on the first usable delegate (or accelerator) of the requested chain, its
    input allocated at ``input_shape`` (see :func:`mtkseg.runtime.info.input_plan`); output 0
    is selected until :meth:`Session.select_output`.

    Raises:
        DelegateError: an explicitly named delegate/accelerator (or every one of a list) failed.
        UnsupportedOpError: the model needs an operator the backend lacks.
        ModelError: the backend rejected the model for another reason.
        BackendError: no interpreter backend is installed.
    """
    threads = check_num_threads(num_threads)
    if delegate_options is not None and not isinstance(delegate_options, Mapping):
        raise InvalidTypeError(f"delegate_options: expected a dict, got {type(delegate_options).__name__}")
    backend = backend or get_backend()
    if accelerator is not None:
        if delegate not in (None, "auto"):
            raise InvalidArgumentError(
                "accelerator and delegate cannot be combined: accelerator= uses LiteRT's CompiledModel, "
                "delegate= the Interpreter; pass one of them"
            )
        names, explicit = accelerator_candidates(accelerator)
        if resizable:
            # LiteRT 2.3's CompiledModel sizes output buffers before the dynamic output shape is
            # known and corrupts the heap on run: keep resizable models on the Interpreter.
            reason = "the model's input is resizable, which LiteRT's CompiledModel cannot run safely"
            if explicit:
                raise UnsupportedModelError(f"{mf.label}: accelerator={names[0]!r}: {reason}; use delegate=... instead")
            log.warning("%s: accelerator skipped: %s; using the Interpreter", mf.label, reason)
        elif not backend.has_compiled_model:
            reason = f"{backend} has no CompiledModel API (needs ai-edge-litert)"
            if explicit:
                raise DelegateError(f"accelerator {names[0]!r} could not be used: {reason}")
            log.info("%s: accelerator skipped: %s; using the Interpreter", mf.label, reason)
        else:
            quiet = isinstance(accelerator, str) and accelerator.lower() == "auto"
            return _open_compiled(backend, mf, threads, names, explicit, quiet)
    candidates, explicit = delegate_candidates(delegate)
    quiet = delegate is None or (isinstance(delegate, str) and delegate.strip().lower() == "auto")
    allow_builtin = not (isinstance(delegate, str) and delegate.strip().lower() == "xnnpack")
    attempts: List[Tuple[str, str]] = []
    if quiet and is_android():
        # Android's MediaTek NPU path is LiteRT's CompiledModel (NNAPI is deprecated since Android 15).
        if resizable:
            attempts.append(("npu", "the model's input is resizable, which LiteRT's CompiledModel cannot run safely"))
        elif not backend.has_compiled_model:
            attempts.append(("npu", f"{backend} has no CompiledModel API (needs ai-edge-litert)"))
        else:
            try:
                compiled = _open_compiled(backend, mf, threads, ["npu|cpu"], False, True)
            except (DelegateError, UnsupportedModelError) as exc:
                attempts.append(("npu", " ".join(str(exc).split())[:400]))
            else:
                # NPU|CPU also "works" with no NPU at all (everything on the CPU) and LiteRT does not
                # say which ops went where: auto keeps it only when the NPU runs the whole model.
                if _fully_accelerated(compiled):
                    compiled.delegate = "npu"
                    return compiled
                compiled.close()
                attempts.append(("npu", "LiteRT's CompiledModel is not fully accelerated on the NPU here (no NPU, or "
                                        "only part of the model); pass accelerator='npu|cpu' to run it anyway"))
        log.info("%s: CompiledModel npu|cpu skipped: %s", mf.label, attempts[-1][1])
    return _open_interpreter(backend, mf, input_shape, threads, candidates, explicit, delegate_options, quiet,
                             allow_builtin, attempts)
