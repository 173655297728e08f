"""Model runtime: interpreter backends, delegates/accelerators, model introspection.

Layers (each module has one job):

* :mod:`.modelfile` — read and validate the ``.tflite`` flatbuffer (typed errors for missing,
  non-TFLite and truncated files; operators, custom ops, metadata buffers).
* :mod:`.metadata` — TFLite metadata (``NormalizationOptions``, label files) and sidecar JSON.
* :mod:`.labels` — ``labels=``: names or a text label map.
* :mod:`.info` — :class:`ModelInfo`: input/output layout, dtype, quantisation, output kind,
  value range, labels, palette.
* :mod:`.backends` — which TFLite runtime executes (ai-edge-litert → tflite-runtime → tensorflow).
* :mod:`.delegates` — delegate/accelerator names, libraries per platform, fallback chains.
* :mod:`.session` — a loaded model with zero-copy I/O buffers.

The runtime knows nothing of video or the CLI.
"""

from .backends import Backend, default_num_threads, get_backend
from .delegates import ACCELERATOR_NAMES, DELEGATE_NAMES, LIBRARIES, is_android
from .info import NORMALIZATIONS, OUTPUT_KINDS, ModelInfo, describe_model, input_plan, parse_normalization
from .labels import read_label_map
from .metadata import Sidecar, TfliteMetadata, read_sidecar, read_tflite_metadata
from .modelfile import ModelFile, TensorSpec, read_model_file
from .session import CompiledModelSession, InterpreterSession, Session, open_session


def inspect_model(model, *, labels=None, normalization=None, input_size=None, output=None,
                  output_map_size=None) -> ModelInfo:
    """Read and describe a model without loading it in an interpreter (``mtkseg info --no-load``):
    the tensors as *declared* in the file (a loaded :class:`mtkseg.Segmenter`'s ``info``
    describes them as allocated)."""
    return describe_model(read_model_file(model), labels=labels, normalization=normalization, input_size=input_size,
                          output=output, output_map_size=output_map_size)


__all__ = [
    "ACCELERATOR_NAMES",
    "Backend",
    "CompiledModelSession",
    "DELEGATE_NAMES",
    "InterpreterSession",
    "LIBRARIES",
    "ModelFile",
    "ModelInfo",
    "NORMALIZATIONS",
    "OUTPUT_KINDS",
    "Session",
    "Sidecar",
    "TensorSpec",
    "TfliteMetadata",
    "default_num_threads",
    "describe_model",
    "get_backend",
    "input_plan",
    "inspect_model",
    "is_android",
    "open_session",
    "parse_normalization",
    "read_label_map",
    "read_model_file",
    "read_sidecar",
    "read_tflite_metadata",
]
