"""Standard TFLite metadata written by mtkseg.runtime.metadata_writer (what MediaPipe Tasks reads).

Checked against what the metadata *format* says, read back with the generated schema classes and
zipfile (not with the writer), and with mtkseg's own independent metadata reader; the model must
still run unchanged.  MediaPipe's ImageSegmenter itself is checked by scripts/check_mediapipe.py
(it needs a separate virtualenv; its output is recorded in bench/RESULTS.md).
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl
from ai_edge_litert.interpreter import Interpreter

import mtkseg
from fixtures.reference import model_path
from mtkseg.errors import InvalidArgumentError, InvalidModelError
from mtkseg.runtime._schema import image_segmenter_metadata_schema_py_generated as seg_fb
from mtkseg.runtime._schema import metadata_schema_py_generated as md_fb
from mtkseg.runtime.metadata_writer import embed_segmenter_metadata

LABELS = ["background", "road", "car"]


def _run(blob: bytes, x: np.ndarray) -> np.ndarray:
    it = Interpreter(model_content=blob)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


@pytest.fixture
def written():
    src = open(model_path("uint8_io"), "rb").read()
    it = Interpreter(model_content=src)
    n_classes = it.get_output_details()[0]["shape"][-1]
    labels = [f"c{i}" for i in range(n_classes)]
    out = embed_segmenter_metadata(src, labels, (0, 0, 0), (255, 255, 255), name="fixture", version="7",
                                   author="me", license_text="MIT")
    return src, out, labels


def test_metadata_fields_read_back_with_the_schema(written):
    src, out, labels = written
    model = tfl.Model.GetRootAs(out, 0)
    names = [model.Metadata(i).Name().decode() for i in range(model.MetadataLength())]
    assert names.count("TFLITE_METADATA") == 1
    entry = model.Metadata(names.index("TFLITE_METADATA"))
    raw = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    assert raw[4:8] == b"M001"
    meta = md_fb.ModelMetadataT.InitFromPackedBuf(raw, 0)
    assert (meta.name, meta.version, meta.author, meta.license) == (b"fixture", b"7", b"me", b"MIT")
    sg = meta.subgraphMetadata[0]
    image = sg.inputTensorMetadata[0]
    assert image.content.contentPropertiesType == md_fb.ContentProperties.ImageProperties
    assert image.content.contentProperties.colorSpace == md_fb.ColorSpaceType.RGB
    norm = image.processUnits[0]
    assert norm.optionsType == md_fb.ProcessUnitOptions.NormalizationOptions
    assert list(norm.options.mean) == [0, 0, 0] and list(norm.options.std) == [255, 255, 255]
    mask = sg.outputTensorMetadata[0]
    assert mask.content.contentProperties.colorSpace == md_fb.ColorSpaceType.GRAYSCALE
    (label_file,) = mask.associatedFiles
    assert label_file.name == b"labels.txt" and label_file.type == md_fb.AssociatedFileType.TENSOR_AXIS_LABELS
    (custom,) = sg.customMetadata
    assert custom.name == b"SEGMENTER_METADATA"
    opts = seg_fb.ImageSegmenterOptions.GetRootAs(bytes(bytearray(custom.data)), 0)
    assert opts.Activation() == seg_fb.Activation.SOFTMAX
    # the label file is an uncompressed zip member appended after the flatbuffer
    with zipfile.ZipFile(io.BytesIO(out)) as zf:
        info = zf.getinfo("labels.txt")
        assert info.compress_type == zipfile.ZIP_STORED
        assert zf.read("labels.txt").decode().splitlines() == labels


def test_model_with_metadata_runs_unchanged_and_is_read_by_mtkseg(written, tmp_path):
    src, out, labels = written
    x = np.random.default_rng(0).integers(0, 256, Interpreter(model_content=src).get_input_details()[0]["shape"],
                                          dtype=np.uint8)
    np.testing.assert_array_equal(_run(out, x), _run(src, x))
    path = tmp_path / "with_md.tflite"
    path.write_bytes(out)
    info = mtkseg.runtime.inspect_model(str(path))
    assert list(info.class_names) == labels
    assert info.mean == (0.0, 0.0, 0.0) and info.std == (255.0, 255.0, 255.0)
    assert info.normalization_source == "metadata"


def test_rewriting_replaces_the_metadata(written):
    _, out, _ = written
    again = embed_segmenter_metadata(out, ["a", "b", "c"][: len(written[2])] + ["x"] * (len(written[2]) - 3),
                                     (1, 2, 3), (4, 5, 6), activation="none")
    model = tfl.Model.GetRootAs(again, 0)
    assert [model.Metadata(i).Name() for i in range(model.MetadataLength())].count(b"TFLITE_METADATA") == 1


def test_bad_arguments_are_typed_errors():
    src = open(model_path("uint8_io"), "rb").read()
    with pytest.raises(InvalidArgumentError, match="labels"):
        embed_segmenter_metadata(src, [], (0, 0, 0), (1, 1, 1))
    with pytest.raises(InvalidArgumentError, match="labels"):
        embed_segmenter_metadata(src, ["a\nb"], (0, 0, 0), (1, 1, 1))
    with pytest.raises(InvalidArgumentError, match="std"):
        embed_segmenter_metadata(src, ["a"], (0, 0, 0), (1, 0, 1))
    with pytest.raises(InvalidArgumentError, match="activation"):
        embed_segmenter_metadata(src, ["a"], (0, 0, 0), (1, 1, 1), activation="relu")
    with pytest.raises(InvalidArgumentError, match="output_index"):
        embed_segmenter_metadata(src, ["a"], (0, 0, 0), (1, 1, 1), output_index=3)
    with pytest.raises(InvalidModelError, match="TFL3"):
        embed_segmenter_metadata(b"PK\x03\x04" + bytes(64), ["a"], (0, 0, 0), (1, 1, 1))
