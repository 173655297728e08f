// Fixed-point bilinear resampling of 3-channel uint8 frames into uint8/int8 model inputs:
// preprocess.cpp's integer path for models whose quantised input is the pixel value plus a
// constant (see preprocess()).  Like OpenCV's INTER_LINEAR for uint8, separably in integers:
//
//   horizontal: h = (p0 * (ONE - wx) + p1 * wx + 2^5) >> 6     (the value * 256)
//   vertical:   q = saturate(((h0 * (ONE - wy) + h1 * wy + 2^21) >> 22) + offset)
//
// with Q14 weights (ONE = 2^14) rounded from the float taps of linear_tap().  Every SIMD level
// runs exactly this arithmetic (the scalar loops in linear_u8.cpp are its reference), so the
// result does not depend on the CPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mtkseg {
namespace linear_u8 {

constexpr int kWeightBits = 14;
constexpr int kOne = 1 << kWeightBits;

// The horizontal taps of one resize, shared by every row.
struct Columns {
    std::vector<std::ptrdiff_t> off0, off1;  // byte offsets of each output column's two source pixels
    std::vector<int16_t> weights;            // per column (ONE - wx, wx) three times (one pair per channel)
    std::ptrdiff_t ch[3];                    // byte offset of output channel k's source channel in a pixel
    // The SIMD loops read each column's two pixels as one 8-byte window at off0: only for a
    // packed frame (pixel stride 3, channel stride 1), and only the leading columns whose
    // window stays in the row (the others take the scalar loop).
    int vector_columns;
    // Byte shuffles (pshufb/tbl) of 4 columns' windows, two per register (A: columns 0-1,
    // B: 2-3), into their 12 (p0, p1) pairs as int16, in output order, 4 pairs per register:
    // register 0 = shuffle(A, 0), 1 = shuffle(A, 1) | shuffle(B, 2), 2 = shuffle(B, 3).
    alignas(16) uint8_t shuffle[4][16];
    // The AVX2 loop's weights: 8 columns per 256-bit step, columns 0-3 in the low lanes and 4-7
    // in the high ones, so each step's three registers are (k = 0, 1, 2) the 8 int16 of
    // register k of columns 0-3, then of columns 4-7 (48 per step, vector_columns / 8 steps).
    std::vector<int16_t> weights_avx2;
    // AVX-512 (VBMI): output values 16g..16g+15 read their 32 source bytes from one 128-byte
    // window at byte group_base[g] of the row with one byte permute (vpermt2b), any pixel and
    // channel strides.  Empty when some group's bytes span more than 128 (downscales beyond ~8x).
    std::vector<std::ptrdiff_t> group_base;
    std::vector<uint8_t> group_index;  // 64 per group: (p0, 0, p1, 0) window bytes per value
    int group_window;                  // the longest span (bytes) a group reads: <= 64 takes vpermb
    std::ptrdiff_t row_bytes;          // bytes of a row the taps may read: loads stop there
};

// Weight of a float tap w in [0, 1].
int16_t weight(float w);

// Taps for resizing src_w pixels (byte stride pixel_stride, channel byte offsets ch) to dst_w;
// `packed` (pixel stride 3, channel stride 1) enables the 8-byte-window loops.
Columns make_columns(int src_w, int dst_w, std::ptrdiff_t pixel_stride, const std::ptrdiff_t ch[3], bool packed);

// One source row -> 3 * dst_w values h - 2^15 as int16 (output channel order).
void horizontal(const uint8_t* row, const Columns& c, int16_t* out);

// Blends two horizontal rows of n values with weight wy (of bot) and quantises them into
// out: uint8 saturated to 0..255, or int8 (stored as its bytes) to -128..127; |offset| <= 512.
void vertical(const int16_t* top, const int16_t* bot, int wy, int n, int offset, bool int8_out, uint8_t* out);

// Both passes of one output row from source rows top and bot, where this CPU's level has a
// fused loop for these columns (AVX-512); returns false, writing nothing, where it has not:
// then horizontal() each row and vertical().  Same result either way.
bool row(const uint8_t* top, const uint8_t* bot, int wy, const Columns& c, int offset, bool int8_out, uint8_t* out);

}  // namespace linear_u8
}  // namespace mtkseg
