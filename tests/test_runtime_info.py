"""runtime/info.py: what ``describe_model`` reads from a model into a ``ModelInfo``.

Most models here are hand-made ``ModelFile`` objects: the tensors are written out in the test,
so the expected layout, size, kind, classes and value range follow from the tensor shapes and
quantisation parameters themselves (and the documented precedence in info.py's module doc),
never from running the code.  The fixture models with TFLite metadata are checked against what
tests/fixtures/make_models.py writes into them.  (Issue 16: mutation-testing survivors.)
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fixtures.reference import model_path

from mtkseg import runtime
from mtkseg.errors import InvalidArgumentError, InvalidModelError, InvalidTypeError, UnsupportedModelError
from mtkseg.runtime import info as info_mod
from mtkseg.runtime.info import describe_model, input_plan, parse_normalization
from mtkseg.runtime.modelfile import ModelFile, TensorSpec

LOGGER = "mtkseg.runtime"


def T(name, dtype, shape, sig=None, scale=(), zp=(), index=0) -> TensorSpec:
    return TensorSpec(index, name, dtype, tuple(shape), tuple(shape if sig is None else sig), tuple(scale), tuple(zp))


IMG = T("image", "float32", (1, 48, 64, 3))


def M(inp=IMG, outs=(), producers=None, path=None, operators=("CONV_2D",), custom_ops=(), inputs=None,
      size=2048) -> ModelFile:
    """A model as modelfile.read_model_file would describe it (no TFLite metadata)."""
    return ModelFile(path=path, data=bytes(size), inputs=tuple(inputs) if inputs is not None else (inp,),
                     outputs=tuple(outs), operators=tuple(operators), custom_ops=tuple(custom_ops),
                     producers=dict(producers or {}), metadata={})


def full(msg: str) -> str:
    """pytest.raises(match=) for exactly this message."""
    return "^" + re.escape(msg) + "$"


def _sidecar(path: Path, **doc) -> None:
    path.with_suffix(".json").write_text(json.dumps({"format": "mtkseg-model/1", **doc}))


def _road(tmp_path: Path, outs=None, **kw):
    """uint8 input quantised to [0, 1], int8 softmax output, sidecar with labels/palette/bgr."""
    path = tmp_path / "road.tflite"
    _sidecar(path, labels=["sky", "road", "car"], palette=[[1, 2, 3], [4, 5, 6], [7, 8, 9]],
             color_order="bgr", ignore_index=9)
    inp = T("image", "uint8", (1, 48, 64, 3), scale=(1 / 255,), zp=(0,))
    scores = T("scores", "int8", (1, 48, 64, 3), scale=(0.25,), zp=(-3,), index=7)
    outs = (scores,) if outs is None else outs
    mf = M(inp, outs, producers={7: "SOFTMAX"}, path=path,
           operators=("SOFTMAX", "CONV_2D", "ADD", "CONV_2D"), **kw)
    return path, mf


# ----------------------------------------------------------------------------- the whole ModelInfo

def test_every_field_of_a_hand_made_quantised_model_with_a_sidecar(tmp_path):
    path, mf = _road(tmp_path)
    info = describe_model(mf)
    expected = {
        "path": str(path), "size_bytes": 2048,
        "input_name": "image", "input_shape": [1, 48, 64, 3], "input_shape_signature": [1, 48, 64, 3],
        "input_dtype": "uint8", "input_layout": "nhwc", "input_channels": 3, "input_size": [48, 64],
        "resizable": False, "input_scale": 1 / 255, "input_zero_point": 0,
        "output_name": "scores", "output_shape": [1, 48, 64, 3], "output_dtype": "int8", "output_layout": "nhwc",
        "output_kind": "probabilities", "output_size": [48, 64], "output_scale": 0.25, "output_zero_point": -3,
        "num_classes": 3, "class_names": ["sky", "road", "car"], "labels_source": "sidecar",
        "palette": [[1, 2, 3], [4, 5, 6], [7, 8, 9]],
        # 0..255 codes at scale 1/255 represent [0, 1]: the "unit" range, read from the quantisation
        "mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0], "normalization_source": "quantization",
        "color_order": "bgr", "ignore_index": 9,
        "operators": {"SOFTMAX": 1, "CONV_2D": 2, "ADD": 1}, "custom_ops": [],
        "metadata_name": None, "metadata_version": None, "sidecar": str(path.with_suffix(".json")),
        "num_outputs": 1, "output_index": 0, "input_prior": False, "output_flattened": False,
        "outputs": ["scores [1, 48, 64, 3] int8"], "tensors_source": "file", "palette_source": "sidecar",
    }
    assert info.to_dict() == expected
    assert json.loads(info.to_json()) == expected
    assert info.to_json().startswith('{\n  "path": ')
    assert info.to_json(indent=4).startswith('{\n    "path": ')
    assert type(info.num_classes) is int and type(info.input_zero_point) is int
    assert info.output_map_shape == (1, 48, 64, 3)
    assert info.quantized_input and info.quantized_output and info.has_scores


def test_model_bytes_have_no_path_and_float_input_defaults_to_unit_with_one_warning(tmp_path, caplog):
    scores = T("logits", "float32", (1, 48, 64, 2), index=3)
    info = describe_model(M(IMG, (scores,)))
    assert info.path is None and info.sidecar is None and info.ignore_index is None
    assert (info.input_scale, info.input_zero_point, info.output_scale, info.output_zero_point) == (None,) * 4
    assert not info.quantized_input and not info.quantized_output
    assert (info.output_kind, info.class_names, info.labels_source) == ("logits", ("class_0", "class_1"), "generated")
    assert info.color_order == "rgb" and info.palette_source == "default" and len(info.palette) == 2

    path = tmp_path / "plain.tflite"
    with caplog.at_level(logging.INFO, logger=LOGGER):
        first = describe_model(M(IMG, (scores,), path=path))
        second = describe_model(M(IMG, (scores,), path=path))
    assert first.mean == second.mean == (0.0, 0.0, 0.0) and first.std == (255.0, 255.0, 255.0)
    assert first.normalization_source == second.normalization_source == "default"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and str(path) in r.getMessage()]
    assert warnings == [
        f"{path}: no normalization in TFLite metadata or sidecar JSON; assuming 'unit' (pixel/255). "
        "Pass normalization='raw'|'symmetric'|(mean, std) if the model expects another range."
    ]


def test_str_lists_what_was_read(tmp_path):
    aux = T("aux", "float32", (1, 12, 16, 3), index=5)
    scores = T("scores", "int8", (1, 48, 64, 3), scale=(0.25,), zp=(-3,), index=7)
    path, mf = _road(tmp_path, outs=(aux, scores))
    info = describe_model(mf)
    assert str(info) == "\n".join([
        f"model:          {path} (2.0 KiB)",
        "input:          image [1, 48, 64, 3] uint8 NHWC, scale=0.00392157, zero_point=0",
        "input size:     48x64 (HxW), 3 channel(s), fixed",
        "colour order:   bgr",
        "normalization:  mean=[0.0, 0.0, 0.0] std=[255.0, 255.0, 255.0] (pixel units; from quantization)",
        "output:         scores [1, 48, 64, 3] int8 NHWC, scale=0.25, zero_point=-3",
        "output kind:    probabilities, 48x64",
        "classes:        3 (names from the sidecar JSON)",
        "class names:    sky, road, car",
        "palette:        sidecar",
        "operators:      CONV_2D x2, ADD x1, SOFTMAX x1",
        f"sidecar:        {path.with_suffix('.json')}",
        "outputs:        2 (using output 1; output= picks another)",
        "    0: aux [1, 12, 16, 3] float32",
        "  * 1: scores [1, 48, 64, 3] int8",
        "tensor shapes:  as declared in the file",
    ])

    names = tuple(f"c{i}" for i in range(26))
    other = replace(info, path=None, size_bytes=1536, input_scale=None, output_scale=None, resizable=True,
                    input_layout="nchw", output_layout="nchw", input_prior=True, input_channels=4,
                    output_flattened=True, num_classes=None, labels_source="none", class_names=names,
                    custom_ops=("MyOp", "Other"), metadata_name="seg", metadata_version=None, sidecar=None,
                    num_outputs=1, tensors_source="interpreter", palette_source="default", color_order="rgb")
    assert str(other) == "\n".join([
        "model:          <bytes> (1.5 KiB)",
        "input:          image [1, 48, 64, 3] uint8 NCHW",
        "input size:     48x64 (HxW), 4 channel(s), resizable (RGB + previous frame's foreground probability "
        "in channel 4)",
        "colour order:   rgb",
        "normalization:  mean=[0.0, 0.0, 0.0] std=[255.0, 255.0, 255.0] (pixel units; from quantization)",
        "output:         scores [1, 48, 64, 3] int8 NCHW",
        "output kind:    probabilities, 48x64 (unflattened)",
        "classes:        unknown (class indices without names)",
        "class names:    " + ", ".join(names[:24]) + ", ... (26 names)",
        "palette:        default",
        "operators:      CONV_2D x2, ADD x1, SOFTMAX x1",
        "custom ops:     MyOp, Other",
        "tflite metadata: seg",
        "tensor shapes:  as allocated by the interpreter",
    ])
    assert "\nclass names:    " + ", ".join(names[:24]) + "\n" in str(replace(other, class_names=names[:24]))
    assert "\nclass names:    " + ", ".join(names[:24]) + ", ... (25 names)\n" in str(
        replace(other, class_names=names[:25]))
    assert str(replace(other, size_bytes=102400)).startswith("model:          <bytes> (100.0 KiB)\n")
    third = str(replace(other, metadata_name=None, metadata_version="2", class_names=(), labels_source="odd",
                        custom_ops=()))
    assert "\ntflite metadata: - 2\n" in third and "\nclass names:    -\n" in third
    assert "\nclasses:        unknown (odd)\n" in third and "custom ops" not in third
    assert "tflite metadata" not in str(replace(other, metadata_name=None))


def test_tflite_metadata_fixture_gives_range_labels_and_name():
    # make_models.py: metadata_flatbuffer([127.5]*3, [127.5]*3, "labels.txt"), 4 classes at 64x96,
    # named "mtkseg metadata fixture" 1.2.3, labels road / lane marking / vehicle / other
    info = describe_model(runtime.read_model_file(model_path("metadata")))
    assert (info.mean, info.std, info.normalization_source) == ((127.5,) * 3, (127.5,) * 3, "metadata")
    assert (info.class_names, info.labels_source) == (("road", "lane marking", "vehicle", "other"), "metadata")
    assert (info.metadata_name, info.metadata_version) == ("mtkseg metadata fixture", "1.2.3")
    assert (info.input_size, info.output_kind, info.num_classes) == ((64, 96), "logits", 4)


def test_resizable_input_size_precedence(tmp_path, caplog):
    # dynamic_metadata: [1, -1, -1, 3] input whose metadata default size is 48x80
    fixture = Path(model_path("dynamic_metadata"))
    assert input_plan(runtime.read_model_file(fixture)) == ((1, 48, 80, 3), True)
    copy = tmp_path / "dyn.tflite"
    shutil.copy(fixture, copy)
    _sidecar(copy, input_size=[40, 56])
    mf = runtime.read_model_file(copy)
    assert input_plan(mf) == ((1, 48, 80, 3), True)  # metadata before sidecar
    assert describe_model(mf).input_size == (48, 80)
    assert input_plan(mf, (24, 32)) == ((1, 24, 32, 3), True)  # the argument before both

    dyn = T("image", "float32", (1, 1, 1, 3), sig=(1, -1, -1, 3))
    out = T("logits", "float32", (1, 1, 1, 2), sig=(1, -1, -1, 2), index=1)
    side = tmp_path / "side.tflite"
    _sidecar(side, input_size=[40, 56])
    assert input_plan(M(dyn, (out,), path=side)) == ((1, 40, 56, 3), True)
    info = describe_model(M(dyn, (out,), path=side))
    assert (info.input_size, info.input_shape, info.resizable) == ((40, 56), (1, 40, 56, 3), True)
    assert info.outputs == ("logits [1, -1, -1, 2] float32",)  # the signature when it is dynamic
    with pytest.raises(UnsupportedModelError, match=full(
            "<model bytes>: the input height/width are dynamic [1, -1, -1, 3]; "
            "pass input_size=(height, width) to choose the resolution")):
        input_plan(M(dyn, (out,)))


# ----------------------------------------------------------------------------- input tensors

@pytest.mark.parametrize("shape, sig, size, expected", [
    # expected: layout, channels, input_size, resizable, input_shape
    ((1, 3, 48, 64), None, None, ("nchw", 3, (48, 64), False, (1, 3, 48, 64))),
    ((1, 1, 48, 64), None, None, ("nchw", 1, (48, 64), False, (1, 1, 48, 64))),
    ((1, 4, 48, 64), None, None, ("nchw", 4, (48, 64), False, (1, 4, 48, 64))),
    ((1, 48, 64, 1), None, None, ("nhwc", 1, (48, 64), False, (1, 48, 64, 1))),
    ((1, 48, 64, 4), None, None, ("nhwc", 4, (48, 64), False, (1, 48, 64, 4))),
    ((1, 48, 64, 3), (-1, 48, 64, 3), None, ("nhwc", 3, (48, 64), False, (1, 48, 64, 3))),
    ((1, 48, 64, 3), None, (48, 64), ("nhwc", 3, (48, 64), False, (1, 48, 64, 3))),
    ((1, 1, 1, 3), (1, -1, -1, 3), (40, 56), ("nhwc", 3, (40, 56), True, (1, 40, 56, 3))),
    ((1, 1, 64, 3), (1, -1, 64, 3), (40, 64), ("nhwc", 3, (40, 64), True, (1, 40, 64, 3))),
    ((1, 48, 1, 3), (1, 48, -1, 3), (48, 56), ("nhwc", 3, (48, 56), True, (1, 48, 56, 3))),
    ((1, 3, 1, 64), (1, 3, -1, 64), (40, 64), ("nchw", 3, (40, 64), True, (1, 3, 40, 64))),
    ((1, 3, 48, 1), (1, 3, 48, -1), (48, 56), ("nchw", 3, (48, 56), True, (1, 3, 48, 56))),
    ((1, 3, 1, 1), (1, 3, -1, -1), (1, 5), ("nchw", 3, (1, 5), True, (1, 3, 1, 5))),
    ((1, 2, 64, 3), (1, -1, 64, 3), None, ("nhwc", 3, (2, 64), True, (1, 2, 64, 3))),  # declared 2 rows: usable
    ((1, 48, 2, 3), (1, 48, -1, 3), None, ("nhwc", 3, (48, 2), True, (1, 48, 2, 3))),
])
def test_input_layouts(shape, sig, size, expected, caplog):
    inp = T("image", "float32", shape, sig)
    out = T("logits", "float32", (1, 2, 2, 2), sig=(1, -1, -1, 2), index=1)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        info = describe_model(M(inp, (out,)), input_size=size)
    got = (info.input_layout, info.input_channels, info.input_size, info.resizable, info.input_shape)
    assert got == expected
    assert info.input_prior == (expected[1] == 4)
    assert info.color_order == ("gray" if expected[1] == 1 else "rgb")
    assert input_plan(M(inp, (out,)), size) == (expected[4], expected[3])
    prior_logs = [r for r in caplog.records if "4-channel input" in r.getMessage()]
    assert len(prior_logs) == (1 if expected[1] == 4 else 0)
    if prior_logs:
        assert prior_logs[0].getMessage() == (
            "<model bytes>: 4-channel input: channel 4 takes the previous frame's foreground probability "
            "(Segmenter(prior=...) for single images)")


@pytest.mark.parametrize("inp, kwargs, error, message", [
    (T("image", "int32", (1, 48, 64, 3)), {}, UnsupportedModelError,
     "<model bytes>: input 'image' has dtype int32; mtkseg feeds images as float32, float16, int8, uint8 "
     "(re-export the model with one of these input types)"),
    (T("image", "float32", (1, 48, 64)), {}, UnsupportedModelError,
     "<model bytes>: input 'image' has shape [1, 48, 64]; expected an image tensor (1, h, w, 1|3) NHWC or "
     "(1, 1|3, h, w) NCHW"),
    (T("image", "float32", (2, 48, 64, 3)), {}, UnsupportedModelError,
     "<model bytes>: input batch size is 2; mtkseg runs batch 1 (re-export with batch 1)"),
    (T("image", "float32", (1, 48, 64, 2)), {}, UnsupportedModelError,
     "<model bytes>: input 'image' has shape [1, 48, 64, 2]: 2 channels; mtkseg supports 1 (gray), 3 (colour) "
     "or 4 (colour + previous mask) channel images, NHWC or NCHW"),
    (T("image", "float32", (1, 48, 64, 5)), {}, UnsupportedModelError, "[1, 48, 64, 5]: 5 channels;"),
    (T("image", "float32", (1, 5, 48, 64)), {}, UnsupportedModelError, "[1, 5, 48, 64]: 64 channels;"),
    (T("image", "float32", (1, 2, 2, 0)), {}, UnsupportedModelError, "[1, 2, 2, 0]: ? channels;"),
    (T("image", "float32", (1, 48, 64, 1), sig=(1, 48, 64, -1)), {}, UnsupportedModelError,
     "[1, 48, 64, -1]: 1 channels;"),
    (T("image", "float32", (1, 48, 64, 3), sig=(1, 48, 64, -1)), {}, UnsupportedModelError, "3 channels;"),
    (T("image", "float32", (1, 3, 48, 64), sig=(1, -1, 48, 64)), {}, UnsupportedModelError, "64 channels;"),
    (T("image", "float32", (1, 1, 64, 3), sig=(1, -1, 64, 3)), {}, UnsupportedModelError,
     "<model bytes>: the input height/width are dynamic [1, -1, 64, 3]; "
     "pass input_size=(height, width) to choose the resolution"),
    (T("image", "float32", (1, 48, 1, 3), sig=(1, 48, -1, 3)), {}, UnsupportedModelError,
     "<model bytes>: the input height/width are dynamic [1, 48, -1, 3]; "
     "pass input_size=(height, width) to choose the resolution"),
    (IMG, {"input_size": (40, 56)}, InvalidArgumentError,
     "input_size: the model's input is fixed at 48x64; it cannot run at 40x56 "
     "(only models exported with a dynamic height/width can be resized)"),
    (IMG, {"input_size": "ab"}, InvalidArgumentError, "input_size: expected (height, width), got 'ab'"),
    (IMG, {"input_size": (0, 64)}, InvalidArgumentError,
     "input_size: expected positive (height, width), got (0, 64)"),
    (IMG, {"input_size": (48,)}, InvalidArgumentError, "input_size: expected positive (height, width), got (48,)"),
    (T("image", "uint8", (1, 48, 64, 3), scale=(0.1, 0.2, 0.3), zp=(0, 0, 0)), {}, UnsupportedModelError,
     "<model bytes>: input tensor 'image' is quantised per channel (3 scales); "
     "mtkseg supports per-tensor quantisation of inputs and outputs"),
    (IMG, {"output_map_size": (0, 5)}, InvalidArgumentError,
     "output_map_size: expected positive (height, width), got (0, 5)"),
    (IMG, {"output_map_size": (5, 0)}, InvalidArgumentError,
     "output_map_size: expected positive (height, width), got (5, 0)"),
    (IMG, {"output_map_size": "ab"}, InvalidArgumentError, "output_map_size: expected (height, width), got 'ab'"),
])
def test_input_errors_are_typed_and_say_why(inp, kwargs, error, message):
    out = T("logits", "float32", (1, 48, 64, 2), index=1)
    pattern = full(message) if message.startswith(("<", "input_size", "output_map_size")) else re.escape(message)
    with pytest.raises(error, match=pattern):
        describe_model(M(inp, (out,)), **kwargs)
    if "output_map_size" not in kwargs and "per channel" not in message:
        with pytest.raises(error, match=pattern):
            input_plan(M(inp, (out,)), kwargs.get("input_size"))


def test_two_inputs_are_refused_naming_them():
    a, b = T("a", "float32", (1, 48, 64, 3)), T("b", "float32", (1, 48, 64, 3), index=1)
    mf = M(outs=(T("o", "float32", (1, 48, 64, 2), index=2),), inputs=(a, b))
    msg = full("<model bytes>: the model has 2 inputs ('a', 'b'); mtkseg runs single-image models")
    with pytest.raises(UnsupportedModelError, match=msg):
        describe_model(mf)
    with pytest.raises(UnsupportedModelError, match=msg):
        input_plan(mf)


# ----------------------------------------------------------------------------- value range

@pytest.mark.parametrize("dtype, scale, zp, expected", [
    # the range the 8-bit codes represent: (qmin - zp) * scale .. (qmax - zp) * scale, 3% of the span allowed
    ("uint8", 1 / 255, 0, "unit"),
    ("uint8", 0.0078125, 128, "symmetric"),  # coral deeplab (MANIFEST): s=1/128, zp=128 -> [-1, 0.99]
    ("uint8", 1.0, 0, "raw"),
    ("int8", 1 / 255, -128, "unit"),
    ("int8", 0.0078125, 0, "symmetric"),
    ("int8", 1.0, -128, "raw"),
    ("int8", 1 / 255, -121, "unit"),  # lo = -7/255 = -0.027: inside the 3% margin
    ("int8", 0.00403, -128, "unit"),  # hi = 255 * 0.00403 = 1.028
    ("uint8", 0.00403, 0, "unit"),  # hi = 1.028
    ("uint8", 0.0078125, 121, "symmetric"),  # lo = -121/128 = -0.945, hi = 134/128 = 1.047
    ("int8", 0.008273, 0, "symmetric"),  # lo = -128 * 0.008273 = -1.059, hi = 1.051
    ("uint8", 1.0, 7, "raw"),  # lo = -7, hi = 248: both within 3% of 255
    ("uint8", 0.0078125, 0, None),  # [0, 1.99]: no named range
    ("int8", 1 / 255, -110, None),  # lo = -18/255 = -0.07: outside the margin
    ("uint8", 1 / 255, 20, None),
])
def test_range_read_from_the_input_quantisation(dtype, scale, zp, expected, tmp_path):
    inp = T("image", dtype, (1, 48, 64, 3), scale=(scale,), zp=(zp,))
    out = T("logits", "float32", (1, 48, 64, 2), index=1)
    info = describe_model(M(inp, (out,), path=tmp_path / "q.tflite"))
    assert (info.input_scale, info.input_zero_point) == (scale, zp)
    if expected is None:
        assert info.normalization_source == "default"
        assert (info.mean, info.std) == ((0.0,) * 3, (255.0,) * 3)
    else:
        assert info.normalization_source == "quantization"
        assert (info.mean, info.std) == {"unit": ((0.0,) * 3, (255.0,) * 3), "raw": ((0.0,) * 3, (1.0,) * 3),
                                         "symmetric": ((127.5,) * 3, (127.5,) * 3)}[expected]


def test_a_quantised_tensor_without_zero_point_has_zero_point_zero():
    inp = T("image", "uint8", (1, 48, 64, 3), scale=(1 / 255,), zp=())
    out = T("logits", "uint8", (1, 48, 64, 2), scale=(0.5,), zp=(), index=1)
    info = describe_model(M(inp, (out,)))
    assert (info.input_zero_point, info.output_zero_point, info.normalization_source) == (0, 0, "quantization")


def test_normalization_precedence_and_override_log(tmp_path, caplog):
    out = T("logits", "float32", (1, 48, 64, 2), index=1)
    path = tmp_path / "n.tflite"
    _sidecar(path, normalization={"mean": [10, 20, 30], "std": [2, 4, 8]})
    assert describe_model(M(IMG, (out,), path=path)).normalization_source == "sidecar"
    assert describe_model(M(IMG, (out,), path=path)).mean == (10.0, 20.0, 30.0)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        info = describe_model(M(IMG, (out,), path=path), normalization="symmetric")
    assert (info.mean, info.std, info.normalization_source) == ((127.5,) * 3, (127.5,) * 3, "argument")
    assert [r.getMessage() for r in caplog.records if "overrides" in r.getMessage()] == [
        f"{path}: normalization='symmetric' overrides the value range stored with the model"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        describe_model(M(IMG, (out,)), normalization="raw")
    assert not [r for r in caplog.records if "overrides" in r.getMessage()]
    # the fixture's metadata range (127.5, 127.5) gives way to the argument too
    meta = describe_model(runtime.read_model_file(model_path("metadata")), normalization={"mean": 1, "std": 0.5})
    assert (meta.mean, meta.std, meta.normalization_source) == ((1.0,) * 3, (0.5,) * 3, "argument")


@pytest.mark.parametrize("value, expected", [
    ("UNIT", ((0.0,) * 3, (255.0,) * 3)),
    ({"mean": 10, "std": 2}, ((10.0,) * 3, (2.0,) * 3)),
    ({"std": [1, 2, 3], "mean": [4, 5, 6]}, ((4.0, 5.0, 6.0), (1.0, 2.0, 3.0))),
    ([0, 0.5], ((0.0,) * 3, (0.5,) * 3)),
])
def test_parse_normalization_values(value, expected):
    assert parse_normalization(value) == expected


@pytest.mark.parametrize("value, error, message", [
    ("bright", InvalidArgumentError,
     "normalization: expected one of ['raw', 'symmetric', 'unit'] or (mean, std), got 'bright'"),
    ({"mean": 1, "std": 2, "scale": 3}, InvalidArgumentError,
     "normalization: a dict needs exactly 'mean' and 'std', got ['mean', 'scale', 'std']"),
    ({"mean": 1}, InvalidArgumentError, "normalization: a dict needs exactly 'mean' and 'std', got ['mean']"),
    ([1, 2, 3], InvalidTypeError,
     "normalization: expected a name ('unit', 'raw', 'symmetric') or (mean, std), got [1, 2, 3]"),
    (7, InvalidTypeError, "normalization: expected a name ('unit', 'raw', 'symmetric') or (mean, std), got 7"),
    (("a", 1), InvalidArgumentError,
     "normalization: mean: expected a number or 3 numbers (one per channel), got 'a'"),
    ((1, [1, 2]), InvalidArgumentError, "normalization: std: expected one value or one per channel (3), got 2"),
    ((0, 0), InvalidArgumentError, "normalization: std must be positive, got [0.0, 0.0, 0.0]"),
    ((0, (1, -1, 1)), InvalidArgumentError, "normalization: std must be positive, got [1.0, -1.0, 1.0]"),
])
def test_parse_normalization_errors(value, error, message):
    with pytest.raises(error, match=full(message)):
        parse_normalization(value)


# ----------------------------------------------------------------------------- output tensors

N_IN = 48 * 64


@pytest.mark.parametrize("out, producer, kwargs, expected", [
    # expected: kind, layout, output_size, num_classes, flattened, output_map_shape
    (T("o", "float32", (1, 48, 64, 5)), "CONV_2D", {}, ("logits", "nhwc", (48, 64), 5, False, (1, 48, 64, 5))),
    (T("o", "float32", (1, 48, 64, 5)), "SOFTMAX", {}, ("probabilities", "nhwc", (48, 64), 5, False, (1, 48, 64, 5))),
    (T("o", "uint8", (1, 48, 64, 5), scale=(0.1,), zp=(3,)), "", {},
     ("logits", "nhwc", (48, 64), 5, False, (1, 48, 64, 5))),
    (T("o", "float32", (1, 5, 48, 64)), "", {}, ("logits", "nchw", (48, 64), 5, False, (1, 5, 48, 64))),
    (T("o", "float32", (1, 5, 48, 64), sig=(1, 5, -1, -1)), "", {}, ("logits", "nchw", (48, 64), 5, False,
                                                                     (1, 5, 48, 64))),
    (T("o", "float32", (1, 48, 64, 5), sig=(1, -1, -1, 5)), "", {}, ("logits", "nhwc", (48, 64), 5, False,
                                                                     (1, 48, 64, 5))),
    (T("o", "float32", (1, 6, 8, 3)), "", {}, ("logits", "nhwc", (6, 8), 3, False, (1, 6, 8, 3))),  # stride 8
    (T("o", "float32", (1, 2, 6, 8)), "", {}, ("logits", "nchw", (6, 8), 2, False, (1, 2, 6, 8))),
    # both (h, w) pairs have the input's 3:4 ratio: NHWC unless the signature says otherwise
    (T("o", "float32", (1, 9, 12, 16)), "", {}, ("logits", "nhwc", (9, 12), 16, False, (1, 9, 12, 16))),
    # declared dynamic maps (placeholder 1s): the dynamic axes say the layout, not the ratio of the placeholders
    (T("o", "float32", (1, 3, 4, 1), sig=(1, 3, -1, -1)), "", {}, ("logits", "nchw", (4, 1), 3, False, (1, 3, 4, 1))),
    (T("o", "float32", (1, 1, 3, 4), sig=(1, -1, -1, 4)), "", {}, ("logits", "nhwc", (1, 3), 4, False, (1, 1, 3, 4))),
    (T("o", "float32", (1, 1, 3, 4), sig=(1, -1, 3, 4)), "", {}, ("logits", "nhwc", (1, 3), 4, False, (1, 1, 3, 4))),
    # every axis dynamic: the ratio of the declared (h, w) decides
    (T("o", "float32", (1, 48, 64, 5), sig=(1, -1, -1, -1)), "", {},
     ("logits", "nhwc", (48, 64), 5, False, (1, 48, 64, 5))),
    (T("o", "float32", (1, 2, 48, 64), sig=(1, -1, -1, -1)), "", {},
     ("logits", "nchw", (48, 64), 2, False, (1, 2, 48, 64))),
    (T("o", "uint8", (1, 48, 64, 5)), "", {}, ("logits", "nhwc", (48, 64), 5, False, (1, 48, 64, 5))),  # unquantised
    (T("o", "int64", (1, 48, 64)), "ARG_MAX", {}, ("class_index", "nhwc", (48, 64), None, False, (48, 64))),
    (T("o", "int32", (1, 48, 64, 1)), "ARG_MAX", {}, ("class_index", "nhwc", (48, 64), None, False, (48, 64))),
    (T("o", "int32", (48, 64)), "ARG_MAX", {}, ("class_index", "nhwc", (48, 64), None, False, (48, 64))),
    (T("o", "int8", (48, 64)), "", {}, ("class_index", "nhwc", (48, 64), None, False, (48, 64))),
    (T("o", "uint8", (24, 32)), "", {}, ("class_index", "nhwc", (24, 32), None, False, (24, 32))),
    (T("o", "float32", (1, 48, 64, 1)), "LOGISTIC", {}, ("binary_probability", "nhwc", (48, 64), 2, False, (48, 64))),
    (T("o", "float32", (1, 48, 64, 1)), "CONV_2D", {}, ("binary_logit", "nhwc", (48, 64), 2, False, (48, 64))),
    (T("o", "float16", (1, 48, 64)), "LOGISTIC", {}, ("binary_probability", "nhwc", (48, 64), 2, False, (48, 64))),
    (T("o", "uint8", (1, 48, 64, 1), scale=(1 / 255,), zp=(0,)), "", {},
     ("binary_logit", "nhwc", (48, 64), 2, False, (48, 64))),
    (T("o", "float32", (1, N_IN)), "LOGISTIC", {}, ("binary_probability", "nhwc", (48, 64), 2, True, (48, 64))),
    (T("o", "float32", (1, N_IN * 5)), "", {}, ("logits", "nhwc", (48, 64), 5, True, (1, 48, 64, 5))),
    (T("o", "float32", (1, 24 * 32 * 2)), "", {}, ("logits", "nhwc", (24, 32), 2, True, (1, 24, 32, 2))),
    (T("o", "float32", (1, 12 * 16 * 3)), "", {}, ("logits", "nhwc", (12, 16), 3, True, (1, 12, 16, 3))),
    (T("o", "float32", (1, N_IN * 256)), "", {}, ("logits", "nhwc", (48, 64), 256, True, (1, 48, 64, 256))),
    (T("o", "int32", (1, N_IN)), "ARG_MAX", {}, ("class_index", "nhwc", (48, 64), None, True, (48, 64))),
    (T("o", "float32", (1, 600)), "", {"output_map_size": (10, 20)},
     ("logits", "nhwc", (10, 20), 3, True, (1, 10, 20, 3))),
    (T("o", "float32", (1, 15)), "", {"output_map_size": (1, 5)}, ("logits", "nhwc", (1, 5), 3, True, (1, 1, 5, 3))),
    (T("o", "float32", (1, 15)), "", {"output_map_size": [5, 1]}, ("logits", "nhwc", (5, 1), 3, True, (1, 5, 1, 3))),
])
def test_output_kinds(out, producer, kwargs, expected, caplog):
    out = replace(out, index=9)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        info = describe_model(M(IMG, (out,), producers={9: producer}), **kwargs)
    got = (info.output_kind, info.output_layout, info.output_size, info.num_classes, info.output_flattened,
           info.output_map_shape)
    assert got == expected
    assert info.num_classes is None or type(info.num_classes) is int
    assert all(type(v) is int for v in info.output_size)
    assert info.has_scores == (expected[0] in ("logits", "probabilities"))
    if expected[3] is None:
        assert (info.class_names, info.labels_source, len(info.palette)) == ((), "none", 256)
    else:
        assert info.class_names == tuple(f"class_{i}" for i in range(expected[3]))
        assert info.labels_source == "generated" and len(info.palette) == expected[3]
    flat = [r.getMessage() for r in caplog.records if "flattened map" in r.getMessage()]
    if expected[4]:
        h, w = expected[2]
        assert flat == [f"<model bytes>: output 'o' {list(out.shape)} is a flattened map; read as {h}x{w} x "
                        f"{expected[3] or 1}"]
    else:
        assert flat == []


def test_flattened_map_at_exactly_the_minimum_size():
    # an 8x8 input: 64 pixels is the smallest map a flat output is unflattened to
    inp = T("image", "float32", (1, 8, 8, 3))
    info = describe_model(M(inp, (T("o", "float32", (1, 128), index=1),)))
    assert (info.output_size, info.num_classes, info.output_flattened) == ((8, 8), 2, True)


@pytest.mark.parametrize("inp, out, kwargs, error, message", [
    (IMG, T("o", "float32", (1, 1000)), {}, UnsupportedModelError,
     "<model bytes>: output 'o' [1, 1000] float32 is not a segmentation map: a flat [1, N] output must hold an "
     "h x w (x C) map; 1000 values fit no fraction of the 48x64 input (pass output_map_size=(h, w) if it is one)"),
    (IMG, T("o", "float32", (1, N_IN * 257)), {}, UnsupportedModelError, "values fit no fraction"),
    # 48x66: halves are 24x33, quarters would need 66 % 4 == 0
    (T("image", "float32", (1, 48, 66, 3)), T("o", "float32", (1, 12 * 16 * 3)), {}, UnsupportedModelError,
     "<model bytes>: output 'o' [1, 576] float32 is not a segmentation map: a flat [1, N] output must hold an "
     "h x w (x C) map; 576 values fit no fraction of the 48x66 input (pass output_map_size=(h, w) if it is one)"),
    (IMG, T("o", "float32", (1, 610)), {"output_map_size": (10, 20)}, InvalidArgumentError,
     "output_map_size: <model bytes>: output 'o' [1, 610] float32 holds 610 values, which is not a multiple of "
     "10x20; pass the (height, width) the model flattened"),
    (IMG, T("o", "float32", (1, 48, 64, 2)), {"output_map_size": (48, 64)}, InvalidArgumentError,
     "output_map_size: output 'o' [1, 48, 64, 2] is not flattened; output_map_size only applies to [1, h*w*C] "
     "outputs"),
    (IMG, T("o", "float32", (2, 48, 64, 2)), {}, UnsupportedModelError,
     "<model bytes>: output 'o' [2, 48, 64, 2] float32 is not a segmentation map: expected (1, h, w, C) / "
     "(1, C, h, w) scores, (1, h, w[, 1]) / (h, w) class indices, (1, h, w, 1) one-channel scores or a "
     "flattened (1, h*w*C) map"),
    (IMG, T("o", "float32", (48, 64)), {}, UnsupportedModelError, "is not a segmentation map"),  # floats: not indices
    (IMG, T("o", "int32", (5, 30)), {}, UnsupportedModelError, "is not a segmentation map"),  # not the input's shape
    (IMG, T("o", "float32", (1, N_IN), sig=(1, -1)), {}, UnsupportedModelError,  # a dynamic vector is no flat map
     "<model bytes>: output 'o' [1, -1] float32 is not a segmentation map: expected (1, h, w, C) / "
     "(1, C, h, w) scores, (1, h, w[, 1]) / (h, w) class indices, (1, h, w, 1) one-channel scores or a "
     "flattened (1, h*w*C) map"),
    (IMG, T("o", "int32", (1, 48, 64, 5)), {}, UnsupportedModelError,
     "<model bytes>: output 'o' [1, 48, 64, 5] int32: integer output with several channels is neither scores nor "
     "class indices"),
    (IMG, T("o", "bool", (1, 48, 64, 5)), {}, UnsupportedModelError,
     "<model bytes>: output 'o' [1, 48, 64, 5] bool: score outputs must be float32/float16/int8/uint8"),
    (IMG, T("o", "bool", (1, 48, 64, 1)), {}, UnsupportedModelError,
     "<model bytes>: output 'o' [1, 48, 64, 1] bool: one-channel score output must be float32/float16/int8/uint8"),
    (IMG, T("o", "int16", (1, 48, 64)), {}, UnsupportedModelError,
     "<model bytes>: output 'o' [1, 48, 64] int16: one-channel score output must be float32/float16/int8/uint8"),
    (IMG, T("o", "float32", (1, 1, 48, 64), sig=(1, 1, 48, -1)), {}, UnsupportedModelError,
     "<model bytes>: output 'o' [1, 1, 48, -1] float32: a score map needs at least 2 classes"),
    (IMG, T("o", "int8", (1, 48, 64, 2), scale=(0.1, 0.2), zp=(0, 0)), {}, UnsupportedModelError,
     "<model bytes>: output tensor 'o' is quantised per channel (2 scales); "
     "mtkseg supports per-tensor quantisation of inputs and outputs"),
])
def test_output_errors_are_typed_and_say_why(inp, out, kwargs, error, message):
    pattern = full(message) if message.startswith(("<", "output_map_size")) else re.escape(message)
    with pytest.raises(error, match=pattern):
        describe_model(M(inp, (replace(out, index=4),)), **kwargs)


def test_when_no_output_is_a_map_every_reason_is_given():
    with pytest.raises(UnsupportedModelError, match=full(
            "<model bytes>: output 'o0' [1, 195] float32 is not a segmentation map: a flat [1, N] output must hold "
            "an h x w (x C) map; 195 values fit no fraction of the 48x64 input (pass output_map_size=(h, w) if it "
            "is one); <model bytes>: output 'o1' [1, 48, 64, 5] int32: integer output with several channels is "
            "neither scores nor class indices")):
        describe_model(M(IMG, (T("o0", "float32", (1, 195), index=1), T("o1", "int32", (1, 48, 64, 5), index=2))))


def test_metadata_warnings_name_the_model(tmp_path, caplog):
    # dynamic_metadata's metadata names labels.txt, which make_models.py does not attach
    copy = tmp_path / "named.tflite"
    shutil.copy(model_path("dynamic_metadata"), copy)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        info = describe_model(runtime.read_model_file(copy))
    assert info.labels_source == "generated"
    assert [r.getMessage() for r in caplog.records if "label file" in r.getMessage()] == [
        f"{copy}: metadata names the label file 'labels.txt' but the model carries no such file; class names are "
        "generated (pass labels=[...] to name them)"]


def test_a_model_without_outputs():
    with pytest.raises(UnsupportedModelError, match=full("<model bytes>: the model has no outputs")):
        describe_model(M(IMG, ()))


# ----------------------------------------------------------------------------- several outputs

def _outs(*shapes):
    return tuple(T(f"o{i}", "float32", s, index=20 + i) for i, s in enumerate(shapes))


@pytest.mark.parametrize("shapes, chosen", [
    # like MediaPipe's pose landmarker: vectors beside the maps; the largest map wins
    (((1, 195), (1, 12, 16, 3), (1, 48, 64, 2), (1, 117)), 2),
    (((1, 48, 64, 2), (1, 24, 24, 2)), 0),  # area, not aspect ratio
    (((1, 48, 64, 2), (1, 96, 40, 2)), 1),  # 3840 > 3072 pixels (not the wider one)
    (((1, 48, 64, 2), (1, 48, 64, 3)), 0),  # a tie goes to the first
    (((1, N_IN * 2), (1, 48, 64, 2)), 1),  # a tie between a flat and a real map goes to the real one
    (((1, 48, 64, 2), (1, N_IN * 2)), 0),
])
def test_the_largest_map_among_several_outputs(shapes, chosen, caplog):
    outs = _outs(*shapes)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        info = describe_model(M(IMG, outs))
    assert (info.output_index, info.output_name, info.num_outputs) == (chosen, f"o{chosen}", len(shapes))
    maps = [o for o in outs if len(o.shape) == 4 or o.shape[1] % N_IN == 0]
    logs = [r.getMessage() for r in caplog.records if "look like maps" in r.getMessage()]
    assert logs == [
        f"<model bytes>: {len(maps)} outputs look like maps ({', '.join(repr(o.name) for o in maps)}); "
        f"using output {chosen} 'o{chosen}', the largest (output= picks another)"]


def test_one_map_logs_no_choice(caplog):
    with caplog.at_level(logging.INFO, logger=LOGGER):
        info = describe_model(M(IMG, _outs((1, 195), (1, 48, 64, 2))))
    assert info.output_index == 1
    assert not [r for r in caplog.records if "look like maps" in r.getMessage()]


def test_output_argument_picks_by_index_or_name():
    outs = _outs((1, 12, 16, 3), (1, 48, 64, 2), (1, 195))
    mf = M(IMG, outs)
    for output in (0, np.int64(0), "o0"):
        info = describe_model(mf, output=output)
        assert (info.output_index, info.output_name, info.output_size, info.num_classes) == (0, "o0", (12, 16), 3)
    assert describe_model(mf, output=1).output_index == 1
    assert describe_model(mf, output="o1").output_size == (48, 64)
    with pytest.raises(UnsupportedModelError, match=full(
            "<model bytes>: output 'o2' [1, 195] float32 is not a segmentation map: a flat [1, N] output must hold "
            "an h x w (x C) map; 195 values fit no fraction of the 48x64 input (pass output_map_size=(h, w) if it "
            "is one)")):
        describe_model(mf, output=2)


@pytest.mark.parametrize("output, error, message", [
    ("nope", InvalidArgumentError,
     "output: <model bytes> has no output named 'nope'; its outputs are ['o0', 'o1', 'o2']"),
    (3, InvalidArgumentError, "output: index 3 outside 0..2 (<model bytes> outputs ['o0', 'o1', 'o2'])"),
    (-1, InvalidArgumentError, "output: index -1 outside 0..2 (<model bytes> outputs ['o0', 'o1', 'o2'])"),
    (True, InvalidTypeError, "output: expected an output index or name, got bool"),
    (1.0, InvalidTypeError, "output: expected an output index or name, got float"),
])
def test_output_argument_errors(output, error, message):
    with pytest.raises(error, match=full(message)):
        describe_model(M(IMG, _outs((1, 12, 16, 3), (1, 48, 64, 2), (1, 195))), output=output)


def test_allocated_tensors_replace_stale_declared_shapes(caplog):
    # a TF1 ARG_MAX declared [1, H, W, C] that the interpreter allocates as [1, H, W]
    declared = T("ArgMax", "int64", (1, 48, 64, 5), index=3)
    allocated = replace(declared, shape=(1, 48, 64))  # the signature still says [1, H, W, C]
    mf = M(IMG, (declared,))
    with pytest.raises(UnsupportedModelError, match="integer output with several channels"):
        describe_model(mf)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        info = describe_model(mf, tensors=([IMG], [allocated]))
    assert (info.output_kind, info.output_shape, info.tensors_source) == ("class_index", (1, 48, 64), "interpreter")
    assert info.outputs == ("ArgMax [1, 48, 64] int64",)
    assert [r.getMessage() for r in caplog.records if "declared" in r.getMessage()] == [
        "<model bytes>: tensor 'ArgMax' is declared [1, 48, 64, 5] int64 in the file but allocated [1, 48, 64] "
        "int64 by the interpreter; using the allocated tensor"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        same = describe_model(M(IMG, (allocated,)), tensors=((IMG,), [allocated]))
    assert same.tensors_source == "interpreter"
    assert not [r for r in caplog.records if "declared" in r.getMessage()]
    # the allocated input is used as well
    wide = T("image", "float32", (1, 40, 56, 3), sig=(1, -1, -1, 3))
    dyn = M(replace(wide, shape=(1, 1, 1, 3)), (T("o", "float32", (1, 1, 1, 2), sig=(1, -1, -1, 2), index=3),))
    info = describe_model(dyn, tensors=((wide,), (T("o", "float32", (1, 40, 56, 2), sig=(1, -1, -1, 2), index=3),)))
    assert (info.input_size, info.output_size, info.input_shape) == ((40, 56), (40, 56), (1, 40, 56, 3))
    with pytest.raises(InvalidArgumentError, match=full(
            "tensors: 1 inputs / 2 outputs given for a model with 1 / 1")):
        describe_model(mf, tensors=((IMG,), (allocated, allocated)))
    with pytest.raises(InvalidArgumentError, match=full(
            "tensors: 2 inputs / 1 outputs given for a model with 1 / 1")):
        describe_model(mf, tensors=((IMG, IMG), (allocated,)))


# ----------------------------------------------------------------------------- labels and palette

def test_labels_argument_sidecar_and_one_label_foreground(tmp_path, caplog):
    scores = T("o", "float32", (1, 48, 64, 3), index=1)
    info = describe_model(M(IMG, (scores,)), labels=["a", "b", "c"])
    assert (info.class_names, info.labels_source) == (("a", "b", "c"), "argument")
    with pytest.raises(InvalidArgumentError, match=full("labels: 2 names for a model with 3 classes")):
        describe_model(M(IMG, (scores,)), labels=["a", "b"])
    path = tmp_path / "l.tflite"
    _sidecar(path, labels=["x", "y"])
    with pytest.raises(InvalidModelError, match=full(
            f"{path}: the sidecar lists 2 labels but the model outputs 3 classes; "
            "fix the label list or pass labels=[...]")):
        describe_model(M(IMG, (scores,), path=path))
    # the argument wins over the sidecar
    assert describe_model(M(IMG, (scores,), path=path), labels=["a", "b", "c"]).labels_source == "argument"

    # class indices carry no class count: the names give it
    argmax = T("o", "int32", (1, 48, 64), index=1)
    info = describe_model(M(IMG, (argmax,), path=path))
    assert (info.num_classes, info.class_names, info.labels_source, len(info.palette)) == (2, ("x", "y"), "sidecar", 2)

    sigmoid = T("o", "float32", (1, 48, 64, 1), index=1)
    for kind, producer in (("binary_probability", "LOGISTIC"), ("binary_logit", "")):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger=LOGGER):
            info = describe_model(M(IMG, (sigmoid,), producers={1: producer}), labels=["person"])
        assert (info.output_kind, info.class_names, info.num_classes) == (kind, ("background", "person"), 2)
        assert [r.getMessage() for r in caplog.records if "foreground" in r.getMessage()] == [
            "<model bytes>: the one label 'person' names the foreground of a one-channel model; class 0 is "
            "'background'"]
    two = describe_model(M(IMG, (sigmoid,)), labels=["bg", "fg"])
    assert two.class_names == ("bg", "fg")
    with pytest.raises(InvalidArgumentError, match="labels: 1 names for a model with 3 classes"):
        describe_model(M(IMG, (scores,)), labels=["person"])  # only one-channel models name the foreground


def test_sidecar_palette_too_short_for_the_classes_is_not_used(tmp_path):
    path = tmp_path / "p.tflite"
    _sidecar(path, palette=[[1, 2, 3], [4, 5, 6]])
    info = describe_model(M(IMG, (T("o", "float32", (1, 48, 64, 3), index=1),), path=path))
    assert info.palette_source == "default (the sidecar's palette lists 2 colours for 3 classes)"
    assert len(info.palette) == 3 and info.palette[1] != (4, 5, 6)
    info = describe_model(M(IMG, (T("o", "float32", (1, 48, 64, 2), index=1),), path=path))
    assert (info.palette_source, info.palette) == ("sidecar", ((1, 2, 3), (4, 5, 6)))


def test_sidecar_fixture():
    # make_models.py writes sidecar.json: labels background/road/car, palette, mean/std, rgb, ignore 255
    info = describe_model(runtime.read_model_file(model_path("sidecar")))
    assert (info.class_names, info.labels_source) == (("background", "road", "car"), "sidecar")
    assert info.palette == ((0, 0, 0), (128, 64, 128), (64, 0, 128)) and info.palette_source == "sidecar"
    assert (info.mean, info.std, info.normalization_source) == ((123.7, 116.3, 103.5), (58.4, 57.1, 57.4), "sidecar")
    assert (info.color_order, info.ignore_index) == ("rgb", 255)
    assert info.sidecar == str(Path(model_path("sidecar")).with_suffix(".json"))


# ----------------------------------------------------------------------------- with_shapes

def test_with_shapes_follows_the_allocated_shapes():
    nchw = describe_model(M(T("image", "float32", (1, 3, 48, 64)), (T("o", "float32", (1, 5, 48, 64), index=1),)))
    moved = nchw.with_shapes((1, 3, 40, 56), [1, 5, 20, 28])
    assert (moved.input_shape, moved.input_size, moved.output_shape, moved.output_size) == (
        (1, 3, 40, 56), (40, 56), (1, 5, 20, 28), (20, 28))
    assert moved.output_map_shape == (1, 5, 20, 28)
    with pytest.raises(UnsupportedModelError, match=full(
            "<model bytes>: the runtime allocated input image as [1, 3, 40], but a NCHW image input needs at least "
            "4 dimensions; the model's shapes are inconsistent (re-export it with a fixed [1, H, W, C] input)")):
        nchw.with_shapes((1, 3, 40), (1, 5, 20, 28))
    with pytest.raises(UnsupportedModelError, match=full(
            "<model bytes>: the runtime produced output o of shape [1, 5, 20], which is not a NCHW segmentation "
            "map (it needs 4 dimensions); pass output= to pick another output or re-export the model")):
        nchw.with_shapes((1, 3, 40, 56), (1, 5, 20))

    nhwc = describe_model(M(IMG, (T("o", "int32", (48, 64), index=1),)))
    moved = nhwc.with_shapes((1, 40, 56, 3), (40, 56))  # class indices without a batch axis
    assert (moved.input_size, moved.output_size, moved.output_map_shape) == ((40, 56), (40, 56), (40, 56))
    assert nhwc.with_shapes((1, 40, 56), (1, 40, 56)).output_size == (40, 56)  # 3 input dims are enough for NHWC
    with pytest.raises(UnsupportedModelError, match="which is not a NHWC segmentation map"):
        nhwc.with_shapes((1, 40, 56, 3), (2240,))

    flat = describe_model(M(IMG, (T("o", "float32", (1, N_IN * 2), index=1),)))
    moved = flat.with_shapes((1, 48, 64, 3), (1, N_IN * 2))
    assert (moved.output_size, moved.output_shape) == ((48, 64), (1, N_IN * 2))
    assert flat.with_shapes((1, 48, 64, 3), (N_IN * 2,)).output_size == (48, 64)  # a flat map keeps its size


# ----------------------------------------------------------------------------- aspect ratio

@pytest.mark.parametrize("a, b, ih, iw, expected", [
    # the check that says whether an (a, b) map is the input's (ih, iw) at some scale: one pixel of
    # rounding (|a * iw - b * ih| <= max(ih, iw)) and a scale between 1/64 and 4
    (48, 64, 48, 64, True),
    (6, 8, 48, 64, True),
    (10, 11, 10, 10, True),  # |100 - 110| = 10: one pixel off
    (10, 12, 10, 10, False),
    (8, 8, 512, 512, True),  # 1/64 of the input
    (10, 10, 645, 645, False),  # 1/64.5
    (40, 40, 10, 10, True),  # 4x the input
    (45, 45, 10, 10, False),
    (1, 10, 1, 10, True),
    (10, 1, 10, 1, True),
    (2, 0, 100, 10, False),  # an empty map matches nothing
    (0, 5, 10, 10, False),
    (1, 1, 10, 0, False),
    (1, 1, 0, 10, False),
])
def test_ratio_matches(a, b, ih, iw, expected):
    assert info_mod._ratio_matches(a, b, ih, iw) is expected
