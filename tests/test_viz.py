"""Overlay / colorize kernels and palettes against numpy references."""

from __future__ import annotations

import numpy as np
import pytest

from mtkseg import ops, viz
from mtkseg.errors import InvalidArgumentError, InvalidTypeError


def overlay_reference(frame, mask, palette, alpha):
    colours = np.zeros((256, 3), np.float64)
    colours[: len(palette)] = palette
    blended = frame * (1 - alpha) + colours[mask] * alpha
    known = (mask < len(palette))[..., None]
    return np.where(known, blended, frame)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_overlay_matches_float_blend_within_one(rng, alpha):
    frame = rng.integers(0, 256, (61, 83, 3), dtype=np.uint8)
    mask = rng.integers(0, 8, (61, 83), dtype=np.uint8)
    mask[::7] = 255  # void stays untouched
    palette = rng.integers(0, 256, (6, 3), dtype=np.uint8)
    got = ops.overlay(frame, mask, palette, alpha)
    ref = overlay_reference(frame.astype(np.float64), mask, palette, alpha)
    assert np.abs(got.astype(np.float64) - ref).max() <= 1.0
    np.testing.assert_array_equal(got[mask >= 6], frame[mask >= 6])


def test_overlay_in_place_and_strided_frame(rng):
    frame = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    mask = rng.integers(0, 3, (40, 50), dtype=np.uint8)
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    expected = ops.overlay(frame, mask, palette, 0.4)
    work = frame.copy()
    assert ops.overlay(work, mask, palette, 0.4, inplace=True) is work
    np.testing.assert_array_equal(work, expected)
    big = np.zeros((80, 100, 3), np.uint8)
    big[::2, ::2] = frame
    np.testing.assert_array_equal(ops.overlay(big[::2, ::2], mask, palette, 0.4), expected)


def test_colorize_is_palette_lookup(rng):
    mask = rng.integers(0, 12, (30, 40), dtype=np.uint8)
    palette = rng.integers(0, 256, (11, 3), dtype=np.uint8)
    ref = np.zeros((256, 3), np.uint8)
    ref[:11] = palette
    np.testing.assert_array_equal(ops.colorize(mask, palette), ref[mask])


def test_viz_converts_rgb_palettes_to_bgr_frames():
    mask = np.array([[3]], np.uint8)
    bgr = viz.colorize(mask, viz.CAMVID_PALETTE)
    rgb = viz.colorize(mask, viz.CAMVID_PALETTE, color="rgb")
    np.testing.assert_array_equal(rgb[0, 0], viz.CAMVID_PALETTE[3])
    np.testing.assert_array_equal(bgr[0, 0], viz.CAMVID_PALETTE[3][::-1])
    frame = np.zeros((1, 1, 3), np.uint8)
    assert viz.overlay(frame, mask, viz.CAMVID_PALETTE, alpha=1.0)[0, 0].tolist() == viz.CAMVID_PALETTE[3][::-1].tolist()


def test_default_palettes():
    assert viz.default_palette(11).tolist() == viz.CAMVID_PALETTE.tolist()
    assert viz.default_palette(6).tolist() == viz.LANE_PALETTE.tolist()
    assert len(viz.LANE_CLASSES) == 6 and len(viz.CAMVID_CLASSES) == 11
    p = viz.default_palette(40)
    assert p.shape == (40, 3) and len({tuple(c) for c in p}) == 40


def test_legend_draws_one_swatch_per_class():
    img = viz.legend(viz.LANE_CLASSES, viz.LANE_PALETTE, row_height=20)
    assert img.shape[0] == 20 * 6 + 4
    # The swatch of "main lane" (row 1) holds its colour (BGR).
    assert img[2 + 20 + 8, 8].tolist() == viz.LANE_PALETTE[1][::-1].tolist()


@pytest.mark.parametrize("call,exc,match", [
    (lambda: ops.overlay(np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), [[0, 0, 0]]), InvalidArgumentError, "frame"),
    (lambda: ops.overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint8), [[0, 0, 0]]), InvalidArgumentError, "mask"),
    (lambda: ops.overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8), [[0, 0, 0]], 1.5), InvalidArgumentError, "alpha"),
    (lambda: ops.overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8), [[0, 0, 0]], float("nan")), InvalidArgumentError, "alpha"),
    (lambda: ops.overlay(np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8), [[0, 0, 0]]), InvalidTypeError, "frame"),
    (lambda: ops.overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.int32), [[0, 0, 0]]), InvalidTypeError, "mask"),
    (lambda: ops.colorize(np.zeros((4, 4), np.uint8), [[0, 0]]), InvalidArgumentError, "palette"),
    (lambda: ops.colorize(np.zeros((4, 4), np.uint8), [[0, 0, 300]]), InvalidArgumentError, "palette"),
    (lambda: ops.overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8), np.zeros((0, 3), np.int8)),
     InvalidArgumentError, "palette"),  # empty, non-uint8: found by the robustness property test
    (lambda: ops.colorize(np.zeros((4, 4), np.uint8), np.zeros((257, 3), np.uint8)), InvalidArgumentError, "palette"),
    (lambda: ops.colorize(np.zeros((0, 4), np.uint8), [[0, 0, 0]]), InvalidArgumentError, "empty"),
    (lambda: viz.palette_for([[0, 0, 0]], "hsv"), InvalidArgumentError, "color"),
])
def test_bad_arguments_raise(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_read_only_frame_in_place_raises():
    frame = np.zeros((4, 4, 3), np.uint8)
    frame.flags.writeable = False
    with pytest.raises(InvalidArgumentError, match="read-only"):
        ops.overlay(frame, np.zeros((4, 4), np.uint8), [[1, 2, 3]], inplace=True)


def test_draw_legend_pastes_a_copy_and_checks_inputs():
    image = np.full((200, 300, 3), 77, np.uint8)
    out = viz.draw_legend(image, viz.LANE_CLASSES, viz.LANE_PALETTE)
    assert out.shape == image.shape and np.all(image == 77), "the input is not drawn on"
    assert np.any(out[8:40, 8:60] != 77) and np.all(out[190:, 290:] == 77)
    small = viz.draw_legend(np.zeros((40, 50, 3), np.uint8), viz.CAMVID_CLASSES, viz.CAMVID_PALETTE)
    assert small.shape == (40, 50, 3)  # scaled down to fit
    with pytest.raises(InvalidArgumentError):
        viz.draw_legend(image, viz.LANE_CLASSES[:3], viz.LANE_PALETTE)
    names = [f"c{i}" for i in range(40)]
    with pytest.raises(InvalidArgumentError, match="mask"):
        viz.draw_legend(image, names, viz.default_palette(40))
    mask = np.zeros((200, 300), np.uint8)
    mask[:, 150:] = 7
    few = viz.draw_legend(image, names, viz.default_palette(40), mask=mask)
    assert np.any(few != 77)
