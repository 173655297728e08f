"""Type stub of mtkseg._core, the native kernels (csrc/bindings.cpp).  Use :mod:`mtkseg.ops`
for the documented API: it normalises arguments and calls these.  Every function validates
its arguments again and raises mtkseg.errors.InvalidArgumentError / InvalidTypeError."""

import enum
from typing import List, Tuple

import numpy as np

__version__: str

class PixelFormat(enum.Enum):
    """Pixel layout of a frame (source) or of the model input (destination)."""

    GRAY = 0
    RGB = 1
    BGR = 2
    RGBA = 3
    BGRA = 4
    @property
    def value(self) -> int: ...

class Layout(enum.Enum):
    """Tensor layout of the model input/output."""

    NHWC = 0
    NCHW = 1
    @property
    def value(self) -> int: ...

class Interpolation(enum.Enum):
    """How frames are resized to the model input."""

    LINEAR = 0
    AREA = 1
    @property
    def value(self) -> int: ...

class Mode(enum.Enum):
    """How scores/masks are resized to the output size."""

    NEAREST = 0
    BILINEAR = 1
    @property
    def value(self) -> int: ...

Crop = Tuple[int, int, int, int]

def num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def simd_level() -> str: ...
def simd_levels() -> List[str]: ...
def _set_simd_level(name: str) -> str: ...
def preprocess(
    frame: np.ndarray,
    out: np.ndarray,
    src_format: PixelFormat,
    dst_format: PixelFormat,
    layout: Layout,
    interpolation: Interpolation,
    letterbox: bool,
    pad: Tuple[float, float, float],
    mean: Tuple[float, float, float],
    std: Tuple[float, float, float],
    scale: float,
    zero_point: int,
) -> Tuple[int, int, int, int]: ...
def argmax_resize(logits: np.ndarray, out: np.ndarray, crop: Crop, mode: Mode) -> None: ...
def labels_resize(labels: np.ndarray, out: np.ndarray, crop: Crop) -> None: ...
def threshold_resize(scores: np.ndarray, out: np.ndarray, crop: Crop, mode: Mode, threshold: float) -> None: ...
def confidence_resize(
    logits: np.ndarray,
    out: np.ndarray,
    crop: Crop,
    mode: Mode,
    class_index: int,
    scale: float,
    zero_point: int,
    softmax: bool,
) -> None: ...
def confusion_matrix(gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore_index: int, out: np.ndarray) -> None: ...
def overlay(frame: np.ndarray, mask: np.ndarray, palette: np.ndarray, alpha: float, out: np.ndarray) -> None: ...
def colorize(mask: np.ndarray, palette: np.ndarray, out: np.ndarray) -> None: ...
def ema_update(
    state: np.ndarray, logits: np.ndarray, momentum: float, scale: float, zero_point: int, init: bool
) -> None: ...
def mode3(a: np.ndarray, b: np.ndarray, c: np.ndarray, out: np.ndarray) -> None: ...
