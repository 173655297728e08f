"""Write standard TFLite metadata into a segmentation model (what MediaPipe Tasks and Android read).

:func:`embed_segmenter_metadata` does what MediaPipe's ``image_segmenter.MetadataWriter`` +
``MetadataPopulator`` do, with the generated flatbuffer classes in :mod:`mtkseg.runtime._schema`
and LiteRT's model schema, so neither MediaPipe nor tflite-support is needed:

* a ``ModelMetadata`` (identifier ``M001``) with name, description, version, author, licence;
* the input tensor: ``ImageProperties`` (RGB) and ``NormalizationOptions`` (``(pixel - mean) /
  std`` in 0..255 units: the float domain the model was trained in), pixel range stats;
* the output tensor: ``ImageProperties`` (GRAYSCALE, i.e. a segmentation mask) and the labels as
  a ``TENSOR_AXIS_LABELS`` associated file;
* the ``SEGMENTER_METADATA`` custom metadata (``ImageSegmenterOptions``, identifier ``V001``)
  naming the output activation;
* the metadata buffer added to the model as ``TFLITE_METADATA`` and the associated files appended
  as an uncompressed zip archive (the "model + zip" layout every metadata reader expects).
"""

from __future__ import annotations

import io
import zipfile
from typing import Optional, Sequence

import flatbuffers
import numpy as np

from ..errors import InvalidArgumentError, InvalidModelError
from ._schema import image_segmenter_metadata_schema_py_generated as seg_fb
from ._schema import metadata_schema_py_generated as md_fb

__all__ = ["embed_segmenter_metadata", "METADATA_NAME", "LABEL_FILE_NAME"]

METADATA_NAME = "TFLITE_METADATA"
LABEL_FILE_NAME = "labels.txt"
# MediaPipe's populator records the lowest parser version that understands the fields used;
# for these fields (custom metadata is the newest) it computes 1.5.0 (checked with mediapipe 1.2.3).
MIN_PARSER_VERSION = "1.5.0"
_ACTIVATIONS = {"none": seg_fb.Activation.NONE, "sigmoid": seg_fb.Activation.SIGMOID,
                "softmax": seg_fb.Activation.SOFTMAX}


def _model_schema():
    from ai_edge_litert import schema_py_generated as schema  # type: ignore[import-not-found]

    return schema


def _normalization(mean: Sequence[float], std: Sequence[float]) -> "md_fb.ProcessUnitT":
    opts = md_fb.NormalizationOptionsT()
    opts.mean = [float(v) for v in mean]
    opts.std = [float(v) for v in std]
    unit = md_fb.ProcessUnitT()
    unit.optionsType = md_fb.ProcessUnitOptions.NormalizationOptions
    unit.options = opts
    return unit


def _image_content(color_space: int) -> "md_fb.ContentT":
    props = md_fb.ImagePropertiesT()
    props.colorSpace = color_space
    content = md_fb.ContentT()
    content.contentPropertiesType = md_fb.ContentProperties.ImageProperties
    content.contentProperties = props
    return content


def _segmenter_options(activation: str) -> "md_fb.CustomMetadataT":
    opts = seg_fb.ImageSegmenterOptionsT()
    opts.activation = _ACTIVATIONS[activation]
    b = flatbuffers.Builder(0)
    b.Finish(opts.Pack(b), b"V001")
    custom = md_fb.CustomMetadataT()
    custom.name = "SEGMENTER_METADATA"
    custom.data = np.frombuffer(bytes(b.Output()), np.uint8)
    return custom


def embed_segmenter_metadata(
    model: bytes,
    labels: Sequence[str],
    mean: Sequence[float],
    std: Sequence[float],
    *,
    name: str = "ImageSegmenter",
    description: str = "Semantic segmentation: a class for every pixel.",
    version: str = "",
    author: str = "",
    license_text: str = "",
    activation: str = "softmax",
    output_index: int = 0,
) -> bytes:
    """Return ``model`` with TFLite segmenter metadata and its label file embedded.

    Args:
        model: a ``.tflite`` flatbuffer without metadata (an existing ``TFLITE_METADATA`` entry is
            replaced; an appended zip of associated files is dropped and rewritten).
        labels: one name per output class.
        mean, std: per-channel normalisation in 0..255 pixel units (3 values each).
        activation: what turns the output into probabilities: ``softmax`` for logits,
            ``sigmoid``, or ``none``.
        output_index: which model output is the segmentation map.

    Raises:
        InvalidArgumentError: empty or non-string labels, wrong mean/std, unknown activation.
        InvalidModelError: ``model`` is not a TFLite flatbuffer with one subgraph.
    """
    if not labels or not all(isinstance(v, str) and v and "\n" not in v for v in labels):
        raise InvalidArgumentError("labels: expected a non-empty list of one-line names")
    if len(mean) != 3 or len(std) != 3 or any(float(s) <= 0 for s in std):
        raise InvalidArgumentError(f"mean/std: expected 3 values each, std > 0; got {list(mean)} / {list(std)}")
    if activation not in _ACTIVATIONS:
        raise InvalidArgumentError(f"activation: expected one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    model = bytes(model)
    if len(model) < 8 or model[4:8] != b"TFL3":
        raise InvalidModelError("model: not a TFLite flatbuffer (no TFL3 identifier)")
    schema = _model_schema()
    try:
        m = schema.ModelT.InitFromPackedBuf(model, 0)
    except Exception as exc:  # noqa: BLE001 - flatbuffers raises struct/index errors on corrupt input
        raise InvalidModelError(f"model: cannot parse the flatbuffer ({exc})") from exc
    if not m.subgraphs or len(m.subgraphs) != 1:
        raise InvalidModelError("model: TFLite metadata describes exactly one subgraph")
    sg = m.subgraphs[0]
    n_in, n_out = len(sg.inputs), len(sg.outputs)
    if not 0 <= output_index < n_out:
        raise InvalidArgumentError(f"output_index: {output_index} outside the model's {n_out} outputs")

    image = md_fb.TensorMetadataT()
    image.name = "image"
    image.description = "Input image to be segmented."
    image.content = _image_content(md_fb.ColorSpaceType.RGB)
    image.processUnits = [_normalization(mean, std)]
    stats = md_fb.StatsT()
    stats.max, stats.min = [255.0], [0.0]
    image.stats = stats
    inputs = [image] + [md_fb.TensorMetadataT() for _ in range(n_in - 1)]

    outputs = []
    for i in range(n_out):
        t = md_fb.TensorMetadataT()
        if i == output_index:
            t.name = "segmentation_masks"
            t.description = "Masks over the target objects with high accuracy."
            t.content = _image_content(md_fb.ColorSpaceType.GRAYSCALE)
            t.content.range = None
            label_file = md_fb.AssociatedFileT()
            label_file.name = LABEL_FILE_NAME
            label_file.description = "Labels for categories that the model can recognize."
            label_file.type = md_fb.AssociatedFileType.TENSOR_AXIS_LABELS
            t.associatedFiles = [label_file]
        outputs.append(t)

    subgraph = md_fb.SubGraphMetadataT()
    subgraph.inputTensorMetadata = inputs
    subgraph.outputTensorMetadata = outputs
    subgraph.customMetadata = [_segmenter_options(activation)]
    meta = md_fb.ModelMetadataT()
    meta.name, meta.description = name, description
    meta.version = version or None
    meta.author = author or None
    meta.license = license_text or None
    meta.subgraphMetadata = [subgraph]
    meta.minParserVersion = MIN_PARSER_VERSION
    b = flatbuffers.Builder(0)
    b.Finish(meta.Pack(b), b"M001")
    meta_bytes = bytes(b.Output())

    buffer = schema.BufferT()
    buffer.data = np.frombuffer(meta_bytes, np.uint8)
    entry = None
    for existing in m.metadata or []:
        if existing.name in (METADATA_NAME, METADATA_NAME.encode()):
            entry = existing
    if entry is None:
        m.buffers = (m.buffers or []) + [buffer]
        entry = schema.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = len(m.buffers) - 1
        m.metadata = (m.metadata or []) + [entry]
    else:
        m.buffers[entry.buffer] = buffer
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), b"TFL3")
    out = io.BytesIO(bytes(b.Output()))
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(LABEL_FILE_NAME, "\n".join(labels) + "\n")
    return out.getvalue()
