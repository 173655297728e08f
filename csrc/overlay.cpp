// Colour a class mask with a palette and alpha-blend it onto a frame.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels.hpp"

namespace mtkseg {
namespace {

void check_palette(const py::array& palette) {
    require_dtype(palette, "palette", {DType::U8});
    require_ndim(palette, "palette", {2});
    require_c_contiguous(palette, "palette");
    if (palette.shape(0) < 1 || palette.shape(0) > 256 || palette.shape(1) != 3)
        throw ArgumentError("palette: expected shape (C, 3) with 1 <= C <= 256, got " + shape_str(palette));
}

void check_mask(const py::array& mask) {
    require_dtype(mask, "mask", {DType::U8});
    require_ndim(mask, "mask", {2});
    require_nonempty(mask, "mask");
    require_c_contiguous(mask, "mask");
}

void check_image_out(const py::array& out, py::ssize_t h, py::ssize_t w, const char* what) {
    require_dtype(out, what, {DType::U8});
    require_c_contiguous(out, what);
    require_writeable(out, what);
    if (out.ndim() != 3 || out.shape(0) != h || out.shape(1) != w || out.shape(2) != 3)
        throw ArgumentError(std::string(what) + ": expected shape (" + std::to_string(h) + ", " + std::to_string(w) +
                            ", 3), got " + shape_str(out));
}

}  // namespace

void overlay(const py::array& frame, const py::array& mask, const py::array& palette, double alpha, py::array& out) {
    require_dtype(frame, "frame", {DType::U8});
    require_c_contiguous(frame, "frame");
    if (frame.ndim() != 3 || frame.shape(2) != 3)
        throw ArgumentError("frame: expected an HxWx3 image, got shape " + shape_str(frame));
    require_nonempty(frame, "frame");
    check_mask(mask);
    if (mask.shape(0) != frame.shape(0) || mask.shape(1) != frame.shape(1))
        throw ArgumentError("mask: shape " + shape_str(mask) + " does not match the frame's " +
                            std::to_string(frame.shape(0)) + "x" + std::to_string(frame.shape(1)));
    check_palette(palette);
    require_finite(alpha, "alpha");
    if (alpha < 0.0 || alpha > 1.0) throw ArgumentError("alpha: expected 0..1, got " + std::to_string(alpha));
    check_image_out(out, frame.shape(0), frame.shape(1), "out");

    // Fixed point with 8 fractional bits: out = (f * keep + term + 128) >> 8, where
    // keep = 256 - a and term = colour * a for palette classes, keep = 256 and term = 0 for
    // classes beyond the palette (pixel unchanged).  f * keep + term + 128 <= 255 * 256 + 128,
    // so the sum fits 16 bits and the blend vectorises.
    const int a = static_cast<int>(std::lround(alpha * 256.0));
    const int ncls = static_cast<int>(palette.shape(0));
    const auto* pal = static_cast<const uint8_t*>(palette.data());
    struct Lut { uint16_t keep[256 * 3]; uint16_t term[256 * 3]; };
    auto lut = std::make_unique<Lut>();
    for (int c = 0; c < 256; ++c)
        for (int k = 0; k < 3; ++k) {
            const bool coloured = c < ncls;
            lut->keep[c * 3 + k] = static_cast<uint16_t>(coloured ? 256 - a : 256);
            lut->term[c * 3 + k] = static_cast<uint16_t>((coloured ? pal[c * 3 + k] * a : 0) + 128);
        }
    const auto* f = static_cast<const uint8_t*>(frame.data());
    const auto* m = static_cast<const uint8_t*>(mask.data());
    auto* o = static_cast<uint8_t*>(out.mutable_data());  // may equal f (in place)
    const int64_t n = mask.size();
    GilRelease release;
    const Lut& table = *lut;
    parallel_for(n, kMinParallelWork, [&](int64_t b, int64_t e) {
        constexpr int64_t kBlock = 512;  // pixels per pass: both passes stay in L1
        uint16_t keep[kBlock * 3], term[kBlock * 3];
        for (int64_t i0 = b; i0 < e; i0 += kBlock) {
            const int64_t len = std::min(kBlock, e - i0);
            for (int64_t i = 0; i < len; ++i) {  // gather the per-class weights
                const int c = m[i0 + i] * 3;
                keep[3 * i] = table.keep[c], keep[3 * i + 1] = table.keep[c + 1], keep[3 * i + 2] = table.keep[c + 2];
                term[3 * i] = table.term[c], term[3 * i + 1] = table.term[c + 1], term[3 * i + 2] = table.term[c + 2];
            }
            const uint8_t* src = f + 3 * i0;
            uint8_t* dst = o + 3 * i0;
            for (int64_t j = 0; j < 3 * len; ++j)  // element-wise: safe in place
                dst[j] = static_cast<uint8_t>(static_cast<uint16_t>(src[j] * keep[j] + term[j]) >> 8);
        }
    });
}

void colorize(const py::array& mask, const py::array& palette, py::array& out) {
    check_mask(mask);
    check_palette(palette);
    check_image_out(out, mask.shape(0), mask.shape(1), "out");
    std::vector<uint8_t> lut(256 * 3, 0);  // classes beyond the palette are black
    const auto* pal = static_cast<const uint8_t*>(palette.data());
    std::copy(pal, pal + palette.shape(0) * 3, lut.begin());
    const auto* m = static_cast<const uint8_t*>(mask.data());
    auto* o = static_cast<uint8_t*>(out.mutable_data());
    const int64_t n = mask.size();
    GilRelease release;
    parallel_for(n, kMinParallelWork, [&](int64_t b, int64_t e) {
        const uint8_t* __restrict colours = lut.data();
        for (int64_t i = b; i < e; ++i) {
            const uint8_t* c = &colours[m[i] * 3];
            o[3 * i] = c[0], o[3 * i + 1] = c[1], o[3 * i + 2] = c[2];
        }
    });
}

}  // namespace mtkseg
