"""Keras models of the mtkseg training recipe.

:func:`unet` is the reference model: an encoder/bridge/decoder UNet with residual blocks,
2x2 average-pool downsampling, nearest-neighbour 2x upsampling, BatchNorm and a logits
output (no softmax: argmax of logits is the prediction, and the TFLite graph stays int8
end to end).

The upsampling layer (:class:`NearestUpsample2D`) duplicates pixels with concatenate + reshape
once the shape is fixed, which converts to TFLite ``CONCATENATION``/``RESHAPE`` ops that XNNPACK
runs (it has no nearest-neighbour resize; Keras 3 ``UpSampling2D`` converts to TILE chains it
cannot run either).  The model is fully convolutional: build it with
``input_shape=(None, None, 3)`` to train on crops and with a fixed shape to export.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import keras
from keras import layers

from ..errors import InvalidArgumentError

__all__ = ["NearestUpsample2D", "unet", "lite_fpn", "build_model", "ARCHS", "count_params", "count_macs", "with_input_size"]

ARCHS = ("unet", "lite0-fpn", "lite1-fpn", "lite2-fpn")


@keras.saving.register_keras_serializable(package="mtkseg")
class NearestUpsample2D(layers.Layer):
    """2x nearest-neighbour upsampling.

    With a static spatial shape (a model fixed to its input size, as ``export`` converts it)
    every pixel is duplicated by two concatenate + reshape pairs, which convert to TFLite
    ``CONCATENATION`` and ``RESHAPE``: XNNPACK runs both (it has no nearest-neighbour resize,
    so a ``RESIZE_NEAREST_NEIGHBOR`` op splits the delegated graph and runs on LiteRT's
    reference kernels).  With a dynamic shape it repeats rows and columns
    (``keras.ops.repeat``); both give exactly the same values.
    """

    def call(self, x):  # type: ignore[override]
        h, w, c = x.shape[1], x.shape[2], x.shape[3]
        if h is not None and w is not None and c is not None:
            h, w, c = int(h), int(w), int(c)
            y = keras.ops.reshape(keras.ops.concatenate([x, x], axis=-1), (-1, h, 2 * w, c))  # columns twice
            return keras.ops.reshape(keras.ops.concatenate([y, y], axis=2), (-1, 2 * h, 2 * w, c))  # rows twice
        return keras.ops.repeat(keras.ops.repeat(x, 2, axis=1), 2, axis=2)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, None if h is None else 2 * h, None if w is None else 2 * w, c)


def _conv_bn(x, filters: int, kernel: int, name: str, relu: bool = True, momentum: float = 0.9):
    x = layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=momentum, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _block(x, filters: int, name: str, residual: bool, momentum: float):
    """Two 3x3 conv+BN; with ``residual`` an identity (or 1x1 projection) shortcut is added."""
    y = _conv_bn(x, filters, 3, f"{name}_a", momentum=momentum)
    y = _conv_bn(y, filters, 3, f"{name}_b", relu=not residual, momentum=momentum)
    if not residual:
        return y
    shortcut = x
    if x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, f"{name}_proj", relu=False, momentum=momentum)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def unet(
    num_classes: int,
    base: int = 12,
    depth: int = 5,
    residual: bool = True,
    input_shape: Tuple[Optional[int], Optional[int], int] = (None, None, 3),
    name: str = "mtkseg_unet",
    bn_momentum: float = 0.9,
) -> keras.Model:
    """Build the reference UNet.

    Args:
        num_classes: number of output classes (logits channels).
        base: channels of the first level; level ``i`` has ``base * 2**i`` channels.
        depth: number of levels including the bridge (``depth - 1`` downsamplings, so input
            height and width must be divisible by ``2**(depth - 1)``).
        residual: use residual blocks (two 3x3 convs + shortcut) instead of plain ones.
        input_shape: ``(H, W, 3)``; ``None`` dims make the model fully convolutional.
        name: Keras model name.
        bn_momentum: BatchNorm moving-average momentum.  0.9 (PyTorch's 0.1) rather than
            Keras' 0.99: with ~50 steps per epoch on small data sets the moving statistics of
            0.99 lag the weights for many epochs and validation predictions collapse.

    Returns:
        A Keras model mapping float RGB in [0, 1] (B, H, W, 3) to logits (B, H, W, num_classes).
    """
    for arg, value, low in (("num_classes", num_classes, 1), ("base", base, 1), ("depth", depth, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidArgumentError(f"{arg}: expected an integer >= {low}, got {value!r}")
    if len(input_shape) != 3 or input_shape[2] != 3:
        raise InvalidArgumentError(f"input_shape: expected (H, W, 3), got {input_shape!r}")
    factor = 2 ** (depth - 1)
    for dim in input_shape[:2]:
        if dim is not None and dim % factor:
            raise InvalidArgumentError(
                f"input_shape: {input_shape[:2]} must be divisible by 2**(depth-1) = {factor}"
            )
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    skips = []
    for level in range(depth - 1):
        x = _block(x, base * 2**level, f"enc{level}", residual, bn_momentum)
        skips.append(x)
        x = layers.AveragePooling2D(2, name=f"down{level}")(x)
    x = _block(x, base * 2 ** (depth - 1), "bridge", residual, bn_momentum)
    for level in reversed(range(depth - 1)):
        x = NearestUpsample2D(name=f"up{level}")(x)
        x = layers.Concatenate(name=f"cat{level}")([x, skips[level]])
        x = _block(x, base * 2**level, f"dec{level}", residual, bn_momentum)
    logits = layers.Conv2D(num_classes, 1, name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def _sep_conv(x, filters: int, name: str, momentum: float):
    """Depthwise 3x3 + BN + ReLU, then pointwise 1x1 + BN + ReLU (a cheap 3x3 refinement)."""
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = layers.ReLU(name=f"{name}_dw_relu")(layers.BatchNormalization(momentum=momentum, name=f"{name}_dw_bn")(x))
    return _conv_bn(x, filters, 1, f"{name}_pw", momentum=momentum)


def lite_fpn(
    num_classes: int,
    variant: str = "lite0",
    channels: int = 96,
    head_channels: int = 64,
    input_shape: Tuple[Optional[int], Optional[int], int] = (None, None, 3),
    name: Optional[str] = None,
    bn_momentum: float = 0.9,
    output_stride: int = 4,
    fine_channels: int = 24,
) -> keras.Model:
    """EfficientNet-Lite encoder + a light FPN decoder with logits at 1/4 (or 1/2) of the input.

    The decoder gates the stride-32 features with a global-context branch (LR-ASPP's
    ``sigmoid(conv(global pool))``), then walks down strides 16, 8 and 4: nearest 2x upsample,
    add a 1x1 projection of the encoder's features, refine with a depthwise-separable 3x3.
    Every op converts to a plain TFLite builtin that XNNPACK runs and int8 quantises well
    (CONV_2D, DEPTHWISE_CONV_2D, ADD, MUL, MEAN, LOGISTIC, CONCATENATION, RESHAPE): one
    XNNPACK partition.

    ``output_stride=2`` adds a residual refinement at 1/2: the stride-4 logits, upsampled
    (nearest), plus a correction computed from the decoder's stride-4 features and the
    encoder's stride-2 features (``fine_channels`` wide).  The correction's last convolution
    starts at zero, so a stride-2 model initialised from stride-4 weights
    (``--init-weights``) starts out predicting exactly what the stride-4 model did; thin
    classes (poles, signs, pedestrians) are what the finer logits are for.

    Input height and width must be multiples of 32.  Returns a Keras model mapping RGB in
    [0, 1] ``(B, H, W, 3)`` to logits ``(B, H/s, W/s, num_classes)`` for ``s = output_stride``;
    the Segmenter resizes them to the frame.
    """
    from .efficientnet_lite import VARIANTS, encoder_features

    if variant not in VARIANTS:
        raise InvalidArgumentError(f"variant: expected one of {sorted(VARIANTS)}, got {variant!r}")
    if output_stride not in (2, 4) or isinstance(output_stride, bool):
        raise InvalidArgumentError(f"output_stride: expected 2 or 4, got {output_stride!r}")
    for arg, value in (("num_classes", num_classes), ("channels", channels), ("head_channels", head_channels),
                       ("fine_channels", fine_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(f"{arg}: expected an integer >= 1, got {value!r}")
    if len(input_shape) != 3 or input_shape[2] != 3:
        raise InvalidArgumentError(f"input_shape: expected (H, W, 3), got {input_shape!r}")
    for dim in input_shape[:2]:
        if dim is not None and dim % 32:
            raise InvalidArgumentError(f"input_shape: {input_shape[:2]} must be divisible by 32")
    m = bn_momentum
    inputs = keras.Input(shape=input_shape, name="image")
    c2, c4, c8, c16, c32 = encoder_features(inputs, variant, bn_momentum, strides=(2, 4, 8, 16, 32))
    # global context gate on the deepest features
    ctx = layers.GlobalAveragePooling2D(keepdims=True, name="dec_ctx_pool")(c32)
    ctx = layers.Conv2D(channels, 1, activation="sigmoid", name="dec_ctx_conv")(ctx)
    x = _conv_bn(c32, channels, 1, "dec_p32", momentum=m)
    x = layers.Multiply(name="dec_ctx_gate")([x, ctx])
    for stride, skip in ((16, c16), (8, c8), (4, c4)):
        x = NearestUpsample2D(name=f"dec_up{stride}")(x)
        lateral = _conv_bn(skip, channels, 1, f"dec_lat{stride}", momentum=m)
        x = layers.Add(name=f"dec_add{stride}")([x, lateral])
        x = _sep_conv(x, head_channels if stride == 4 else channels, f"dec_ref{stride}", m)
    logits = layers.Conv2D(num_classes, 1, name="logits")(x)
    if output_stride == 2:
        r = NearestUpsample2D(name="dec_up2")(_conv_bn(x, fine_channels, 1, "dec_fine", momentum=m))
        r = layers.Add(name="dec_add2")([r, _conv_bn(c2, fine_channels, 1, "dec_lat2", momentum=m)])
        r = _sep_conv(r, fine_channels, "dec_ref2", m)
        correction = layers.Conv2D(num_classes, 1, kernel_initializer="zeros", name="logits_fine")(r)
        logits = layers.Add(name="logits_add")([NearestUpsample2D(name="logits_up")(logits), correction])
    return keras.Model(inputs, logits, name=name or f"mtkseg_{variant}_fpn")


def build_model(arch: str, num_classes: int, **kw) -> keras.Model:
    """Build one of :data:`ARCHS` (``unet`` takes base/depth/residual, ``*-fpn`` channels)."""
    if arch == "unet":
        keys = ("base", "depth", "residual", "bn_momentum")
        return unet(num_classes, **{k: v for k, v in kw.items() if k in keys})
    if arch in ARCHS:
        keys = ("channels", "head_channels", "bn_momentum", "output_stride", "fine_channels")
        return lite_fpn(num_classes, variant=arch.split("-")[0], **{k: v for k, v in kw.items() if k in keys})
    raise InvalidArgumentError(f"arch: expected one of {ARCHS}, got {arch!r}")


def count_params(model: keras.Model) -> int:
    """Number of parameters (trainable and BatchNorm statistics)."""
    return int(model.count_params())


def count_macs(model: keras.Model, input_hw: Sequence[int]) -> int:
    """Multiply-accumulates of one forward pass at ``input_hw`` (convolutions and depthwise convolutions).

    Counts every Conv2D as ``H_out * W_out * k_h * k_w * C_in * C_out``; BN/ReLU/add/pool/resize
    are elementwise and negligible next to the convolutions (and BN folds into the conv).
    """
    h, w = (int(v) for v in input_hw)
    fixed = with_input_size(model, (h, w))
    total = 0
    for layer in fixed.layers:
        if isinstance(layer, layers.DepthwiseConv2D):
            out = layer.output.shape
            kh, kw, cin, mult = layer.kernel.shape
            total += int(out[1]) * int(out[2]) * int(kh) * int(kw) * int(cin) * int(mult)
        elif isinstance(layer, layers.Conv2D):
            out = layer.output.shape
            kh, kw, cin, cout = layer.kernel.shape
            total += int(out[1]) * int(out[2]) * int(kh) * int(kw) * int(cin) * int(cout)
    return total


def with_input_size(model: keras.Model, input_hw: Sequence[int]) -> keras.Model:
    """A copy of a functional model whose input is fixed to ``input_hw`` (same weights).

    Used to export a model trained on crops at the deployment size, and to count MACs.
    """
    h, w = (int(v) for v in input_hw)
    if tuple(model.inputs[0].shape[1:3]) == (h, w):
        return model
    config = model.get_config()
    for layer_cfg in config["layers"]:
        if layer_cfg["class_name"] == "InputLayer":
            shape = list(layer_cfg["config"]["batch_shape"])
            layer_cfg["config"]["batch_shape"] = [shape[0], h, w, shape[3]]
    fixed = keras.Model.from_config(config, custom_objects={"NearestUpsample2D": NearestUpsample2D})
    fixed.set_weights(model.get_weights())
    return fixed
