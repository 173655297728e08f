"""Typed exceptions raised by mtkseg.

Every error mtkseg raises derives from :class:`MtksegError`, so one ``except MtksegError``
catches them all.  Argument errors also derive from the matching built-in
(``ValueError`` / ``TypeError`` / ``FileNotFoundError``) so generic code keeps working.
"""

from __future__ import annotations

__all__ = [
    "MtksegError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "FrameError",
    "ModelError",
    "ModelNotFoundError",
    "InvalidModelError",
    "UnsupportedModelError",
    "UnsupportedOpError",
    "BackendError",
    "DelegateError",
    "SourceError",
    "StreamError",
    "DataError",
    "TrainingError",
    "ExportError",
    "OutputError",
    "OutputExistsError",
    "DistributedError",
    "ReentrantCallError",
]


class MtksegError(Exception):
    """Base class of every exception raised by mtkseg."""


class InvalidArgumentError(MtksegError, ValueError):
    """An argument has a wrong value, shape or size."""


class InvalidTypeError(MtksegError, TypeError):
    """An argument has a wrong type or dtype."""


class FrameError(InvalidArgumentError):
    """A frame given to a Segmenter is unusable (None, empty, wrong dtype or channel count)."""


class ModelError(MtksegError):
    """A model could not be loaded or used."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """The model file does not exist."""


class InvalidModelError(ModelError, ValueError):
    """The file is not a valid (or is a truncated) TFLite flatbuffer."""


class UnsupportedModelError(ModelError):
    """The model is valid TFLite but its tensors are not a segmentation layout mtkseg supports."""


class UnsupportedOpError(ModelError):
    """The model uses an operator the interpreter backend does not provide."""


class BackendError(MtksegError):
    """No TFLite interpreter backend (ai-edge-litert, tflite-runtime, tensorflow) is usable."""


class DelegateError(MtksegError):
    """A requested hardware delegate or accelerator could not be loaded."""


class SourceError(MtksegError):
    """A video/image source could not be opened or read."""


class StreamError(MtksegError):
    """A stream failed part-way through processing."""


class DataError(MtksegError):
    """A dataset folder is missing files or holds inconsistent images and masks."""


class TrainingError(MtksegError):
    """Training could not start or continue (bad configuration, missing checkpoint)."""


class ExportError(MtksegError):
    """A trained model could not be converted to TFLite."""


class OutputError(MtksegError):
    """An output file cannot be written where asked: it is an input, a symbolic link, a
    folder, or its folder cannot be created or written.  The CLI exits with status 2."""


class OutputExistsError(OutputError, FileExistsError):
    """An output file already exists and overwriting was not allowed (CLI: ``--overwrite``)."""


class ReentrantCallError(MtksegError, RuntimeError):
    """A Segmenter was called again from the thread already inside one of its calls, i.e. from
    a ``score_filter`` (waiting for its own lock would deadlock)."""


class DistributedError(MtksegError):
    """A distributed run (:mod:`mtkseg.distributed`) cannot start or did not complete: Ray is
    not installed (``pip install 'mtkseg[ray]'``), the cluster cannot be reached, or its
    results are incomplete."""
