"""``SegmenterOptions``: everything that configures a :class:`~mtkseg.Segmenter`, declared once.

::

    opts = mtkseg.SegmenterOptions(model="model.tflite", fit="letterbox", num_threads=2)
    seg = mtkseg.Segmenter(options=opts)            # same as Segmenter("model.tflite", fit=..., ...)
    replica = seg.replicate()                        # built from seg.options

A frozen dataclass, validated once in ``__post_init__`` (names lower-cased, sizes as
``(height, width)`` tuples, the prior as a float or a float32 map), so the CLI, evaluation,
benchmarks, :meth:`Segmenter.replicate` and the Ray actors of :mod:`mtkseg.distributed` (it
pickles) all build Segmenters from the same object.  :meth:`SegmenterOptions.replace` gives a
changed copy.  What needs the model (does ``output="logits"`` exist? does the model have a prior
channel?) is checked when the Segmenter opens it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Type, TypeVar, Union

import numpy as np

from . import _validate as v
from .errors import InvalidArgumentError, InvalidTypeError
from .runtime.delegates import DelegateSpec
from .runtime.info import NormalizationArg, OutputArg, parse_normalization
from .runtime.labels import LabelsArg
from .runtime.session import check_num_threads

__all__ = ["SegmenterOptions", "OptionsBase", "ModelArg", "PriorLike", "COLORS", "FITS", "UPSAMPLES", "INTERPOLATIONS"]

#: The 4th input channel of RGB + mask models: a probability in [0, 1], or an ``HxW`` map of them.
PriorLike = Union[float, np.ndarray]
ModelArg = Union[str, "os.PathLike[str]", bytes, None]

COLORS = ("bgr", "rgb")
FITS = ("stretch", "letterbox")
UPSAMPLES = ("nearest", "bilinear")
INTERPOLATIONS = ("linear", "area", "auto")


def check_prior(value: object, name: str = "prior") -> PriorLike:
    """A validated prior: a float in [0, 1] or a finite 2-D float32 map of values in [0, 1]
    (uint8 maps are read as x/255)."""
    if isinstance(value, np.ndarray):
        if value.ndim != 2 or value.size == 0:
            raise InvalidArgumentError(f"{name}: expected an HxW map of probabilities, got shape {value.shape}")
        arr = value.astype(np.float32) / 255.0 if value.dtype == np.uint8 else value.astype(np.float32, copy=False)
        if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
            raise InvalidArgumentError(f"{name}: probabilities must lie in [0, 1] (uint8 maps are read as x/255)")
        return arr
    if not v.is_number(value):
        raise InvalidTypeError(f"{name}: expected a probability in [0, 1] or an HxW array, got {type(value).__name__}")
    if not 0.0 <= float(value) <= 1.0:  # type: ignore[arg-type]
        raise InvalidArgumentError(f"{name}: expected a probability in [0, 1], got {value!r}")
    return float(value)  # type: ignore[arg-type]


O = TypeVar("O", bound="OptionsBase")


class OptionsBase:
    """What every options dataclass offers: changed copies and construction from keywords,
    unknown names refused with the list of known ones."""

    def replace(self: O, **changes: Any) -> O:
        """A copy with ``changes`` applied (validated again).

        Raises:
            InvalidTypeError: a name that is not an option.
        """
        check_names(changes, type(self))
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    @classmethod
    def from_kwargs(cls: Type[O], base: Optional[O] = None, **kwargs: Any) -> O:
        """``base`` (default all defaults) with ``kwargs`` applied, unknown names refused."""
        check_names(kwargs, cls)
        if base is None:
            return cls(**kwargs)
        if not isinstance(base, cls):
            raise InvalidTypeError(f"options: expected a {cls.__name__}, got {type(base).__name__}")
        return dataclasses.replace(base, **kwargs) if kwargs else base  # type: ignore[type-var]

    def to_dict(self) -> Dict[str, Any]:
        """The fields as a dict (shallow: arrays and lists are shared)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True, eq=False)
class SegmenterOptions(OptionsBase):
    """How a :class:`~mtkseg.Segmenter` opens and runs a model (see its docstring for each field).

    Runtime: ``model`` (path or bytes; None or ``"default"`` = the bundled model),
    ``delegate``, ``delegate_options``, ``accelerator``, ``num_threads``, ``input_size``.
    Image: ``color``, ``fit``, ``upsample``, ``interpolation``, ``normalization``, ``labels``,
    ``output_size``, ``output``, ``output_map_size``, ``prior``.

    Raises:
        InvalidArgumentError, InvalidTypeError: a field has a wrong value or type (the message
            names the field and what it accepts).
    """

    model: ModelArg = None
    delegate: DelegateSpec = "auto"
    delegate_options: Optional[Mapping[str, object]] = None
    accelerator: Union[str, Sequence[str], None] = None
    num_threads: Optional[int] = None
    input_size: Optional[Tuple[int, int]] = None
    color: str = "bgr"
    fit: str = "stretch"
    upsample: str = "nearest"
    interpolation: str = "linear"
    normalization: NormalizationArg = None
    labels: LabelsArg = None
    output_size: Optional[Tuple[int, int]] = None
    output: OutputArg = None
    output_map_size: Optional[Tuple[int, int]] = None
    prior: PriorLike = field(default=0.0)

    def __post_init__(self) -> None:
        s = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731  (frozen)
        model = self.model
        if isinstance(model, os.PathLike):
            model = os.fspath(model)
        if isinstance(model, (bytearray, memoryview)):
            model = bytes(model)
        if model is not None and not isinstance(model, (str, bytes)):
            raise InvalidTypeError(f"model: expected a path (str or Path), bytes or None, got {type(model).__name__}")
        s("model", model)
        if self.delegate_options is not None:
            if not isinstance(self.delegate_options, Mapping):
                raise InvalidTypeError(
                    f"delegate_options: expected a mapping of option names to values, got "
                    f"{type(self.delegate_options).__name__}")
            s("delegate_options", dict(self.delegate_options))  # a copy: the caller's dict may change
        if isinstance(self.accelerator, (list, tuple)):
            s("accelerator", list(self.accelerator))
        if self.num_threads is not None:
            s("num_threads", check_num_threads(self.num_threads))
        s("input_size", v.optional_size(self.input_size, "input_size"))
        s("color", v.choice(self.color, COLORS, "color"))
        s("fit", v.choice(self.fit, FITS, "fit"))
        s("upsample", v.choice(self.upsample, UPSAMPLES, "upsample"))
        s("interpolation", v.choice(self.interpolation, INTERPOLATIONS, "interpolation"))
        parse_normalization(self.normalization)  # raises on a bad value; the model applies it
        if self.labels is not None and not isinstance(self.labels, (str, os.PathLike, list, tuple)):
            raise InvalidTypeError(
                f"labels: expected a list of class names or a label-map path, got {type(self.labels).__name__}")
        s("output_size", v.optional_size(self.output_size, "output_size"))
        if self.output is not None and (isinstance(self.output, bool) or not isinstance(self.output, (int, np.integer, str))):
            raise InvalidTypeError(f"output: expected an output index or name, got {type(self.output).__name__}")
        s("output_map_size", v.optional_size(self.output_map_size, "output_map_size"))
        s("prior", check_prior(self.prior))

    # -- comparison (prior may be an array) ------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SegmenterOptions):
            return NotImplemented
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)):
                    return False
            elif a != b:
                return False
        return True

    __hash__ = None  # type: ignore[assignment]  (holds lists, dicts and arrays)

    def __repr__(self) -> str:
        changed = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                changed.append(f"{f.name}=<{value.shape[0]}x{value.shape[1]} map>")
            elif isinstance(value, bytes):
                changed.append(f"{f.name}=<{len(value)} bytes>")
            elif value != f.default:
                changed.append(f"{f.name}={value!r}")
        return f"SegmenterOptions({', '.join(changed)})"


def check_names(kwargs: Mapping[str, Any], cls: type) -> None:
    """Refuse keyword names that are not fields of the options dataclass ``cls``."""
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in kwargs if k not in names]
    if unknown:  # a TypeError, as Python's own for an unexpected keyword argument
        raise InvalidTypeError(
            f"{', '.join(map(repr, unknown))}: not {'an option' if len(unknown) == 1 else 'options'} of "
            f"{cls.__name__}; the options are {names}"
        )
