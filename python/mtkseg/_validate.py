"""Argument checks shared by every layer of mtkseg (the lowest Python layer: imports only
numpy and :mod:`mtkseg.errors`).

Each check returns the normalised value or raises a typed :mod:`mtkseg.errors` exception whose
message starts with the argument's name, says what was expected and shows what was given.
Booleans are never accepted where a number is expected (``True`` is an ``int`` in Python).
"""

from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence, Tuple, Type, TypeVar, Union, overload

import numpy as np

from .errors import InvalidArgumentError, InvalidTypeError, MtksegError

__all__ = [
    "MAX_OUTPUT_SIDE",
    "MAX_ELEMENTS",
    "is_int",
    "is_number",
    "choice",
    "integer",
    "number",
    "optional_bool",
    "triple",
    "size",
    "optional_size",
]

T = TypeVar("T")
Size = Tuple[int, int]

#: Largest height or width of a mask/map mtkseg allocates (``Segmenter(output_size=)`` included).
MAX_OUTPUT_SIDE = 65536
#: Most elements one array may have: the native kernels index with int32.
MAX_ELEMENTS = 2**31 - 1


def is_int(value: object) -> bool:
    """True for Python and numpy integers, False for booleans (``True`` is an ``int``)."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))


def is_number(value: object) -> bool:
    """True for Python/numpy integers and floats, False for booleans."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))


@overload
def choice(value: object, options: Mapping[str, T], name: str) -> T: ...
@overload
def choice(value: object, options: Sequence[str], name: str) -> str: ...


def choice(value, options, name):
    """``value`` (a name, case-insensitive) among ``options``: the lower-cased name for a
    sequence of names, the mapped value for a mapping.

    Raises:
        InvalidArgumentError: ``value`` is not a string or not one of the options.
    """
    key = value.lower() if isinstance(value, str) else None
    if key is None or key not in options:
        raise InvalidArgumentError(f"{name}: expected one of {list(options)}, got {value!r}")
    # dicts first: isinstance against typing.Mapping costs microseconds per call, on every frame
    return options[key] if type(options) is dict or isinstance(options, Mapping) else key


def integer(value: object, name: str, *, minimum: Optional[int] = None, maximum: Optional[int] = None,
            none_ok: bool = False, expected: Optional[str] = None,
            type_error: Type[MtksegError] = InvalidArgumentError) -> Optional[int]:
    """``value`` as an ``int`` in ``[minimum, maximum]`` (None passes when ``none_ok``).

    Args:
        expected: what the message says was expected (default from the bounds).
        type_error: the exception for a value that is no integer at all (a bool, a float, a
            string); out-of-range integers raise :class:`InvalidArgumentError`.
    """
    if value is None and none_ok:
        return None
    if expected is None:
        if minimum is not None and maximum is not None:
            expected = f"an integer in {minimum}..{maximum}"
        elif minimum is not None:
            expected = f"an integer >= {minimum}"
        else:
            expected = "an integer"
        expected += " or None" if none_ok else ""
    if not is_int(value):
        raise type_error(f"{name}: expected {expected}, got {value!r}")
    out = int(value)  # type: ignore[call-overload]
    if (minimum is not None and out < minimum) or (maximum is not None and out > maximum):
        raise InvalidArgumentError(f"{name}: expected {expected}, got {value!r}")
    return out


def number(value: object, name: str, *, minimum: Optional[float] = None, maximum: Optional[float] = None,
           min_open: bool = False, max_open: bool = False, none_ok: bool = False, expected: Optional[str] = None,
           type_error: Type[MtksegError] = InvalidArgumentError) -> Optional[float]:
    """``value`` as a finite ``float`` within the bounds (``*_open``: the bound itself excluded)."""
    if value is None and none_ok:
        return None
    if expected is None:
        lo = "" if minimum is None else ("(" if min_open else "[") + f"{minimum:g}"
        hi = "" if maximum is None else f"{maximum:g}" + (")" if max_open else "]")
        expected = f"a number in {lo}, {hi}" if lo and hi else (
            f"a number {'>' if min_open else '>='} {minimum:g}" if lo else
            f"a number {'<' if max_open else '<='} {maximum:g}" if hi else "a finite number")
    if not is_number(value):
        raise type_error(f"{name}: expected {expected}, got {value!r}")
    out = float(value)  # type: ignore[arg-type]
    if not math.isfinite(out) or (minimum is not None and (out <= minimum if min_open else out < minimum)) or (
            maximum is not None and (out >= maximum if max_open else out > maximum)):
        raise InvalidArgumentError(f"{name}: expected {expected}, got {value!r}")
    return out


def optional_bool(value: object, name: str) -> Optional[bool]:
    """True, False or None (automatic).

    Raises:
        InvalidTypeError: anything else (``1``, ``"yes"``).
    """
    if value is not None and not isinstance(value, bool):
        raise InvalidTypeError(f"{name}: expected True, False or None, got {type(value).__name__}")
    return value


def triple(value: object, name: str) -> Tuple[float, float, float]:
    """One finite number, or one per channel (3), as a 3-tuple of floats."""
    if type(value) is tuple and len(value) == 3 and all(type(v) is float and math.isfinite(v) for v in value):
        return value  # type: ignore[return-value]  # already the result (per-frame calls pass these)
    if type(value) is float and math.isfinite(value):
        return (value, value, value)
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name}: expected a number or 3 numbers (one per channel), got {value!r}") from None
    if arr.size == 1:
        arr = np.repeat(arr, 3)
    if arr.size != 3:
        raise InvalidArgumentError(f"{name}: expected one value or one per channel (3), got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise InvalidArgumentError(f"{name}: values must be finite, got {arr.tolist()}")
    return (float(arr[0]), float(arr[1]), float(arr[2]))


def size(value: object, name: str = "size") -> Size:
    """``value`` as a ``(height, width)`` tuple of ints, or a typed error naming ``name``.

    Each side must be a positive integer (not a bool) of at most :data:`MAX_OUTPUT_SIDE`, and
    ``height * width`` at most :data:`MAX_ELEMENTS`, so a typo cannot allocate gigabytes or
    overflow the kernels' int32 indexing.
    """
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:  # type: ignore[arg-type]
        raise InvalidArgumentError(f"{name}: expected (height, width), got {value!r}")
    if any(isinstance(v, (bool, np.bool_)) for v in value):  # type: ignore[union-attr]
        raise InvalidTypeError(f"{name}: height and width must be integers, not booleans; got {tuple(value)!r}")
    try:
        h, w = (int(v) for v in value)  # type: ignore[union-attr]
        exact = h == value[0] and w == value[1]  # type: ignore[index]
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgumentError(f"{name}: height and width must be positive integers, got {tuple(value)!r}") from None
    if h <= 0 or w <= 0 or not exact:
        raise InvalidArgumentError(f"{name}: height and width must be positive integers, got {tuple(value)!r}")
    if h > MAX_OUTPUT_SIDE or w > MAX_OUTPUT_SIDE or h * w > MAX_ELEMENTS:
        raise InvalidArgumentError(
            f"{name}: {h}x{w} is too large; each side may be at most {MAX_OUTPUT_SIDE} and height x width at most "
            f"2**31-1 pixels"
        )
    return (h, w)


def optional_size(value: object, name: str) -> Optional[Size]:
    """None, or :func:`size`."""
    return None if value is None else size(value, name)


SizeLike = Union[Sequence[int], Size]
