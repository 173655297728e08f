"""The input of RGB + mask models: three colour channels and the previous frame's mask.

MediaPipe's legacy hair model (and others of its kind) take ``(1, h, w, 4)``: the frame in
channels 1-3 and, in channel 4, the foreground probability the model produced for the
previous frame (0 for the first frame).  :func:`write_prior_input` fills such a tensor: the
colour channels go through :func:`mtkseg.ops.preprocess` (into a 3-channel scratch array,
then copied: the one extra copy these models cost), the prior is resized onto the same
region of the input (letterbox padding stays 0) and, for quantised inputs, quantised with
the input's scale and zero point.  Prior values are written as they are (probabilities in
[0, 1]), which is what these models were trained on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

import cv2
import numpy as np

from . import ops

if TYPE_CHECKING:  # pragma: no cover
    from .segmenter import Segmenter

__all__ = ["write_prior_input"]


def _prior_plane(prior: Union[float, np.ndarray], hw: tuple, geometry: ops.InputGeometry) -> np.ndarray:
    h, w = hw
    if not isinstance(prior, np.ndarray):
        return np.full((h, w), float(prior), dtype=np.float32)
    plane = np.zeros((h, w), dtype=np.float32)
    x0, y0, cw, ch = geometry.crop
    if cw > 0 and ch > 0:
        plane[y0 : y0 + ch, x0 : x0 + cw] = cv2.resize(prior, (cw, ch), interpolation=cv2.INTER_LINEAR)
    return plane


def write_prior_input(seg: "Segmenter", image: np.ndarray, color: str, dst: np.ndarray,
                      prior: Union[float, np.ndarray]) -> ops.InputGeometry:
    """Write ``image`` and ``prior`` into the 4-channel model input ``dst`` (NHWC or NCHW)."""
    info = seg.info
    nchw = info.input_layout == "nchw"
    rgb_shape = (dst.shape[0], 3) + dst.shape[2:] if nchw else dst.shape[:-1] + (3,)
    rgb = np.empty(rgb_shape, dtype=dst.dtype)
    geometry = ops.preprocess(
        image, rgb, color=color, model_color=seg._model_color, layout=info.input_layout,
        interpolation=seg._interpolation, fit=seg._fit, pad_value=0.0, mean=info.mean, std=info.std, **seg._in_q,
    )
    hw = (dst.shape[2], dst.shape[3]) if nchw else (dst.shape[1], dst.shape[2])
    plane = _prior_plane(prior, hw, geometry)
    if info.input_scale is not None:
        lo, hi = (-128, 127) if dst.dtype == np.int8 else (0, 255)
        plane = np.clip(np.rint(plane / info.input_scale) + int(info.input_zero_point or 0), lo, hi)
    if nchw:
        dst[:, :3] = rgb
        dst[0, 3] = plane
    else:
        dst[..., :3] = rgb
        dst[0, :, :, 3] = plane
    return geometry
