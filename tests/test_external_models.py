"""Real third-party models (../shared/models/external, see its MANIFEST.md) through
``mtkseg.Segmenter(path)`` with default options, checked against the published references.

Measured values (ai-edge-litert 2.3.0, x86-64) are in the comments next to each bound; the
bounds sit just below them.  Crafted fixtures (edited copies of tests/fixtures/models) cover
the cases no real model in the folder has: stale declared shapes, int8 class indices,
``[1, h*w*C]`` flattened scores, indexed label maps.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from conftest import SHARED_DATA, require_shared
from fixtures.reference import model_path, smooth_frame

import mtkseg
from mtkseg import ops, runtime
from mtkseg.errors import InvalidArgumentError, ModelError, UnsupportedModelError
from mtkseg.runtime.session import BUILTIN_CPU

EXTERNAL = SHARED_DATA.parent / "models" / "external"

#: every model in the folder: (file, kind, classes, arguments beyond the defaults for a good mask)
MODELS = {
    "coral_deeplabv3_mnv2_pascal_quant.tflite": ("class_index", None),
    "tflsupport_deeplabv3_metadata.tflite": ("logits", 21),
    "mlperf_deeplabv3_mnv2_ade20k_uint8.tflite": ("class_index", None),
    "terryky_face_segmentation_bisenetv2_celebamaskhq_256x256_integer_quant.tflite": ("class_index", None),
    "terryky_hair_segmentation_hair_segmentation.tflite": ("logits", 2),
    "mediapipe_selfie_segmentation_v0.tflite": ("binary_probability", 2),
    "hugoc_mediapipe_selfie_segmenter.tflite": ("binary_probability", 2),
    "mediapipe_pose_landmark_lite_v0.8.6_with_seg_head.tflite": ("binary_logit", 2),
    "pinto_unet_person_non_quantized_08.tflite": ("logits", 3),
    "backscrub_body-pix-float-050-8.tflite": ("binary_logit", 2),
    "anil_mnv3_post_quant_uint8.tflite": ("logits", 2),
    "anil_bilinear_fin_munet_dynrange_flat.tflite": ("binary_probability", 2),
    "anil_deeplab_aiseg_quant513_argmax.tflite": ("class_index", None),
    "anil_deeplab_aiseg513_dm05_float.tflite": ("logits", 2),
    "kamuisi_fastscnn_loveda_int8_320_oldmethod.tflite": ("logits", 8),
}

#: person/portrait models: (file, normalization the source documents when the default is not it)
PERSON_MODELS = [
    ("mediapipe_selfie_segmentation_v0.tflite", None),
    ("hugoc_mediapipe_selfie_segmenter.tflite", None),
    ("mediapipe_pose_landmark_lite_v0.8.6_with_seg_head.tflite", None),
    ("backscrub_body-pix-float-050-8.tflite", "symmetric"),
    ("anil_mnv3_post_quant_uint8.tflite", None),
    ("anil_bilinear_fin_munet_dynrange_flat.tflite", None),
    ("anil_deeplab_aiseg_quant513_argmax.tflite", None),
    ("anil_deeplab_aiseg513_dm05_float.tflite", "symmetric"),
]


def ext(name: str) -> Path:
    return require_shared(EXTERNAL / name)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(int((a | b).sum()), 1))


def centre_and_corners(mask: np.ndarray):
    """Foreground share of the central third and of the two top corners (1/8 side each)."""
    h, w = mask.shape
    fg = mask != 0
    k = h // 8
    corners = np.concatenate([fg[:k, :k].ravel(), fg[:k, -k:].ravel()])
    return float(fg[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].mean()), float(corners.mean())


# ----------------------------------------------------------------------------- every model

@pytest.mark.parametrize("name", sorted(MODELS))
def test_loads_with_defaults_and_info_describes_it(name, capsys):
    kind, classes = MODELS[name]
    with mtkseg.Segmenter(ext(name)) as seg:
        assert seg.info.output_kind == kind
        assert seg.num_classes == classes
        assert seg.info.tensors_source == "interpreter"
        text = str(seg.info)
        assert seg.info.output_name in text and kind in text
    from mtkseg.cli import main

    assert main(["info", str(ext(name))]) == 0
    out = capsys.readouterr().out
    assert f"output kind:    {kind}" in out and "runtime:" in out


# ----------------------------------------------------------------------------- published references

def test_tflite_support_golden_mask():
    """tflite-support's image_segmenter_test: category mask *10, 1 % of pixels may differ."""
    with mtkseg.Segmenter(ext("tflsupport_deeplabv3_metadata.tflite")) as seg:
        assert seg.info.normalization_source == "metadata" and seg.class_names[15] == "person"
        mask = seg.run(ext("tflsupport_segmentation_input_rotation0.jpg")).mask
    golden = cv2.imread(str(ext("tflsupport_segmentation_golden_rotation0_x10.png")), cv2.IMREAD_UNCHANGED)
    agreement = float((mask.astype(np.int32) * 10 == golden).mean())
    assert agreement == 1.0  # measured 100 % (upstream allows 99 %)


def test_coral_bird_iou():
    """Coral's segmentation test: bird IoU > 0.9 (labels from Coral's label file)."""
    with mtkseg.Segmenter(ext("coral_deeplabv3_mnv2_pascal_quant.tflite"),
                          labels=ext("coral_pascal_voc_segmentation_labels.txt")) as seg:
        assert seg.num_classes == 21 and seg.class_names[3] == "bird"
        mask = seg.run(ext("coral_bird_segmentation.bmp")).mask
    gt = cv2.imread(str(ext("coral_bird_segmentation_mask.bmp")), cv2.IMREAD_UNCHANGED)
    gt = gt if gt.ndim == 2 else gt[..., 0]
    assert iou(mask == 3, gt == 3) >= 0.9  # measured 0.906


def test_pinto_unet_person_iou():
    """PINTO's UNet (low quality: ~0.26 person IoU published), class 2 (void) read as 0."""
    from PIL import Image

    gt = np.asarray(Image.open(ext("pinto_unet_sample_001526_mask.png")))
    with mtkseg.Segmenter(ext("pinto_unet_person_non_quantized_08.tflite")) as seg:
        mask = seg.run(ext("pinto_unet_sample_001526.jpg")).mask.copy()
    mask[mask == 2] = 0
    valid = gt != 255
    assert iou((mask == 1) & valid, (gt == 15) & valid) >= 0.25  # measured 0.259


@pytest.mark.parametrize("name,normalization", PERSON_MODELS)
def test_person_models_find_the_child(name, normalization):
    with mtkseg.Segmenter(ext(name), normalization=normalization) as seg:
        centre, corners = centre_and_corners(seg.run(ext("anil_sample_kid8.jpg")).mask)
    # measured: centre 0.79 (pose) .. 1.0, corners 0.0 for every model
    assert centre >= 0.75 and corners <= 0.02


@pytest.mark.parametrize("name", ["mediapipe_selfie_segmentation_v0.tflite", "hugoc_mediapipe_selfie_segmenter.tflite",
                                  "anil_deeplab_aiseg_quant513_argmax.tflite"])
def test_person_models_on_the_pakutaso_photos(name):
    with mtkseg.Segmenter(ext(name)) as seg:
        for photo in ("terryky_hair_segmentation_pakutaso.jpg", "terryky_face_segmentation_pakutaso.jpg"):
            centre, corners = centre_and_corners(seg.run(ext(photo)).mask)
            assert centre >= 0.7 and corners <= 0.06  # measured centre 0.76-0.87, corners 0.0-0.059


def test_face_parts_model():
    """BiSeNetV2 CelebAMask-HQ: [H, W] int64 class map without a batch axis; input (x-128)/128."""
    with mtkseg.Segmenter(ext("terryky_face_segmentation_bisenetv2_celebamaskhq_256x256_integer_quant.tflite"),
                          normalization="symmetric") as seg:
        assert seg.info.output_shape == (256, 256) and seg.info.output_kind == "class_index"
        mask = seg.run(ext("terryky_face_segmentation_pakutaso.jpg")).mask
    centre, corners = centre_and_corners(mask)
    assert centre >= 0.95 and corners <= 0.15  # measured 0.987 / 0.104
    assert mask.max() <= 18 and len(np.unique(mask)) >= 4  # several face parts, all in 0..18


def test_hair_model_with_previous_mask():
    """4-channel input (RGB + previous mask): the hair of the pakutaso photo, top left."""
    with mtkseg.Segmenter(ext("terryky_hair_segmentation_hair_segmentation.tflite")) as seg:
        assert seg.info.input_prior and "previous frame" in str(seg.info)
        assert seg.delegate == "cpu"  # XNNPACK: MediaPipe's custom ops exist only there
        image = cv2.imread(str(ext("terryky_hair_segmentation_pakutaso.jpg")))
        first = seg.run(image)
        h, w = first.mask.shape
        hair_box = first.mask[: h // 2, w // 6 : w // 2].mean()
        elsewhere = first.mask[:, int(w * 0.6) :].mean()
        assert hair_box >= 0.4 and elsewhere <= 0.01  # measured 0.51 / 0.0
        prior = seg.foreground_probability(first)
        assert prior.shape == (h, w) and prior.dtype == np.float32
        again = seg.run(image, prior=prior)
        assert (again.mask == first.mask).mean() >= 0.98  # measured 0.99
        results = [r for _, r in seg.stream([image, image, image])]
        assert len(results) == 3 and (results[-1].mask == again.mask).mean() >= 0.98
        with pytest.raises(InvalidArgumentError, match="previous frame"):
            seg.stream([image], workers=2)
        with pytest.raises(InvalidArgumentError, match=r"\[0, 1\]"):
            seg.run(image, prior=1.5)


def test_xnnpack_failure_falls_back_to_builtin_kernels(caplog):
    name = "anil_deeplab_aiseg_quant513_argmax.tflite"
    with caplog.at_level(logging.WARNING, "mtkseg.runtime"):
        seg = mtkseg.Segmenter(ext(name))
    with seg:
        assert seg.delegate == BUILTIN_CPU
        assert ("xnnpack", seg.delegate_attempts[-1][1]) == seg.delegate_attempts[-1]
        assert "RESIZE_BILINEAR" in seg.delegate_attempts[-1][1]
    assert sum("XNNPACK could not prepare" in r.message for r in caplog.records) == 1
    with pytest.raises(ModelError, match="does not fall back"):
        mtkseg.Segmenter(ext(name), delegate="xnnpack")


def test_multi_output_pose_model():
    name = "mediapipe_pose_landmark_lite_v0.8.6_with_seg_head.tflite"
    with mtkseg.Segmenter(ext(name)) as seg:
        assert seg.info.output_index == 2 and seg.info.output_name == "Identity_2"
        assert len(seg.info.outputs) == 5 and "Identity_3 [1, 64, 64, 39]" in seg.info.outputs[3]
    with mtkseg.Segmenter(ext(name), output="Identity_3") as seg:
        assert seg.info.output_index == 3 and seg.num_classes == 39
    with pytest.raises(UnsupportedModelError, match="not a segmentation map"):
        mtkseg.Segmenter(ext(name), output=0)
    with pytest.raises(InvalidArgumentError, match="no output named"):
        mtkseg.Segmenter(ext(name), output="nope")


def test_flattened_output_and_override():
    name = "anil_bilinear_fin_munet_dynrange_flat.tflite"
    with mtkseg.Segmenter(ext(name)) as seg:
        assert seg.info.output_flattened and seg.info.output_size == (128, 128)
        assert seg.info.output_kind == "binary_probability"  # LOGISTIC seen through the RESHAPE
        assert "unflattened" in str(seg.info)
    with mtkseg.Segmenter(ext(name), output_map_size=(64, 256)) as seg:
        assert seg.info.output_size == (64, 256)
    with pytest.raises(InvalidArgumentError, match="not a multiple"):
        mtkseg.Segmenter(ext(name), output_map_size=(100, 100))


def test_one_label_names_the_foreground():
    with mtkseg.Segmenter(ext("hugoc_mediapipe_selfie_segmenter.tflite")) as seg:
        assert seg.class_names == ("background", "selfie") and seg.info.labels_source == "metadata"


def test_unsupported_op_stays_typed():
    # MediaPipe's custom ops: XNNPACK implements them, the builtin kernels do not.
    backend = runtime.get_backend()
    mf = runtime.read_model_file(ext("mediapipe_selfie_segmentation_v0.tflite"))
    it = backend.interpreter_class(model_content=mf.data, experimental_op_resolver_type=backend.builtin_resolver)
    with pytest.raises(RuntimeError, match="Convolution2DTransposeBias"):
        it.allocate_tensors()
    err = runtime.session.op_error(RuntimeError("Encountered unresolved custom op: Convolution2DTransposeBias."),
                                   mf, backend)
    assert isinstance(err, mtkseg.errors.UnsupportedOpError) and "Convolution2DTransposeBias" in str(err)


# ----------------------------------------------------------------------------- crafted fixtures

def _edit_output(path: Path, shape, dtype=None) -> bytes:
    """The model with its output tensor *declared* as ``shape`` (what TF1 converters left)."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(path.read_bytes(), 0))
    sub = model.subgraphs[0]
    tensor = sub.tensors[sub.outputs[0]]
    tensor.shape = list(shape)
    tensor.shapeSignature = None
    if dtype is not None:
        tensor.type = dtype
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_stale_declared_output_shape(caplog):
    """An ARG_MAX declared [1, h, w, C] int64 that the interpreter allocates as [1, h, w]."""
    good = mtkseg.Segmenter(model_path("class_index"), delegate="cpu")
    _, h, w = good.info.output_shape
    stale = _edit_output(Path(model_path("class_index")), (1, h, w, 5))
    with pytest.raises(UnsupportedModelError, match="several channels"):
        runtime.inspect_model(stale)  # the file alone says something impossible
    frame = smooth_frame(np.random.default_rng(3), 60, 80)
    with caplog.at_level(logging.INFO, "mtkseg.runtime"):
        seg = mtkseg.Segmenter(stale, delegate="cpu")
    assert seg.info.output_shape == (1, h, w) and seg.info.output_kind == "class_index"
    assert any("allocated" in r.message for r in caplog.records)
    assert np.array_equal(seg.run(frame).mask, good.run(frame).mask)


def test_int8_class_indices_and_flat_scores():
    mf = runtime.read_model_file(model_path("class_index_uint8"))
    out = mf.outputs[0]
    info = runtime.describe_model(mf, tensors=(mf.inputs, (out.__class__(out.index, out.name, "int8", out.shape,
                                                                          out.shape_signature),)))
    assert info.output_kind == "class_index"
    labels = np.array([[0, 1], [2, 127]], dtype=np.int8)
    assert ops.postprocess(labels, (2, 2), kind="labels").tolist() == [[0, 1], [2, 127]]
    with pytest.raises(InvalidArgumentError, match="negative"):
        ops.postprocess(np.array([[0, -1]], dtype=np.int8), (1, 2), kind="labels")
    # scores flattened to [1, h*w*C] (NHWC order), at half the input size
    mf = runtime.read_model_file(model_path("float32"))
    spec = mf.outputs[0]
    _, h, w, c = spec.shape
    flat = spec.__class__(spec.index, spec.name, spec.dtype, (1, h * w * c // 4), (1, h * w * c // 4))
    info = runtime.describe_model(mf, tensors=(mf.inputs, (flat,)))
    assert info.output_flattened and info.output_size == (h // 2, w // 2) and info.num_classes == c
    assert info.output_map_shape == (1, h // 2, w // 2, c)


def test_batchless_class_map_shape():
    mf = runtime.read_model_file(model_path("class_index"))
    spec = mf.outputs[0]
    two_d = spec.__class__(spec.index, spec.name, spec.dtype, spec.shape[1:], spec.shape[1:])
    info = runtime.describe_model(mf, tensors=(mf.inputs, (two_d,)))
    assert info.output_kind == "class_index" and info.output_size == spec.shape[1:]


def test_label_map_files(tmp_path):
    plain = runtime.read_label_map(ext("coral_pascal_voc_segmentation_labels.txt"))
    assert len(plain) == 21 and plain[0] == "background" and plain[15] == "person"
    indexed = tmp_path / "labels.txt"
    indexed.write_text("0 sky\n1: road\n\n3 car\n")
    assert runtime.read_label_map(indexed) == ("sky", "road", "class_2", "car")
    five = tmp_path / "five.txt"
    five.write_text("a\nb\nc\nd\ne\n")
    seg = mtkseg.Segmenter(model_path("float32"), delegate="cpu", labels=five)
    assert seg.class_names == tuple("abcde") and seg.info.labels_source == "argument"
    with pytest.raises(InvalidArgumentError, match="not found"):
        mtkseg.Segmenter(model_path("float32"), labels=str(tmp_path / "missing.txt"))
    with pytest.raises(InvalidArgumentError, match="4 names"):
        mtkseg.Segmenter(model_path("float32"), labels=indexed)
    dup = tmp_path / "dup.txt"
    dup.write_text("0 a\n0 b\n")
    with pytest.raises(InvalidArgumentError, match="twice"):
        runtime.read_label_map(dup)



@pytest.mark.parametrize("name,image,classes", [
    ("mlperf_deeplabv3_mnv2_ade20k_uint8.tflite", "mlperf_ade20k_tiny_ADE_val_00000001.jpg", 32),
    ("kamuisi_fastscnn_loveda_int8_320_oldmethod.tflite", "mlperf_ade20k_tiny_ADE_val_00000001.jpg", 8),
])
def test_scene_models_give_several_classes(name, image, classes):
    """No published mask here (MLPerf's saved output comes from another model): classes in range,
    at least two of them each covering >= 5 % of the image."""
    with mtkseg.Segmenter(ext(name)) as seg:
        mask = seg.run(ext(image)).mask
    shares = np.bincount(mask.ravel(), minlength=classes) / mask.size
    assert mask.max() < classes and (shares >= 0.05).sum() >= 2  # measured mlperf 0.31/0.23/0.12, kamuisi 0.59/0.39


# ---- the same overrides from the command line ----

def test_cli_labels_file_on_coral_bird(tmp_path, capsys):
    """`mtkseg run --labels FILE`: names from Coral's label map, the mask scored against Coral's own."""
    from mtkseg.cli import main

    assert main(["run", str(ext("coral_deeplabv3_mnv2_pascal_quant.tflite")), str(ext("coral_bird_segmentation.bmp")),
                 "--labels", str(ext("coral_pascal_voc_segmentation_labels.txt")), "-o", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "bird" in json.dumps(doc)  # the class shares are named from the file
    mask = cv2.imread(str(tmp_path / "coral_bird_segmentation_mask.png"), cv2.IMREAD_UNCHANGED)
    gt = cv2.imread(str(ext("coral_bird_segmentation_mask.bmp")), cv2.IMREAD_UNCHANGED)
    gt = gt if gt.ndim == 2 else gt[..., 0]
    assert iou(mask == 3, gt == 3) >= 0.9  # measured 0.906, as through the Python API


def test_cli_output_tensor_and_map_size(capsys):
    from mtkseg.cli import main

    pose = str(ext("mediapipe_pose_landmark_lite_v0.8.6_with_seg_head.tflite"))
    assert main(["info", pose, "--output-tensor", "Identity_3", "--json"]) == 0
    model = json.loads(capsys.readouterr().out)["model"]
    assert model["output_index"] == 3 and model["num_classes"] == 39
    assert main(["info", pose, "--output-tensor", "3", "--json"]) == 0  # an index
    assert json.loads(capsys.readouterr().out)["model"]["output_name"] == "Identity_3"
    assert main(["info", pose, "--output-tensor", "0"]) == 1
    assert "not a segmentation map" in capsys.readouterr().err
    flat = str(ext("anil_bilinear_fin_munet_dynrange_flat.tflite"))
    assert main(["info", flat, "--output-map-size", "64x256", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["output_size"] == [64, 256]
    assert main(["info", flat, "--output-map-size", "100x100"]) == 1
    assert "not a multiple" in capsys.readouterr().err


def test_cli_normalization(tmp_path):
    """`--normalization` reaches the model: the CLI's BodyPix mask against the raw interpreter's."""
    from ai_edge_litert.interpreter import Interpreter

    from mtkseg.cli import main

    model, image = ext("backscrub_body-pix-float-050-8.tflite"), ext("anil_sample_kid8.jpg")
    bgr = cv2.imread(str(image))
    interp = Interpreter(str(model))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    h, w = inp["shape"][1:3]
    rgb = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    interp.set_tensor(inp["index"], ((rgb - 127.5) / 127.5)[None])
    interp.invoke()
    person = (interp.get_tensor(out["index"])[0, ..., 0] > 0).astype(np.uint8)  # [-1, 1] input, logit > 0
    reference = cv2.resize(person, (bgr.shape[1], bgr.shape[0]), interpolation=cv2.INTER_NEAREST)
    agreement = {}
    for norm in ("symmetric", "127.5,127.5", None):
        folder = tmp_path / str(norm)
        assert main(["run", str(model), str(image), "-o", str(folder)] + (["--normalization", norm] if norm else [])) == 0
        mask = cv2.imread(str(folder / "anil_sample_kid8_mask.png"), cv2.IMREAD_UNCHANGED)
        agreement[norm] = float(((mask != 0) == reference).mean())
    # measured 0.9990 for both spellings; the default x/255 guess 0.9888
    assert agreement["symmetric"] >= 0.997 and agreement["127.5,127.5"] >= 0.997
    assert agreement[None] < 0.995
