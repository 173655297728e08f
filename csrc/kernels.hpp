// Entry points of every kernel family; bound to Python in bindings.cpp.
#pragma once

#include <array>
#include <tuple>

#include "common.hpp"

namespace mtkseg {

// ---- preprocess.cpp -------------------------------------------------------------------
enum class PixelFormat { Gray = 0, RGB = 1, BGR = 2, RGBA = 3, BGRA = 4 };
enum class Interp { Linear = 0, Area = 1 };

// Resizes/converts/normalises a uint8 frame into `dst` (the model input tensor) in one pass.
// Returns the valid region (x0, y0, w, h) of the resized frame inside dst.  Bilinear resizes
// of 3-channel frames into packed NHWC uint8/int8 inputs whose quantised value is the pixel
// plus a constant run in fixed point (linear_u8.hpp); the rest in float.
std::tuple<int, int, int, int> preprocess(const py::array& src, py::array& dst, int src_format, int dst_format,
                                          bool nchw, int interp, bool letterbox, std::array<double, 3> pad,
                                          std::array<double, 3> mean, std::array<double, 3> std_, double qscale,
                                          int64_t qzero);

// ---- postprocess.cpp ------------------------------------------------------------------
// Logits (h, w, C) -> argmax mask (H, W) uint8.  mode 0 = nearest, 1 = bilinear.
void argmax_resize(const py::array& logits, py::array& out, Crop crop, int mode);
// Class indices (h, w) -> mask (H, W) uint8 with nearest resizing.
void labels_resize(const py::array& labels, py::array& out, Crop crop);
// Single-channel scores (h, w) -> mask (H, W): 1 where the (interpolated) score > threshold.
void threshold_resize(const py::array& scores, py::array& out, Crop crop, int mode, double threshold);
// Softmax probability (class_index >= 0) or max probability (class_index < 0) at (H, W).
void confidence_resize(const py::array& logits, py::array& out, Crop crop, int mode, int64_t class_index,
                       double scale, int64_t zero_point, bool softmax);

// ---- confusion.cpp --------------------------------------------------------------------
void confusion_matrix(const py::array& gt, const py::array& pred, int64_t num_classes, int64_t ignore_index,
                      py::array& out);

// ---- overlay.cpp ----------------------------------------------------------------------
void overlay(const py::array& frame, const py::array& mask, const py::array& palette, double alpha, py::array& out);
void colorize(const py::array& mask, const py::array& palette, py::array& out);

// ---- smoothing.cpp --------------------------------------------------------------------
// state = momentum * state + (1 - momentum) * dequantise(logits); init copies instead.
void ema_update(py::array& state, const py::array& logits, double momentum, double scale, int64_t zero_point,
                bool init);
// Per-pixel majority of three masks; where all differ the newest (c) wins.
void mode3(const py::array& a, const py::array& b, const py::array& c, py::array& out);

}  // namespace mtkseg
