"""Fast image operations of the native core, with argument normalisation.

These wrappers turn friendly arguments (colour names, sizes, geometry objects) into the
flat calls of :mod:`mtkseg._core`.  The native code validates every argument again, raises
:class:`~mtkseg.errors.InvalidArgumentError` / :class:`~mtkseg.errors.InvalidTypeError`
and releases the GIL while it computes.

Conventions:
    * Frames are ``uint8`` arrays ``HxWx3`` (BGR or RGB), ``HxWx4`` (BGRA/RGBA) or ``HxW`` gray.
    * Sizes are ``(height, width)``, like numpy shapes.
    * Resizing follows OpenCV's geometry: ``linear`` = ``INTER_LINEAR`` (half-pixel centres),
      ``area`` = ``INTER_AREA``, ``nearest`` = ``INTER_NEAREST`` (``floor(x * src / dst)``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from . import _validate as _v
from .errors import InvalidArgumentError, InvalidTypeError

__all__ = [
    "InputGeometry",
    "preprocess",
    "postprocess",
    "confidence",
    "confusion_matrix",
    "overlay",
    "colorize",
    "ema_update",
    "mode3",
    "get_num_threads",
    "set_num_threads",
    "check_size",
    "MAX_OUTPUT_SIDE",
    "MAX_ELEMENTS",
]

_PF = _core.PixelFormat
_SRC_FORMATS = {"gray": _PF.GRAY, "rgb": _PF.RGB, "bgr": _PF.BGR, "rgba": _PF.RGBA, "bgra": _PF.BGRA}
_DST_FORMATS = {"gray": _PF.GRAY, "rgb": _PF.RGB, "bgr": _PF.BGR}
_MODES = {"nearest": _core.Mode.NEAREST, "bilinear": _core.Mode.BILINEAR}
_LAYOUTS = {"nhwc": _core.Layout.NHWC, "nchw": _core.Layout.NCHW}
Size = Tuple[int, int]
Triple = Union[float, Sequence[float]]


@dataclass(frozen=True)
class InputGeometry:
    """Where a frame landed inside the model input, so the output can be mapped back.

    ``x0, y0, width, height`` is the region of the model input covered by the resized frame
    (the whole input for ``fit="stretch"``; a centred band for ``fit="letterbox"``).
    """

    x0: int
    y0: int
    width: int
    height: int
    input_size: Size
    frame_size: Size

    @property
    def crop(self) -> Tuple[int, int, int, int]:
        """``(x0, y0, width, height)`` in model-input pixels."""
        return (self.x0, self.y0, self.width, self.height)

    def scale_crop(self, output_size: Size) -> Tuple[int, int, int, int]:
        """The same region in an output tensor of ``output_size`` (for models whose output
        is smaller than their input, e.g. stride-8 heads)."""
        ih, iw = self.input_size
        oh, ow = output_size
        x0 = int(round(self.x0 * ow / iw))
        y0 = int(round(self.y0 * oh / ih))
        x1 = int(round((self.x0 + self.width) * ow / iw))
        y1 = int(round((self.y0 + self.height) * oh / ih))
        return (x0, y0, max(1, x1 - x0), max(1, y1 - y0))


def _require_array(value: object, name: str) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise InvalidTypeError(f"{name}: expected a numpy array, got {type(value).__name__}")
    return value


_triple = _v.triple
_choice = _v.choice
#: Largest height or width of a mask/map these functions (and ``Segmenter(output_size=)``) allocate.
MAX_OUTPUT_SIDE = _v.MAX_OUTPUT_SIDE
#: Most elements one array may have: the native kernels index with int32.
MAX_ELEMENTS = _v.MAX_ELEMENTS
check_size = _v.size
_size = check_size


def _frame_format(frame: np.ndarray, color: str) -> str:
    """Pixel format of a frame given the caller's colour order ("bgr" or "rgb", validated) for
    3-channel images."""
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return "gray"
    if frame.ndim == 3 and frame.shape[2] == 3:
        return color
    if frame.ndim == 3 and frame.shape[2] == 4:
        return color + "a"
    raise InvalidArgumentError(
        f"frame: expected HxW, HxWx1, HxWx3 or HxWx4 uint8, got shape {frame.shape}"
    )


@functools.lru_cache(maxsize=64)
def _preprocess_options(color: str, model_color: str, layout: str, interpolation: str, fit: str) -> tuple:
    """preprocess()'s string options, validated, as (colour lower-cased, native model colour,
    native layout, is NCHW, letterbox flag, native interpolation or None for "auto")."""
    color = _choice(color, ("bgr", "rgb"), "color")
    tensor_layout = _choice(layout, _LAYOUTS, "layout")
    dst_color = _choice(model_color, {"rgb": _PF.RGB, "bgr": _PF.BGR}, "model_color")
    fit_code = _choice(fit, {"stretch": 0, "letterbox": 1}, "fit")
    method = _choice(interpolation, {"auto": None, "linear": _core.Interpolation.LINEAR,
                                     "area": _core.Interpolation.AREA}, "interpolation")
    return color, dst_color, tensor_layout, tensor_layout == _core.Layout.NCHW, fit_code, method


def preprocess(
    frame: np.ndarray,
    out: np.ndarray,
    *,
    color: str = "bgr",
    model_color: str = "rgb",
    layout: str = "nhwc",
    interpolation: str = "auto",
    fit: str = "stretch",
    pad_value: Triple = 0.0,
    mean: Triple = 0.0,
    std: Triple = 255.0,
    scale: Optional[float] = None,
    zero_point: Optional[int] = None,
) -> InputGeometry:
    """Resize, reorder, normalise and (for int8/uint8) quantise a frame into ``out``.

    Args:
        frame: uint8 image ``HxW``, ``HxWx1``, ``HxWx3`` or ``HxWx4``; any strides.
        out: the model input, ``(1, h, w, c)`` / ``(h, w, c)`` (``layout="nhwc"``) or
            ``(1, c, h, w)`` (``layout="nchw"``) with ``c`` 1 or 3; float32, float16, int8 or
            uint8.  Usually the interpreter's own input buffer.
        color: channel order of 3/4-channel frames, ``"bgr"`` (OpenCV) or ``"rgb"``.
        model_color: channel order the model expects, ``"rgb"`` or ``"bgr"`` (ignored for
            1-channel models, which get ITU-R BT.601 luma like ``cv2.COLOR_BGR2GRAY``).
        interpolation: ``"linear"`` (OpenCV INTER_LINEAR), ``"area"`` (INTER_AREA, downscaling
            only) or ``"auto"`` (area when the frame is at least twice the size of the region
            it is resized into on both axes, else linear).
        fit: ``"stretch"`` to fill the input, or ``"letterbox"`` to keep the aspect ratio and
            pad with ``pad_value`` (pixel units, per model channel): the frame is scaled by
            ``min(h / fh, w / fw)``, each side rounded half up (at least 1 px), and centred,
            the odd padding pixel going to the bottom/right.
        mean, std: model value = (pixel - mean) / std, per model channel, pixel units
            (defaults map 0..255 to 0..1).
        scale, zero_point: quantisation of int8/uint8 inputs: q = round(value / scale) +
            zero_point, saturated.  Required for int8/uint8 ``out``.  Where q is the pixel
            value plus a constant (e.g. the default mean/std with scale 1/255: uint8 q = pixel,
            int8 q = pixel - 128), ``"linear"`` resizes of 3-channel frames into NHWC inputs
            run in fixed point, like OpenCV's INTER_LINEAR for uint8: each value is the
            float64 bilinear value rounded or 1 off it (measured: at most 0.15 % of the values
            away from exact .5 ties), the same on every CPU.

    Returns:
        The :class:`InputGeometry` needed to map model outputs back to the frame.
    """
    _require_array(frame, "frame")
    _require_array(out, "out")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    # Cached for per-frame calls (strings only: anything else is validated, and refused, uncached).
    strings = type(color) is str and type(model_color) is str and type(layout) is str and \
        type(interpolation) is str and type(fit) is str
    resolve = _preprocess_options if strings else _preprocess_options.__wrapped__
    color, dst_color, tensor_layout, nchw, fit_code, method = resolve(color, model_color, layout, interpolation, fit)
    src_format = _SRC_FORMATS[_frame_format(frame, color)]
    channels = (out.shape[-3] if nchw else out.shape[-1]) if out.ndim in (3, 4) else 0
    dst_format = _DST_FORMATS["gray"] if channels == 1 else dst_color
    if method is None:
        h = (out.shape[-2] if nchw else out.shape[-3]) if out.ndim in (3, 4) else 0
        w = (out.shape[-1] if nchw else out.shape[-2]) if out.ndim in (3, 4) else 0
        if fit_code and h > 0 and w > 0 and frame.shape[0] > 0 and frame.shape[1] > 0:
            # The frame is resized into the letterbox band, not the whole input.
            # rounded half up, as the native kernel (std::lround) sizes the band
            s = min(w / frame.shape[1], h / frame.shape[0])
            h = min(h, max(1, int(math.floor(frame.shape[0] * s + 0.5))))
            w = min(w, max(1, int(math.floor(frame.shape[1] * s + 0.5))))
        area = h > 0 and w > 0 and frame.shape[0] >= 2 * h and frame.shape[1] >= 2 * w
        method = _core.Interpolation.AREA if area else _core.Interpolation.LINEAR
    quantised = out.dtype.char in "bB"  # int8, uint8
    if quantised and (scale is None or zero_point is None):
        raise InvalidArgumentError(f"scale/zero_point: required for a quantised {out.dtype} input tensor")
    x0, y0, rw, rh = _core.preprocess(
        frame,
        out,
        src_format,
        dst_format,
        tensor_layout,
        method,
        bool(fit_code),
        _triple(pad_value, "pad_value"),
        _triple(mean, "mean"),
        _triple(std, "std"),
        float(scale) if scale is not None else 1.0,
        int(zero_point) if zero_point is not None else 0,
    )
    in_h = out.shape[-2] if nchw else out.shape[-3]
    in_w = out.shape[-1] if nchw else out.shape[-2]
    return InputGeometry(x0, y0, rw, rh, (int(in_h), int(in_w)), (int(frame.shape[0]), int(frame.shape[1])))


def _as_hwc(output: np.ndarray, layout: str) -> np.ndarray:
    """A (h, w, C) view of a (1, h, w, C) / (h, w, C) / (1, C, h, w) / (C, h, w) tensor."""
    nchw = _choice(layout, _LAYOUTS, "layout") == _core.Layout.NCHW
    if output.ndim == 4:
        if output.shape[0] != 1:
            raise InvalidArgumentError(f"output: batch size must be 1, got shape {output.shape}")
        output = output[0]
    if output.ndim != 3:
        raise InvalidArgumentError(f"output: expected (1, h, w, C), (h, w, C) or NCHW logits, got shape {output.shape}")
    return np.transpose(output, (1, 2, 0)) if nchw else output


def _as_hw(output: np.ndarray) -> np.ndarray:
    """A (h, w) view of a (1, h, w, 1) / (1, h, w) / (h, w, 1) / (h, w) tensor."""
    squeezed = output
    if squeezed.ndim == 4 and squeezed.shape[0] == 1 and squeezed.shape[3] == 1:
        squeezed = squeezed[0, :, :, 0]
    elif squeezed.ndim == 3 and squeezed.shape[0] == 1:
        squeezed = squeezed[0]
    elif squeezed.ndim == 3 and squeezed.shape[2] == 1:
        squeezed = squeezed[:, :, 0]
    if squeezed.ndim != 2:
        raise InvalidArgumentError(f"output: expected a single-channel (1, h, w[, 1]) tensor, got shape {output.shape}")
    return squeezed


def _crop_for(shape_hw: Tuple[int, int], geometry: Optional[Union[InputGeometry, Sequence[int]]]) -> Tuple[int, int, int, int]:
    h, w = shape_hw
    if geometry is None:
        return (0, 0, w, h)
    if isinstance(geometry, InputGeometry):
        if geometry.input_size == (h, w):
            return geometry.crop
        return geometry.scale_crop((h, w))
    crop = tuple(int(v) for v in geometry)
    if len(crop) != 4:
        raise InvalidArgumentError(f"geometry: expected an InputGeometry or (x0, y0, w, h), got {geometry!r}")
    return crop  # type: ignore[return-value]


def _mask_out(out: Optional[np.ndarray], size: Size) -> np.ndarray:
    if out is None:
        return np.empty(size, dtype=np.uint8)
    _require_array(out, "out")
    if out.shape != size:
        raise InvalidArgumentError(f"out: expected shape {size}, got {out.shape}")
    return out


def postprocess(
    output: np.ndarray,
    size: Optional[Sequence[int]] = None,
    *,
    kind: str = "auto",
    layout: str = "nhwc",
    mode: str = "nearest",
    geometry: Optional[Union[InputGeometry, Sequence[int]]] = None,
    threshold: float = 0.5,
    scale: float = 1.0,
    zero_point: int = 0,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Turn a model output into a ``uint8`` class mask of ``size`` (height, width).

    Args:
        output: the output tensor, read in place.  ``kind="logits"``: ``(1, h, w, C)`` /
            ``(h, w, C)`` scores (float32/float16/int8/uint8; raw quantised values are
            compared directly) or NCHW with ``layout="nchw"``; ``kind="labels"``: class
            indices ``(1, h, w)`` / ``(h, w)`` / ``(1, h, w, 1)`` int32/int64/uint8/int8;
            ``kind="score"``: one channel of probability or logit, thresholded into 2 classes.
            ``"auto"`` picks labels for int32/int64 or 2-D uint8, score for one channel,
            logits otherwise.
        size: output size ``(height, width)``; default the tensor's own size.
        mode: ``"nearest"`` (argmax at model resolution, then INTER_NEAREST) or
            ``"bilinear"`` (scores interpolated like INTER_LINEAR, argmax per output pixel).
            Ignored for labels, which always use nearest.
        geometry: the :class:`InputGeometry` returned by :func:`preprocess` (or a crop
            ``(x0, y0, w, h)`` in output pixels); a letterbox band is cut away first.
        threshold: for ``kind="score"``: class 1 where the dequantised score > threshold.
        scale, zero_point: quantisation of the output tensor (used by ``kind="score"``).
        out: optional ``uint8`` array of ``size`` to write into.

    Ties between classes go to the lowest class index, and a NaN score wins its pixel (the
    first NaN class where there are several), both as ``np.argmax`` does for float32 and
    float16 logits.  With ``mode="bilinear"`` the rule applies to the interpolated scores, so
    a NaN also claims the output pixels interpolated from it.

    Raises:
        InvalidArgumentError: a bad shape, crop or mode, or a ``size`` beyond
            :data:`MAX_OUTPUT_SIDE` per side or :data:`MAX_ELEMENTS` pixels.
        InvalidTypeError: an unsupported dtype, or a bool in ``size``.
    """
    _require_array(output, "output")
    kind = kind.lower() if isinstance(kind, str) else kind
    if kind == "auto":
        integer = output.dtype in (np.int32, np.int64)
        single = output.ndim == 2 or (output.ndim >= 3 and output.shape[-1] == 1 and layout == "nhwc") or (
            output.ndim == 3 and output.shape[0] == 1 and layout == "nhwc" and output.dtype not in (np.float32, np.float16)
        )
        if integer or (output.dtype == np.uint8 and output.ndim == 2):
            kind = "labels"
        elif single:
            kind = "score"
        else:
            kind = "logits"
    if kind == "logits":
        hwc = _as_hwc(output, layout)
        target = _size(size, "size") if size is not None else (hwc.shape[0], hwc.shape[1])
        mask = _mask_out(out, target)
        _core.argmax_resize(hwc, mask, _crop_for(hwc.shape[:2], geometry), _choice(mode, _MODES, "mode"))
        return mask
    if kind == "labels":
        hw = _as_hw(output)
        if hw.dtype == np.int8:  # int8 class indices: valid ones read the same as uint8
            if hw.size and int(hw.min()) < 0:
                raise InvalidArgumentError(f"output: int8 class index {int(hw.min())} is negative; expected 0..127")
            hw = hw.view(np.uint8)
        target = _size(size, "size") if size is not None else hw.shape
        mask = _mask_out(out, target)
        _core.labels_resize(hw, mask, _crop_for(hw.shape, geometry))
        return mask
    if kind == "score":
        hw = _as_hw(output)
        target = _size(size, "size") if size is not None else hw.shape
        mask = _mask_out(out, target)
        if not np.isfinite(scale) or scale <= 0:
            raise InvalidArgumentError(f"scale: must be a positive finite number, got {scale!r}")
        raw_threshold = float(threshold) / float(scale) + int(zero_point)
        _core.threshold_resize(hw, mask, _crop_for(hw.shape, geometry), _choice(mode, _MODES, "mode"), raw_threshold)
        return mask
    raise InvalidArgumentError(f"kind: expected 'auto', 'logits', 'labels' or 'score', got {kind!r}")


def confidence(
    output: np.ndarray,
    size: Optional[Sequence[int]] = None,
    class_index: Optional[int] = None,
    *,
    layout: str = "nhwc",
    mode: str = "bilinear",
    geometry: Optional[Union[InputGeometry, Sequence[int]]] = None,
    scale: float = 1.0,
    zero_point: int = 0,
    softmax: bool = True,
) -> np.ndarray:
    """Per-pixel confidence as float32 ``size``: the softmax probability of ``class_index``,
    or of the winning class when ``class_index`` is None.  Quantised outputs are dequantised
    with ``scale``/``zero_point``; set ``softmax=False`` for models that already output
    probabilities."""
    _require_array(output, "output")
    hwc = _as_hwc(output, layout)
    target = _size(size, "size") if size is not None else (hwc.shape[0], hwc.shape[1])
    if class_index is not None and (int(class_index) != class_index or class_index < 0):
        raise InvalidArgumentError(f"class_index: expected a non-negative integer, got {class_index!r}")
    result = np.empty(target, dtype=np.float32)
    _core.confidence_resize(
        hwc,
        result,
        _crop_for(hwc.shape[:2], geometry),
        _choice(mode, _MODES, "mode"),
        -1 if class_index is None else int(class_index),
        float(scale),
        int(zero_point),
        bool(softmax),
    )
    return result


def confusion_matrix(
    gt: np.ndarray,
    pred: np.ndarray,
    num_classes: int,
    *,
    ignore_index: Optional[int] = 255,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Count ``(gt, pred)`` label pairs into an int64 ``(num_classes, num_classes)`` matrix.

    Rows are ground truth, columns predictions.  Pixels whose gt equals ``ignore_index`` are
    skipped; any other label outside ``[0, num_classes)`` raises.  ``ignore_index=None`` means
    no ignore index: every pixel is counted, so a -1 (or 255) label is an error.  With ``out``
    the counts are added to it (it is left untouched when an error is raised).
    """
    _require_array(gt, "gt")
    _require_array(pred, "pred")
    ignore = check_ignore_index(ignore_index)
    num_classes = _v.integer(num_classes, "num_classes", minimum=1, maximum=4096, expected="an int from 1 to 4096",
                             type_error=InvalidTypeError)
    if out is None:
        out = np.zeros((int(num_classes), int(num_classes)), dtype=np.int64)
    else:
        _require_array(out, "out")
    _core.confusion_matrix(
        np.ascontiguousarray(gt),
        np.ascontiguousarray(pred),
        int(num_classes),
        ignore,
        out,
    )
    return out


#: What the native kernel gets for ``ignore_index=None``: outside the int32 range of labels,
#: so it matches no pixel.
_NO_IGNORE = -(2**63)


def check_ignore_index(ignore_index: object, name: str = "ignore_index") -> int:
    """``ignore_index`` validated (an int label value, or None for none) as the native value."""
    if ignore_index is None:
        return _NO_IGNORE
    if not _v.is_int(ignore_index):
        raise InvalidTypeError(f"{name}: expected an int label value or None (no ignore index), got "
                               f"{type(ignore_index).__name__}")
    return _v.integer(ignore_index, name, minimum=-(2**31), maximum=2**31 - 1,
                      expected="a label value in the int32 range or None")


#: Masks are uint8 class indices, so a palette has at most one colour per value.
MAX_PALETTE = 256


def _has_bool(value: object) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype == np.bool_ or (value.dtype == object and any(_has_bool(v) for v in value.ravel()))
    if isinstance(value, (list, tuple)):
        return any(_has_bool(v) for v in value)
    return False


def check_palette(palette: object, name: str = "palette") -> np.ndarray:
    """``palette`` as a C-contiguous ``(C, 3)`` uint8 array, ``1 <= C <= 256``.

    Raises:
        InvalidTypeError: a colour holds booleans (``True`` is not a colour value).
        InvalidArgumentError: not ``(C, 3)``, more than 256 colours, or values outside 0..255.
    """
    if _has_bool(palette):
        raise InvalidTypeError(f"{name}: colours must be integers in 0..255, got booleans (True/False)")
    arr = np.asarray(palette)
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 1:
        raise InvalidArgumentError(f"{name}: expected (C, 3) colours, got shape {arr.shape}")
    if arr.shape[0] > MAX_PALETTE:
        raise InvalidArgumentError(
            f"{name}: {arr.shape[0]} colours; masks are uint8, so at most {MAX_PALETTE} (one per class): trim it"
        )
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() > 255:
            raise InvalidArgumentError(f"{name}: colours must be integers in 0..255")
        arr = arr.astype(np.uint8)
    return np.ascontiguousarray(arr)


def _palette_array(palette: object) -> np.ndarray:
    return check_palette(palette)


def overlay(
    frame: np.ndarray,
    mask: np.ndarray,
    palette: object,
    alpha: float = 0.5,
    *,
    out: Optional[np.ndarray] = None,
    inplace: bool = False,
) -> np.ndarray:
    """Blend ``palette[mask]`` onto ``frame`` (``HxWx3`` uint8) with weight ``alpha``.

    Pixels whose class has no palette entry (e.g. 255 = void) are left unchanged.  The
    palette must be in the frame's channel order (see :func:`mtkseg.viz.palette_for`).
    ``inplace=True`` writes into ``frame`` (which must then be C-contiguous and writeable).
    """
    _require_array(frame, "frame")
    _require_array(mask, "mask")
    if inplace:
        if out is not None:
            raise InvalidArgumentError("out: cannot be combined with inplace=True")
        out = frame
    elif out is None:
        out = np.empty_like(frame, order="C") if frame.ndim == 3 else np.empty((0,), np.uint8)
    else:
        _require_array(out, "out")
    src = frame if inplace else np.ascontiguousarray(frame)
    _core.overlay(src, np.ascontiguousarray(mask), _palette_array(palette), float(alpha), out)
    return out


def colorize(mask: np.ndarray, palette: object, *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """``palette[mask]`` as an ``HxWx3`` uint8 image; classes beyond the palette are black."""
    _require_array(mask, "mask")
    if out is None:
        out = np.empty(mask.shape + (3,), dtype=np.uint8) if mask.ndim == 2 else np.empty((0,), np.uint8)
    else:
        _require_array(out, "out")
    _core.colorize(np.ascontiguousarray(mask), _palette_array(palette), out)
    return out


def ema_update(
    state: Optional[np.ndarray],
    logits: np.ndarray,
    momentum: float,
    *,
    scale: float = 1.0,
    zero_point: int = 0,
) -> np.ndarray:
    """Exponential moving average of (dequantised) scores: ``state = m * state + (1 - m) * x``.

    Pass ``state=None`` for the first frame: a float32 copy of the dequantised scores is
    returned and should be passed back next time.
    """
    _require_array(logits, "logits")
    logits = np.ascontiguousarray(logits)
    init = state is None
    if init:
        state = np.empty(logits.shape, dtype=np.float32)
    else:
        _require_array(state, "state")
    _core.ema_update(state, logits, float(momentum), float(scale), int(zero_point), init)
    return state


def mode3(a: np.ndarray, b: np.ndarray, c: np.ndarray, *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """Per-pixel majority of three uint8 masks; where all three differ, ``c`` (the newest) wins."""
    for name, arr in (("a", a), ("b", b), ("c", c)):
        _require_array(arr, name)
    if out is None:
        out = np.empty_like(a, order="C")
    else:
        _require_array(out, "out")
    _core.mode3(np.ascontiguousarray(a), np.ascontiguousarray(b), np.ascontiguousarray(c), out)
    return out


def get_num_threads() -> int:
    """Number of threads the native kernels use."""
    return int(_core.num_threads())


def set_num_threads(n: int) -> None:
    """Set the native kernels' thread count (0 = one per core)."""
    _core.set_num_threads(_v.integer(n, "n", expected="an int (0 = one thread per core)", type_error=InvalidTypeError))
