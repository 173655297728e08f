"""``Segmenter``: run a TFLite segmentation model on frames.

::

    import mtkseg
    with mtkseg.Segmenter("model.tflite") as seg:      # or Segmenter() for the bundled model
        result = seg.run(frame)                          # HxWx3 uint8 BGR, PIL image or path
        result.mask, result.overlay(), result.class_fractions()

One frame travels one way: ``ops.preprocess`` writes into the interpreter's input buffer →
invoke → ``ops.postprocess`` reads the output buffer in place → ``SegmentationResult``.  On the
Interpreter path this costs no copies beyond the model's own (see
:mod:`mtkseg.runtime.session` for the CompiledModel path and :mod:`mtkseg.result` for when
scores are copied for ``confidence()``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from . import ops
from ._quiet import demoted_logs
from .errors import (FrameError, InvalidArgumentError, InvalidModelError, InvalidTypeError, ModelError, MtksegError,
                     ReentrantCallError)
from .result import SegmentationResult
from .runtime import ModelInfo, describe_model, input_plan, open_session, read_model_file
from .options import PriorLike, SegmenterOptions, check_prior
from .runtime.coverage import DelegateCoverage
from .runtime.metadata import read_sidecar

if TYPE_CHECKING:  # pragma: no cover
    from .video import StreamOptions, VideoStream

__all__ = ["Segmenter", "SegmenterOptions", "PreparedFrame", "ModelOutput", "DEFAULT_MODEL_NAME", "default_model_path"]

DEFAULT_MODEL_NAME = "camvid-lite0-int8.tflite"

log = logging.getLogger("mtkseg")

ScoreFilter = Callable[[np.ndarray, float, int], np.ndarray]
FrameLike = Union[np.ndarray, str, "os.PathLike[str]", Any]


class PreparedFrame(NamedTuple):
    """A frame made ready for the model by :meth:`Segmenter.prepare` (no interpreter touched)."""

    tensor: np.ndarray  #: the model input, batch 1, in the model's layout, dtype and value range
    image: np.ndarray  #: the frame as given (what ``result.overlay()`` draws on)
    color: str  #: channel order of ``image``
    size: Tuple[int, int]  #: ``(height, width)`` of the mask to produce
    geometry: ops.InputGeometry  #: where the frame lies in ``tensor`` (letterbox padding)
    pre_ms: float  #: time spent preparing


class ModelOutput(NamedTuple):
    """The raw model output of one frame, copied out of the interpreter by :meth:`Segmenter.infer`."""

    tensor: np.ndarray
    infer_ms: float


def default_model_path() -> Optional[Path]:
    """The bundled default model: ``mtkseg/models/`` of the installed package, or ``models/``
    of a source checkout.  None when neither exists."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "models" / DEFAULT_MODEL_NAME, here.parents[1] / "models" / DEFAULT_MODEL_NAME):
        if candidate.is_file():
            return candidate
    return None


def _as_frame(frame: FrameLike, color: str) -> Tuple[np.ndarray, str]:
    """A uint8 numpy frame and its channel order from an array, a PIL image or a path."""
    if frame is None:
        raise FrameError("frame is None (cv2.imread and VideoCapture.read return None when they fail: check the source)")
    if isinstance(frame, (str, os.PathLike)):
        path = Path(frame)
        if not path.is_file():
            raise FrameError(f"frame: image file not found: {path}")
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FrameError(f"frame: cannot decode {path} as an image")
        return image, "bgr"
    if type(frame).__module__.startswith("PIL."):
        mode = getattr(frame, "mode", "")
        if mode == "L":
            return np.asarray(frame), "rgb"
        if mode != "RGB":
            frame = frame.convert("RGB")
        return np.asarray(frame), "rgb"
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"frame: expected a uint8 numpy image, a PIL.Image or a path, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        hint = " (scale floats in [0, 1] with (frame * 255).astype(np.uint8))" if frame.dtype.kind == "f" else ""
        raise FrameError(f"frame: expected uint8 pixels, got {frame.dtype}{hint}")
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        raise FrameError(f"frame: expected HxW, HxWx1, HxWx3 or HxWx4 uint8, got shape {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise FrameError(f"frame: empty image of shape {frame.shape}")
    return frame, color


#: Sidecar files already warned about (once per file and process, replicas included).
_WARNED_SIDECARS: set = set()


def _model_palette(info: ModelInfo) -> np.ndarray:
    """The model's palette as ``(C, 3)`` uint8, checked where it enters: more than 256 colours
    (from a sidecar) is an :class:`InvalidModelError` instead of failing every overlay, and a
    sidecar palette too short for the classes (replaced by the default one) is warned about."""
    where = f"sidecar {info.sidecar}" if info.sidecar else f"model {info.path or '<bytes>'}"
    try:
        palette = ops.check_palette(info.palette, name="palette")
    except MtksegError as exc:
        raise InvalidModelError(f"{where}: {exc}") from None
    if info.sidecar and info.path and info.sidecar not in _WARNED_SIDECARS:
        sidecar = read_sidecar(Path(info.path))
        wanted = info.num_classes
        if sidecar is not None and sidecar.palette is not None and wanted is not None and len(sidecar.palette) < wanted:
            _WARNED_SIDECARS.add(info.sidecar)
            log.warning(
                "%s: \"palette\" lists %d colours but the model outputs %d classes, so the default palette is used; "
                "list %d [r, g, b] colours to use your own", where, len(sidecar.palette), wanted, wanted,
            )
    return palette


class _OwnedLock:
    """The Segmenter's lock: a plain lock that knows the thread holding it, so that a call from
    that same thread (a ``score_filter`` calling back into its Segmenter) raises
    :class:`~mtkseg.errors.ReentrantCallError` instead of deadlocking.

    Results whose scores still lie in the interpreter's buffer hold this lock while they read
    them (:meth:`SegmentationResult.confidence`), so another thread's ``run()`` cannot
    overwrite the buffer mid-read.
    """

    __slots__ = ("_lock", "_owner")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: Optional[int] = None

    def __enter__(self) -> "_OwnedLock":
        me = threading.get_ident()
        # Only the holding thread ever sees its own id here: it clears it before releasing.
        if self._owner == me:
            raise ReentrantCallError(
                "score_filter: called the Segmenter (run/infer/finish/close, or confidence() of a result it "
                "has not yet released) from inside its own score_filter; a score_filter must only transform "
                "the scores it is given and return them: do not call the Segmenter from inside score_filter "
                "(use seg.replicate() for a second Segmenter if the filter needs one)"
            )
        self._lock.acquire()
        self._owner = me
        return self

    def __exit__(self, *exc: object) -> None:
        self._owner = None
        self._lock.release()


class Segmenter:
    """Semantic segmentation with a TFLite model.

    ``Segmenter(model, **options)`` and ``Segmenter(options=SegmenterOptions(...))`` are the
    same: keyword arguments are the fields of :class:`~mtkseg.SegmenterOptions` (listed below),
    applied on top of ``options`` when both are given, and validated there once.

    Args:
        model: path to a ``.tflite`` file (or its bytes); None for the bundled CamVid model
            (or ``options.model``).
        options: a :class:`~mtkseg.SegmenterOptions` holding all of the below.
        delegate: ``"auto"`` (default), ``"cpu"``/``"xnnpack"``, ``"gpu"``, ``"nnapi"``,
            ``"neuron"``, a delegate ``.so`` path, or an ordered list; see
            :mod:`mtkseg.runtime.delegates`.
        delegate_options: options passed to the delegate loader (flat, or keyed by name).
        num_threads: CPU threads of the interpreter; None = all usable cores (LiteRT's own
            default is 1).  Pre/post-processing use the native kernels' pool
            (:func:`mtkseg.ops.set_num_threads`).
        color: channel order of 3/4-channel numpy frames, ``"bgr"`` (OpenCV) or ``"rgb"``.
            PIL images are always RGB, paths are decoded as BGR.
        fit: ``"stretch"`` the frame to the model input, or ``"letterbox"`` (keep the aspect
            ratio, pad with black; the padding is cut away from the mask).
        upsample: ``"nearest"`` (argmax at model resolution, then nearest resize: fastest) or
            ``"bilinear"`` (scores interpolated to the output size, then argmax: smoother).
        interpolation: how frames are resized to the model input: ``"linear"`` (default;
            OpenCV INTER_LINEAR, what ``tf.image.resize`` and most training pipelines,
            mtkseg's own included, use), ``"area"`` (INTER_AREA: anti-aliased downscaling,
            ~3x the cost on HD frames) or ``"auto"`` (area for downscales of 2x or more).
        normalization: the model's value range when it carries none: ``"unit"`` (x/255, the
            default for float models without metadata, with a warning), ``"raw"`` (0..255),
            ``"symmetric"`` ([-1, 1]) or ``(mean, std)`` in pixel units.  Overrides metadata.
        labels: class names, or the path of a text label map (one label per line, optional
            leading index); overrides the model's label file / sidecar.
        output_size: ``(height, width)`` of masks; default each frame's own size.
        accelerator: ``"npu"``/``"gpu"``/``"cpu"``/``"auto"`` or a list: run with LiteRT's
            ``CompiledModel`` instead of the Interpreter (cannot be combined with ``delegate``).
        input_size: ``(height, width)`` for models with a resizable input.
        output: which output is the segmentation map, by index or tensor name (default: the
            largest map; ``info.outputs`` lists them all).
        output_map_size: ``(height, width)`` of a flattened ``[1, h*w*C]`` output when it is
            neither the input size nor a power-of-two fraction of it (``info.output_size``
            says what was inferred).
        prior: for models whose 4th input channel is the previous frame's mask
            (``info.input_prior``): what :meth:`run` feeds there for a single image, a
            probability in [0, 1] or an ``HxW`` map (default 0: no person/hair yet).
            :meth:`stream` feeds each frame the previous frame's foreground probability.

    One interpreter runs one frame at a time: calls from several threads are serialised by an
    internal lock (correct, but not parallel), and ``result.confidence()`` of a result whose
    scores still lie in the interpreter's buffer takes the same lock, so results stay valid
    while other threads run frames.  Use :meth:`replicate` for one Segmenter per thread.  A
    ``score_filter`` must not call back into its Segmenter
    (:class:`~mtkseg.errors.ReentrantCallError`).  :meth:`run` is :meth:`prepare` →
    :meth:`infer` → :meth:`finish` without the copies between them; the three steps exist
    separately so a pipeline can spread them over threads (:mod:`mtkseg.video` does).
    """

    def __init__(self, model: Union[str, "os.PathLike[str]", bytes, None] = None, *,
                 options: Optional[SegmenterOptions] = None, **kwargs: Any) -> None:
        if options is not None and not isinstance(options, SegmenterOptions):
            raise InvalidTypeError(f"options: expected a mtkseg.SegmenterOptions, got {type(options).__name__}")
        if model is not None:
            kwargs["model"] = model
        # Keyword arguments build (or change) the same options object: declared once, validated once.
        opts = SegmenterOptions.from_kwargs(options, **kwargs)
        self._lock = _OwnedLock()
        self._session = None
        self._replica_pool: Dict[int, List["Segmenter"]] = {}
        self._pending: "weakref.WeakSet[SegmentationResult]" = weakref.WeakSet()
        self._prior = opts.prior
        self._color, self._fit, self._upsample = opts.color, opts.fit, opts.upsample
        self._interpolation = opts.interpolation
        self._output_size = opts.output_size
        model = opts.model
        if model is None or (isinstance(model, str) and model == "default" and not os.path.exists(model)):
            found = default_model_path()
            if found is None:
                raise ModelError(
                    f"the bundled default model ({DEFAULT_MODEL_NAME}) is not installed; pass a model: "
                    "mtkseg.Segmenter('path/to/model.tflite')"
                )
            model = os.fspath(found)
        #: What replicate() opens again: the resolved model and the options as given.
        self._options = opts.replace(model=model) if model is not opts.model else opts
        self._file = read_model_file(model)  # validates the flatbuffer before any runtime sees it
        alloc_shape, resizable = input_plan(self._file, opts.input_size)
        session = open_session(
            self._file, alloc_shape, resizable=resizable, delegate=opts.delegate,
            delegate_options=opts.delegate_options, num_threads=opts.num_threads, accelerator=opts.accelerator,
        )
        try:
            # Described from the tensors as allocated: old converters leave stale shapes in the file.
            info = describe_model(self._file, labels=opts.labels, normalization=opts.normalization,
                                  input_size=opts.input_size, output=opts.output, output_map_size=opts.output_map_size,
                                  tensors=session.tensor_specs())
            session.select_output(info.output_index)
            in_shape, out_shape = session.shapes()
        except BaseException:
            session.close()
            raise
        self._session = session
        self._info = info.with_shapes(in_shape, out_shape)
        if not self._info.input_prior and (isinstance(opts.prior, np.ndarray) or opts.prior != 0.0):
            raise InvalidArgumentError("prior: this model has no mask input channel (info.input_prior is False)")
        try:
            self._palette = _model_palette(self._info)
        except BaseException:
            session.close()
            raise
        self._model_color = "bgr" if self._info.color_order == "bgr" else "rgb"
        self._threshold = 0.5 if self._info.output_kind == "binary_probability" else 0.0
        if self._info.output_scale is not None:
            self._scale, self._zp = float(self._info.output_scale), int(self._info.output_zero_point or 0)
        else:
            self._scale, self._zp = 1.0, 0
        if self._info.input_scale is not None:
            self._in_q: Dict[str, Any] = {"scale": self._info.input_scale, "zero_point": self._info.input_zero_point}
        else:
            self._in_q = {}

    # ------------------------------------------------------------------ properties

    @property
    def options(self) -> SegmenterOptions:
        """The options this Segmenter was built from (``model`` resolved: the bundled model's
        path for None/``"default"``); ``Segmenter(options=seg.options)`` opens the same again."""
        return self._options

    @property
    def info(self) -> ModelInfo:
        """Everything read from the model (:class:`~mtkseg.runtime.ModelInfo`)."""
        return self._info

    @property
    def backend(self) -> str:
        """The interpreter backend that runs, e.g. ``"ai-edge-litert 2.3.0"``."""
        return self._require_open().backend

    @property
    def delegate(self) -> str:
        """What actually runs the model: ``"cpu"``, ``"gpu (libtensorflowlite_gpu_delegate.so)"``,
        ``"npu"`` (accelerator)..."""
        return self._require_open().delegate

    @property
    def delegate_coverage(self) -> Optional[DelegateCoverage]:
        """How many of the model's ops the delegate took over
        (:class:`~mtkseg.runtime.coverage.DelegateCoverage`: ``delegated_ops``, ``total_ops``,
        ``partitions``, ``fraction``, ``cpu_ops``); None on the CPU and with ``accelerator=``
        (LiteRT's CompiledModel does not report it).  Partial coverage is logged as a warning."""
        return self._require_open().coverage

    @property
    def delegate_attempts(self) -> Tuple[Tuple[str, str], ...]:
        """``(name, reason)`` of each delegate/accelerator skipped before the one that runs."""
        return self._require_open().attempts

    @property
    def num_threads(self) -> int:
        return self._require_open().num_threads

    @property
    def copies_per_frame(self) -> int:
        """Frame-sized copies per ``run()`` beyond the model's own (0 on the Interpreter path)."""
        return self._require_open().copies_per_frame

    @property
    def input_size(self) -> Tuple[int, int]:
        """Model input ``(height, width)``."""
        return self._info.input_size

    @property
    def num_classes(self) -> Optional[int]:
        """Number of classes (None for a class-index model without labels)."""
        return self._info.num_classes

    @property
    def class_names(self) -> Tuple[str, ...]:
        return self._info.class_names

    @property
    def palette(self) -> np.ndarray:
        """``(C, 3)`` uint8 RGB colours (sidecar palette, or :func:`mtkseg.viz.default_palette`)."""
        return self._palette.copy()

    @property
    def closed(self) -> bool:
        return self._session is None

    def _require_open(self):
        if self._session is None:
            raise ModelError("this Segmenter is closed")
        return self._session

    # ------------------------------------------------------------------ running

    def _release_pending(self) -> None:
        """Copy the scores of live results out of the output buffer before it changes."""
        if len(self._pending):
            for result in list(self._pending):
                result._detach()
            self._pending = weakref.WeakSet()

    def run(self, frame: FrameLike, *, score_filter: Optional[ScoreFilter] = None,
            prior: Optional[PriorLike] = None) -> SegmentationResult:
        """Segment one frame.

        Args:
            frame: ``HxWx3`` uint8 (BGR, or RGB with ``color="rgb"``), ``HxWx4`` (BGRA/RGBA),
                ``HxW`` gray, a ``PIL.Image`` (RGB) or a path to an image file.
            score_filter: optional ``f(scores, scale, zero_point) -> scores``, called with the
                model-resolution ``(h, w, C)`` scores (raw dtype; an NHWC view even for NCHW
                models) and returning an ``(h, w, C)`` array (raw dtype, or float32/float16
                dequantised) that is turned into the mask instead.  Used for temporal
                smoothing.  Score outputs only (not class-index models).
            prior: for RGB + mask models (``info.input_prior``), the 4th channel for this
                frame (default the Segmenter's ``prior``); e.g. the previous frame's
                :meth:`foreground_probability`.

        Raises:
            FrameError: the frame is None, empty, not uint8 or has an unsupported shape.
            InvalidArgumentError: ``score_filter`` on a class-index model or returning a
                wrong shape.
        """
        self._check_score_filter(score_filter)
        prior_value = self._check_prior(prior)
        with self._lock:
            session = self._require_open()
            image, color, size = self._frame_input(frame)
            t0 = time.perf_counter()
            self._release_pending()
            buffer = session.input_buffer()
            try:
                geometry = self._preprocess(image, color, buffer, prior_value)
            finally:
                del buffer  # the backend refuses to invoke while a view of its tensors is alive
            t1 = time.perf_counter()
            session.invoke()
            t2 = time.perf_counter()
            return self._finish_locked(session.output_buffer(), image, color, size, geometry, score_filter,
                                       pre_ms=(t1 - t0) * 1e3, infer_ms=(t2 - t1) * 1e3, owned=session.output_owned)

    # -- the three steps of run(), for pipelines -------------------------------------

    def prepare(self, frame: FrameLike, *, prior: Optional[PriorLike] = None) -> PreparedFrame:
        """Preprocess a frame into a new model-input array without touching the interpreter.

        Safe to call from another thread while this Segmenter (or a replica) runs a model:
        a pipeline prepares frame *k+1* while frame *k* is inferred.  Same arguments and
        errors as :meth:`run`'s ``frame`` and ``prior``.
        """
        self._require_open()
        prior_value = self._check_prior(prior)
        image, color, size = self._frame_input(frame)
        t0 = time.perf_counter()
        tensor = np.empty(self._info.input_shape, dtype=np.dtype(self._info.input_dtype))
        geometry = self._preprocess(image, color, tensor, prior_value)
        return PreparedFrame(tensor, image, color, size, geometry, (time.perf_counter() - t0) * 1e3)

    def infer(self, prepared: PreparedFrame) -> ModelOutput:
        """Run the model on a :meth:`prepare`-d frame; returns a copy of the raw output.

        ``prepared`` may come from any Segmenter on the same model and options (e.g. the
        one this was :meth:`replicate`-d from), so several replicas can infer in parallel.
        """
        if not isinstance(prepared, PreparedFrame):
            raise InvalidTypeError(f"prepared: expected a PreparedFrame from Segmenter.prepare(), got {type(prepared).__name__}")
        with self._lock:
            session = self._require_open()
            buffer = session.input_buffer()
            try:
                if buffer.shape != prepared.tensor.shape or buffer.dtype != prepared.tensor.dtype:
                    raise InvalidArgumentError(
                        f"prepared: tensor {prepared.tensor.dtype}{list(prepared.tensor.shape)} does not fit this model's "
                        f"input {buffer.dtype}{list(buffer.shape)}; prepare frames with a Segmenter on the same model"
                    )
                np.copyto(buffer, prepared.tensor)
            finally:
                del buffer
            self._release_pending()
            t0 = time.perf_counter()
            session.invoke()
            t1 = time.perf_counter()
            out = session.output_buffer()
            try:
                return ModelOutput(np.array(out, copy=True), (t1 - t0) * 1e3)
            finally:
                del out

    def finish(self, prepared: PreparedFrame, output: ModelOutput, *,
               score_filter: Optional[ScoreFilter] = None) -> SegmentationResult:
        """Turn an :meth:`infer` output into the :class:`SegmentationResult` of ``prepared``.

        Does not touch the interpreter.  With a stateful ``score_filter`` (smoothing), call it
        in frame order.
        """
        if not isinstance(prepared, PreparedFrame):
            raise InvalidTypeError(f"prepared: expected a PreparedFrame from Segmenter.prepare(), got {type(prepared).__name__}")
        if not isinstance(output, ModelOutput):
            raise InvalidTypeError(f"output: expected a ModelOutput from Segmenter.infer(), got {type(output).__name__}")
        self._check_score_filter(score_filter)
        with self._lock:
            self._require_open()
            if score_filter is not None:
                self._release_pending()  # the filter's state is about to change
            return self._finish_locked(output.tensor, prepared.image, prepared.color, prepared.size, prepared.geometry,
                                       score_filter, pre_ms=prepared.pre_ms, infer_ms=output.infer_ms, owned=True)

    def replicate(self, *, num_threads: Optional[int] = None) -> "Segmenter":
        """A new Segmenter on the same model with the same options and its own interpreter
        (``num_threads`` as given, default this one's).  Replicas run in parallel; close them
        when done.  What loading logs (a delegate skipped, XNNPACK falling back, a normalization
        assumed) was said when this one loaded: for the replica it goes to DEBUG."""
        threads = self._require_open().num_threads if num_threads is None else num_threads
        options = self._options.replace(num_threads=threads)
        with demoted_logs():
            return Segmenter(options=options)

    def replicas(self, count: int, num_threads: int) -> List["Segmenter"]:
        """``count`` replicas with ``num_threads`` threads each, kept for reuse by later
        pipelines and closed with this Segmenter."""
        with self._lock:
            self._require_open()
            pool = self._replica_pool.setdefault(num_threads, [])
        while len(pool) < count:  # opened outside the lock: it takes tens of milliseconds
            pool.append(self.replicate(num_threads=num_threads))
        return pool[:count]

    # -- internals -------------------------------------------------------------------

    def _frame_input(self, frame: FrameLike) -> Tuple[np.ndarray, str, Tuple[int, int]]:
        """The frame as a uint8 array, its channel order and the size of the mask to make."""
        image, color = _as_frame(frame, self._color)
        return image, color, self._output_size or (int(image.shape[0]), int(image.shape[1]))

    def _check_score_filter(self, score_filter: Optional[ScoreFilter]) -> None:
        if score_filter is not None and not callable(score_filter):
            raise InvalidTypeError(f"score_filter: expected a callable, got {type(score_filter).__name__}")
        if score_filter is not None and self._info.output_kind == "class_index":
            raise InvalidArgumentError("score_filter: this model outputs class indices, not scores, so there is nothing to filter")

    def _check_prior(self, prior: Optional[PriorLike]) -> Union[float, np.ndarray]:
        if prior is None:
            return self._prior
        if not self._info.input_prior:
            raise InvalidArgumentError("prior: this model has no mask input channel (info.input_prior is False)")
        return check_prior(prior)

    def _preprocess(self, image: np.ndarray, color: str, dst: np.ndarray,
                    prior: Union[float, np.ndarray] = 0.0) -> ops.InputGeometry:
        if not self._info.input_prior:
            return ops.preprocess(
                image, dst, color=color, model_color=self._model_color, layout=self._info.input_layout,
                interpolation=self._interpolation, fit=self._fit, pad_value=0.0, mean=self._info.mean,
                std=self._info.std, **self._in_q,
            )
        from ._prior import write_prior_input

        return write_prior_input(self, image, color, dst, prior)

    def foreground_probability(self, result: SegmentationResult) -> np.ndarray:
        """``result``'s foreground probability (1 - P(class 0)) as an ``HxW`` float32 map at the
        mask's size: the ``prior`` of the next frame for RGB + mask models (class-index models
        give 0/1)."""
        if not isinstance(result, SegmentationResult):
            raise InvalidTypeError(f"result: expected a SegmentationResult, got {type(result).__name__}")
        if not result.has_scores:
            return (result.mask != 0).astype(np.float32)
        return np.clip(1.0 - result.confidence(0), 0.0, 1.0).astype(np.float32, copy=False)

    def _finish_locked(self, out: np.ndarray, image: np.ndarray, color: str, size: Tuple[int, int],
                       geometry: ops.InputGeometry, score_filter: Optional[ScoreFilter], *,
                       pre_ms: float, infer_ms: float, owned: bool) -> SegmentationResult:
        t0 = time.perf_counter()
        try:
            mask, scores, layout, scale, zp = self._postprocess(out, size, geometry, score_filter)
        except BaseException as exc:
            # The traceback's frames hold views of the output buffer: drop them so the
            # next run() can invoke (this frame is still executing, so clear_frames
            # skips it: drop its own view by hand).
            traceback.clear_frames(exc.__traceback__)
            out = None  # noqa: F841
            raise
        t1 = time.perf_counter()
        result = SegmentationResult(
            mask,
            class_names=self._info.class_names,
            palette=self._palette,
            timings={"pre": pre_ms, "infer": infer_ms, "post": (t1 - t0) * 1e3},
            frame=image,
            color=color,
            scores=scores,
            scores_layout=layout,
            scores_scale=scale,
            scores_zero_point=zp,
            output_kind=self._info.output_kind,
            geometry=geometry,
        )
        if scores is not None and (score_filter is not None or not owned):
            # scores still live in the runtime's buffer (or the filter's state): copied
            # into the result only if it is alive when they are about to change; until
            # then the result reads them under this Segmenter's lock.
            result._attach(self._lock)
            self._pending.add(result)
        return result

    def _filtered(self, view: np.ndarray, score_filter: ScoreFilter) -> Tuple[np.ndarray, float, int]:
        filtered = score_filter(view, self._scale, self._zp)
        if not isinstance(filtered, np.ndarray):
            raise InvalidTypeError(f"score_filter: must return a numpy array, returned {type(filtered).__name__}")
        if filtered.shape != view.shape:
            raise InvalidArgumentError(f"score_filter: returned shape {filtered.shape}, expected {view.shape}")
        if filtered.dtype == view.dtype:
            return filtered, self._scale, self._zp
        if filtered.dtype in (np.float32, np.float16):
            return filtered, 1.0, 0  # dequantised by the filter
        raise InvalidTypeError(
            f"score_filter: returned dtype {filtered.dtype}; expected the output's {view.dtype} or float32/float16"
        )

    def _postprocess(self, out: np.ndarray, size: Tuple[int, int], geometry: ops.InputGeometry,
                     score_filter: Optional[ScoreFilter]):
        if tuple(out.shape) != self._info.output_shape:
            # Models with a resizable input may only know their output shape after invoke.
            self._info = self._info.with_shapes(self._info.input_shape, out.shape)
        if self._info.output_flattened:
            out = out.reshape(self._info.output_map_shape)  # a view: [1, h*w*C] -> (1, h, w, C)
        kind = self._info.output_kind
        oh, ow = self._info.output_size
        if kind == "class_index":
            mask = ops.postprocess(out.reshape(oh, ow), size, kind="labels", geometry=geometry)
            return mask, None, "nhwc", 1.0, 0
        if kind in ("binary_probability", "binary_logit"):
            hw = out.reshape(oh, ow)
            scale, zp = self._scale, self._zp
            if score_filter is not None:
                filtered, scale, zp = self._filtered(hw[:, :, None], score_filter)
                hw = filtered[:, :, 0]
            mask = ops.postprocess(hw, size, kind="score", mode=self._upsample, geometry=geometry,
                                   threshold=self._threshold, scale=scale, zero_point=zp)
            return mask, hw, "nhwc", scale, zp
        layout = self._info.output_layout
        if score_filter is not None:
            view = np.transpose(out[0], (1, 2, 0)) if layout == "nchw" else out[0]
            scores, scale, zp = self._filtered(view, score_filter)
            layout = "nhwc"
        else:
            scores, scale, zp = out, self._scale, self._zp
        mask = ops.postprocess(scores, size, kind="logits", layout=layout, mode=self._upsample, geometry=geometry)
        return mask, scores, layout, scale, zp

    def run_batch(self, frames: Sequence[FrameLike], *, score_filter: Optional[ScoreFilter] = None) -> List[SegmentationResult]:
        """:meth:`run` on each frame of a list, in order (the model runs batch 1).

        For throughput over many frames use ``seg.stream(frames)`` instead: it overlaps
        preprocessing, several interpreters and postprocessing (see :mod:`mtkseg.video`).
        """
        if isinstance(frames, (str, bytes, np.ndarray)) or not hasattr(frames, "__iter__"):
            raise InvalidTypeError(
                f"frames: expected a list of frames, got {type(frames).__name__} (use run() for a single frame)"
            )
        return [self.run(f, score_filter=score_filter) for f in frames]

    def stream(self, source: Any, *, options: "Optional[StreamOptions]" = None, **kwargs: Any) -> "VideoStream":
        """Segment a video source frame by frame: :func:`mtkseg.video.stream` on this Segmenter.

        ``source``: a file, camera index, URL, image folder, glob or iterable of frames;
        ``options``: a :class:`~mtkseg.StreamOptions`, or its fields as keyword arguments
        (``smoothing``, ``every``, ``max_frames``, ``workers``...)."""
        from .video import stream

        return stream(self, source, options=options, **kwargs)

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Release the interpreter (results keep their masks and scores)."""
        with self._lock:
            if self._session is not None:
                self._release_pending()
                self._session.close()
                self._session = None
            pools, self._replica_pool = self._replica_pool, {}
        for pool in pools.values():
            for replica in pool:
                replica.close()

    def __enter__(self) -> "Segmenter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._session is None else f"{self._session.backend}, {self._session.delegate}"
        name = self._info.path or "<bytes>"
        return (f"Segmenter({name!r}, input={self._info.input_size[0]}x{self._info.input_size[1]}, "
                f"classes={self._info.num_classes}, {state})")
