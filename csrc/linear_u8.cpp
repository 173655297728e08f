// Fixed-point bilinear rows for preprocess (see linear_u8.hpp for the arithmetic), with the
// runtime SIMD dispatch of simd.hpp.  The scalar loops are the reference; the vector loops
// compute the same integers (pmaddwd / vmull pairs, exact in int32), so they are bit-exact.
#include "linear_u8.hpp"

#include <algorithm>
#include <cmath>

#include "common.hpp"
#include "simd.hpp"

#include "simd_arch.hpp"

namespace mtkseg {
namespace linear_u8 {
namespace {

constexpr int kRowBits = 8;  // fractional bits of the horizontal values
constexpr int kRowShift = kWeightBits - kRowBits;
constexpr int kRowRound = 1 << (kRowShift - 1);
constexpr int kRowCentre = 1 << 15;  // stored minus this: 0..65280 as int16 for pmaddwd
constexpr int kOutShift = kRowBits + kWeightBits;
constexpr uint8_t kZero = 0x80;  // shuffle index that yields 0 (pshufb: high bit; tbl: >= 16)

// Vector loops fold the row centring into the rounding: (v + round - 2^15 * 2^6) >> 6 is
// ((v + round) >> 6) - 2^15 (arithmetic shifts floor).
constexpr int32_t kRowBias = kRowRound - kRowCentre * (1 << kRowShift);
// The vertical sum over centred rows is the true one minus 2^15 * ONE (the weights sum to ONE);
// adding that back and the rounding keeps it below 2^31 (65280 * 2^14 + 2^21).
constexpr int32_t kOutBias = kRowCentre * kOne + (1 << (kOutShift - 1));

// (ONE - wy, wy) as the int16 pair of one int32 lane, for pmaddwd over (top, bot) pairs.
inline int32_t weight_pair(int wy) {
    return static_cast<int32_t>((static_cast<uint32_t>(wy) << 16) | static_cast<uint32_t>(kOne - wy));
}

// ---- scalar reference loops ------------------------------------------------------------

void horizontal_scalar(const uint8_t* row, const Columns& c, int from, int16_t* out) {
    const int n = static_cast<int>(c.off0.size());
    const std::ptrdiff_t ch0 = c.ch[0], ch1 = c.ch[1], ch2 = c.ch[2];
    for (int x = from; x < n; ++x) {
        const uint8_t *p0 = row + c.off0[x], *p1 = row + c.off1[x];
        const int w0 = c.weights[6 * static_cast<size_t>(x)], w1 = c.weights[6 * static_cast<size_t>(x) + 1];
        const auto tap = [&](std::ptrdiff_t ch) {
            return static_cast<int16_t>(((p0[ch] * w0 + p1[ch] * w1 + kRowRound) >> kRowShift) - kRowCentre);
        };
        out[3 * x] = tap(ch0);
        out[3 * x + 1] = tap(ch1);
        out[3 * x + 2] = tap(ch2);
    }
}

void vertical_scalar(const int16_t* top, const int16_t* bot, int wy, int from, int n, int offset, bool int8_out,
                     uint8_t* out) {
    const int lo = int8_out ? -128 : 0, hi = int8_out ? 127 : 255;
    for (int i = from; i < n; ++i) {
        const int v = ((top[i] * (kOne - wy) + bot[i] * wy + kOutBias) >> kOutShift) + offset;
        out[i] = static_cast<uint8_t>(std::min(hi, std::max(lo, v)));  // int8: its two's-complement byte
    }
}

// ---- x86-64 ----------------------------------------------------------------------------
#if MTKSEG_X86

// SSE4.1 helpers, always inlined so that the AVX2 level's copy of the horizontal pass gets
// their VEX encodings.
#define MTKSEG_SSE41_INLINE __attribute__((target("sse4.1"), always_inline)) inline

// The 8-byte windows of two columns in one register.
MTKSEG_SSE41_INLINE __m128i windows(const uint8_t* a, const uint8_t* b) {
    return _mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a)),
                              _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b)));
}

MTKSEG_SSE41_INLINE __m128i load(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

// 8 columns per step, in 128-bit registers at both x86 levels: the per-column window loads
// and shuffles bound the pass, and 256-bit lanes would need as many of them.
MTKSEG_SSE41_INLINE void horizontal_x86(const uint8_t* row, const Columns& c, int16_t* out) {
    const __m128i s0 = load(c.shuffle[0]), s1 = load(c.shuffle[1]), s2 = load(c.shuffle[2]), s3 = load(c.shuffle[3]);
    const __m128i bias = _mm_set1_epi32(kRowBias);
    const std::ptrdiff_t* off = c.off0.data();
    int x = 0;
    for (; x + 8 <= c.vector_columns; x += 8) {
        __m128i r[6];
        for (int g = 0; g < 2; ++g) {
            const int p = x + 4 * g;
            const __m128i a = windows(row + off[p], row + off[p + 1]);
            const __m128i b = windows(row + off[p + 2], row + off[p + 3]);
            const int16_t* w = &c.weights[6 * static_cast<size_t>(p)];
            r[3 * g] = _mm_madd_epi16(_mm_shuffle_epi8(a, s0), load(w));
            r[3 * g + 1] = _mm_madd_epi16(_mm_or_si128(_mm_shuffle_epi8(a, s1), _mm_shuffle_epi8(b, s2)), load(w + 8));
            r[3 * g + 2] = _mm_madd_epi16(_mm_shuffle_epi8(b, s3), load(w + 16));
        }
        for (__m128i& v : r) v = _mm_srai_epi32(_mm_add_epi32(v, bias), kRowShift);
        __m128i* o = reinterpret_cast<__m128i*>(out + 3 * x);
        _mm_storeu_si128(o, _mm_packs_epi32(r[0], r[1]));
        _mm_storeu_si128(o + 1, _mm_packs_epi32(r[2], r[3]));
        _mm_storeu_si128(o + 2, _mm_packs_epi32(r[4], r[5]));
    }
    horizontal_scalar(row, c, x, out);
}

__attribute__((target("sse4.1"))) void horizontal_sse41(const uint8_t* row, const Columns& c, int16_t* out) {
    horizontal_x86(row, c, out);
}

// The same instructions VEX-encoded (three-operand forms save register copies): measured ~7 %
// off a whole 1280x720 -> 384x288 preprocess.
__attribute__((target("avx2"))) void horizontal_avx2(const uint8_t* row, const Columns& c, int16_t* out) {
    horizontal_x86(row, c, out);
}

// 8 (top, bot) pairs -> 8 int16 results plus offset (before the saturation to 8 bits).
MTKSEG_SSE41_INLINE __m128i blend8(__m128i t, __m128i b, __m128i w, __m128i bias, __m128i offset) {
    const __m128i lo = _mm_madd_epi16(_mm_unpacklo_epi16(t, b), w);
    const __m128i hi = _mm_madd_epi16(_mm_unpackhi_epi16(t, b), w);
    const __m128i v = _mm_packs_epi32(_mm_srai_epi32(_mm_add_epi32(lo, bias), kOutShift),
                                      _mm_srai_epi32(_mm_add_epi32(hi, bias), kOutShift));
    return _mm_add_epi16(v, offset);
}

__attribute__((target("sse4.1"))) void vertical_sse41(const int16_t* top, const int16_t* bot, int wy, int n,
                                                      int offset, bool int8_out, uint8_t* out) {
    const __m128i w = _mm_set1_epi32(weight_pair(wy)), bias = _mm_set1_epi32(kOutBias);
    const __m128i off = _mm_set1_epi16(static_cast<int16_t>(offset));
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m128i v0 = blend8(load(top + i), load(bot + i), w, bias, off);
        const __m128i v1 = blend8(load(top + i + 8), load(bot + i + 8), w, bias, off);
        const __m128i q = int8_out ? _mm_packs_epi16(v0, v1) : _mm_packus_epi16(v0, v1);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), q);
    }
    vertical_scalar(top, bot, wy, i, n, offset, int8_out, out);
}

// As blend8 within each 128-bit lane: lane order survives unpack/madd/pack.
__attribute__((target("avx2"))) inline __m256i blend16(__m256i t, __m256i b, __m256i w, __m256i bias, __m256i offset) {
    const __m256i lo = _mm256_madd_epi16(_mm256_unpacklo_epi16(t, b), w);
    const __m256i hi = _mm256_madd_epi16(_mm256_unpackhi_epi16(t, b), w);
    const __m256i v = _mm256_packs_epi32(_mm256_srai_epi32(_mm256_add_epi32(lo, bias), kOutShift),
                                         _mm256_srai_epi32(_mm256_add_epi32(hi, bias), kOutShift));
    return _mm256_add_epi16(v, offset);
}

__attribute__((target("avx2"))) inline __m256i load256(const int16_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

__attribute__((target("avx2"))) void vertical_avx2(const int16_t* top, const int16_t* bot, int wy, int n, int offset,
                                                   bool int8_out, uint8_t* out) {
    const __m256i w = _mm256_set1_epi32(weight_pair(wy)), bias = _mm256_set1_epi32(kOutBias);
    const __m256i off = _mm256_set1_epi16(static_cast<int16_t>(offset));
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i v0 = blend16(load256(top + i), load256(bot + i), w, bias, off);
        const __m256i v1 = blend16(load256(top + i + 16), load256(bot + i + 16), w, bias, off);
        // The byte pack interleaves the lanes (v0.lo, v1.lo | v0.hi, v1.hi): put them back.
        const __m256i q = int8_out ? _mm256_packs_epi16(v0, v1) : _mm256_packus_epi16(v0, v1);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_permute4x64_epi64(q, _MM_SHUFFLE(3, 1, 2, 0)));
    }
    vertical_scalar(top, bot, wy, i, n, offset, int8_out, out);
}

#endif  // MTKSEG_X86

// ---- aarch64 ---------------------------------------------------------------------------
#if MTKSEG_NEON

// pmaddwd: pairwise sums of the int16 products, exact in int32.
inline int32x4_t madd(int16x8_t a, int16x8_t b) {
    return vpaddq_s32(vmull_s16(vget_low_s16(a), vget_low_s16(b)), vmull_high_s16(a, b));
}

inline int16x8_t pairs(uint8x16_t bytes) { return vreinterpretq_s16_u8(bytes); }

void horizontal_neon(const uint8_t* row, const Columns& c, int16_t* out) {
    const uint8x16_t s0 = vld1q_u8(c.shuffle[0]), s1 = vld1q_u8(c.shuffle[1]), s2 = vld1q_u8(c.shuffle[2]),
                     s3 = vld1q_u8(c.shuffle[3]);
    const int32x4_t bias = vdupq_n_s32(kRowBias);
    const std::ptrdiff_t* off = c.off0.data();
    int x = 0;
    for (; x + 4 <= c.vector_columns; x += 4) {
        const uint8x16_t a = vcombine_u8(vld1_u8(row + off[x]), vld1_u8(row + off[x + 1]));
        const uint8x16_t b = vcombine_u8(vld1_u8(row + off[x + 2]), vld1_u8(row + off[x + 3]));
        const int16_t* w = &c.weights[6 * static_cast<size_t>(x)];
        const int32x4_t r0 = madd(pairs(vqtbl1q_u8(a, s0)), vld1q_s16(w));
        const int32x4_t r1 = madd(pairs(vorrq_u8(vqtbl1q_u8(a, s1), vqtbl1q_u8(b, s2))), vld1q_s16(w + 8));
        const int32x4_t r2 = madd(pairs(vqtbl1q_u8(b, s3)), vld1q_s16(w + 16));
        // Narrowing shifts of v + kRowBias: the centred value fits int16.
        int16_t* o = out + 3 * x;
        vst1q_s16(o, vcombine_s16(vshrn_n_s32(vaddq_s32(r0, bias), kRowShift),
                                  vshrn_n_s32(vaddq_s32(r1, bias), kRowShift)));
        vst1_s16(o + 8, vshrn_n_s32(vaddq_s32(r2, bias), kRowShift));
    }
    horizontal_scalar(row, c, x, out);
}

void vertical_neon(const int16_t* top, const int16_t* bot, int wy, int n, int offset, bool int8_out, uint8_t* out) {
    const int16_t wt = static_cast<int16_t>(kOne - wy), wb = static_cast<int16_t>(wy);
    const int32x4_t bias = vdupq_n_s32(kOutBias);
    const int16x8_t off = vdupq_n_s16(static_cast<int16_t>(offset));
    int i = 0;
    auto blend8 = [&](int16x8_t t, int16x8_t b) {
        const int32x4_t lo = vmlal_n_s16(vmull_n_s16(vget_low_s16(t), wt), vget_low_s16(b), wb);
        const int32x4_t hi = vmlal_high_n_s16(vmull_high_n_s16(t, wt), b, wb);
        const int16x8_t v = vcombine_s16(vqmovn_s32(vshrq_n_s32(vaddq_s32(lo, bias), kOutShift)),
                                         vqmovn_s32(vshrq_n_s32(vaddq_s32(hi, bias), kOutShift)));
        return vaddq_s16(v, off);
    };
    for (; i + 16 <= n; i += 16) {
        const int16x8_t v0 = blend8(vld1q_s16(top + i), vld1q_s16(bot + i));
        const int16x8_t v1 = blend8(vld1q_s16(top + i + 8), vld1q_s16(bot + i + 8));
        if (int8_out)
            vst1q_s8(reinterpret_cast<int8_t*>(out + i), vcombine_s8(vqmovn_s16(v0), vqmovn_s16(v1)));
        else
            vst1q_u8(out + i, vcombine_u8(vqmovun_s16(v0), vqmovun_s16(v1)));
    }
    vertical_scalar(top, bot, wy, i, n, offset, int8_out, out);
}

#endif  // MTKSEG_NEON

// Fills c.shuffle for output channel k reading source byte ch[k] of each 3-byte pixel.
void make_shuffles(Columns& c) {
    for (auto& m : c.shuffle) std::fill(m, m + 16, kZero);
    for (int j = 0; j < 12; ++j) {  // output value j of the 4 columns: column j / 3, channel j % 3
        const int col = j / 3, reg = j / 4, slot = 4 * (j % 4);
        const int mask = reg == 0 ? 0 : reg == 2 ? 3 : col < 2 ? 1 : 2;
        const int base = 8 * (col % 2) + static_cast<int>(c.ch[j % 3]);
        c.shuffle[mask][slot] = static_cast<uint8_t>(base);          // p0, low byte of an int16
        c.shuffle[mask][slot + 2] = static_cast<uint8_t>(base + 3);  // p1
    }
}

}  // namespace

int16_t weight(float w) { return static_cast<int16_t>(std::lround(w * kOne)); }

Columns make_columns(int src_w, int dst_w, std::ptrdiff_t pixel_stride, const std::ptrdiff_t ch[3], bool packed) {
    Columns c;
    const double scale = 1.0 / (static_cast<double>(dst_w) / src_w);  // as linear_rows: OpenCV's way
    c.off0.resize(static_cast<size_t>(dst_w));
    c.off1.resize(static_cast<size_t>(dst_w));
    c.weights.resize(6 * static_cast<size_t>(dst_w));
    for (int k = 0; k < 3; ++k) c.ch[k] = ch[k];
    c.vector_columns = 0;
    bool vector = packed;
    for (int x = 0; x < dst_w; ++x) {
        const LinearTap t = linear_tap(x, scale, src_w);
        const int16_t w = weight(t.w);
        c.off0[x] = t.i0 * pixel_stride;
        c.off1[x] = t.i1 * pixel_stride;
        for (int k = 0; k < 3; ++k) {
            c.weights[6 * x + 2 * k] = static_cast<int16_t>(kOne - w);
            c.weights[6 * x + 2 * k + 1] = w;
        }
        // The window is p0 and the next pixel: right for p1, or weighted 0 at the right border.
        vector = vector && c.off0[x] + 8 <= 3 * static_cast<std::ptrdiff_t>(src_w) &&
                 (c.off1[x] == c.off0[x] + 3 || w == 0);
        if (vector) c.vector_columns = x + 1;
    }
    if (packed) make_shuffles(c);
    return c;
}

void horizontal(const uint8_t* row, const Columns& c, int16_t* out) {
    switch (simd::level()) {
#if MTKSEG_X86
        case simd::AVX2: horizontal_avx2(row, c, out); return;
        case simd::SSE41: horizontal_sse41(row, c, out); return;
#elif MTKSEG_NEON
        case simd::NEON: horizontal_neon(row, c, out); return;
#endif
        default: horizontal_scalar(row, c, 0, out);
    }
}

void vertical(const int16_t* top, const int16_t* bot, int wy, int n, int offset, bool int8_out, uint8_t* out) {
    switch (simd::level()) {
#if MTKSEG_X86
        case simd::AVX2: vertical_avx2(top, bot, wy, n, offset, int8_out, out); return;
        case simd::SSE41: vertical_sse41(top, bot, wy, n, offset, int8_out, out); return;
#elif MTKSEG_NEON
        case simd::NEON: vertical_neon(top, bot, wy, n, offset, int8_out, out); return;
#endif
        default: vertical_scalar(top, bot, wy, 0, n, offset, int8_out, out);
    }
}

}  // namespace linear_u8
}  // namespace mtkseg
