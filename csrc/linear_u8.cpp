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

// 8 columns per step in 128-bit registers (the SSE4.1 level; AVX2 has its own loop below).
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

// 8 columns per step as the SSE4.1 loop, but with columns 0-3 and 4-7 in the two 128-bit lanes
// of one register from the shuffle on: half the shuffles, multiplies, shifts and packs (the 8-byte
// window loads stay: they bound the pass).
__attribute__((target("avx2"))) void horizontal_avx2(const uint8_t* row, const Columns& c, int16_t* out) {
    __m256i s[4];
    for (int k = 0; k < 4; ++k) s[k] = _mm256_broadcastsi128_si256(load(c.shuffle[k]));
    const __m256i bias = _mm256_set1_epi32(kRowBias);
    const std::ptrdiff_t* off = c.off0.data();
    const int16_t* weights = c.weights_avx2.data();
    int x = 0;
    for (; x + 8 <= c.vector_columns; x += 8, weights += 48) {
        const __m256i a = _mm256_inserti128_si256(_mm256_castsi128_si256(windows(row + off[x], row + off[x + 1])),
                                                  windows(row + off[x + 4], row + off[x + 5]), 1);
        const __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(windows(row + off[x + 2], row + off[x + 3])),
                                                  windows(row + off[x + 6], row + off[x + 7]), 1);
        const __m256i* w = reinterpret_cast<const __m256i*>(weights);
        __m256i r0 = _mm256_madd_epi16(_mm256_shuffle_epi8(a, s[0]), _mm256_loadu_si256(w));
        __m256i r1 = _mm256_madd_epi16(_mm256_or_si256(_mm256_shuffle_epi8(a, s[1]), _mm256_shuffle_epi8(b, s[2])),
                                       _mm256_loadu_si256(w + 1));
        __m256i r2 = _mm256_madd_epi16(_mm256_shuffle_epi8(b, s[3]), _mm256_loadu_si256(w + 2));
        r0 = _mm256_srai_epi32(_mm256_add_epi32(r0, bias), kRowShift);
        r1 = _mm256_srai_epi32(_mm256_add_epi32(r1, bias), kRowShift);
        r2 = _mm256_srai_epi32(_mm256_add_epi32(r2, bias), kRowShift);
        // Per lane: values 0-7 of its 4 columns, then values 8-11.
        const __m256i v01 = _mm256_packs_epi32(r0, r1), v2 = _mm256_packs_epi32(r2, r2);
        int16_t* o = out + 3 * x;
        _mm_storeu_si128(reinterpret_cast<__m128i*>(o), _mm256_castsi256_si128(v01));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(o + 8), _mm256_castsi256_si128(v2));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 12), _mm256_extracti128_si256(v01, 1));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(o + 20), _mm256_extracti128_si256(v2, 1));
    }
    horizontal_scalar(row, c, x, out);
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


// AVX-512 (F, BW, VL, VBMI, VNNI): the horizontal pass as one byte permute per 16 output values.
#define MTKSEG_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")))

// Group g's 16 output values as int32 (h - 2^15, before the pack).  kWide: a 128-byte window
// (two registers, vpermt2b) rather than 64 (one, vpermb).  Windows that pass the row's last
// byte are loaded masked (masked loads never fault); the others plainly, which is faster.
template <bool kWide>
MTKSEG_AVX512 inline __m512i group_values(const uint8_t* row, std::ptrdiff_t base, std::ptrdiff_t row_bytes,
                                          const uint8_t* index, const int16_t* weights) {
    const __mmask64 low_bytes = 0x5555555555555555ull;  // each int16's low byte; the high ones are 0
    const __m512i idx = _mm512_loadu_si512(index);
    __m512i pairs;
    if (base + (kWide ? 128 : 64) <= row_bytes) {
        const __m512i lo = _mm512_loadu_si512(row + base);
        pairs = kWide ? _mm512_maskz_permutex2var_epi8(low_bytes, lo, idx, _mm512_loadu_si512(row + base + 64))
                      : _mm512_maskz_permutexvar_epi8(low_bytes, idx, lo);
    } else {
        const std::ptrdiff_t avail = row_bytes - base;  // >= 1
        const __m512i lo = _mm512_maskz_loadu_epi8(avail >= 64 ? ~0ull : (1ull << avail) - 1, row + base);
        __m512i hi = _mm512_setzero_si512();
        if (kWide && avail > 64) hi = _mm512_maskz_loadu_epi8((1ull << (avail - 64)) - 1, row + base + 64);
        pairs = kWide ? _mm512_maskz_permutex2var_epi8(low_bytes, lo, idx, hi)
                      : _mm512_maskz_permutexvar_epi8(low_bytes, idx, lo);
    }
    return _mm512_srai_epi32(_mm512_dpwssd_epi32(_mm512_set1_epi32(kRowBias), pairs, _mm512_loadu_si512(weights)), kRowShift);
}

// Two groups (32 values) per step: one int16 pack and one 64-byte store (vpmovdw's store form
// is slow on Zen 4).  The tables are read through locals: vector stores may alias anything.
template <bool kWide>
MTKSEG_AVX512 void horizontal_avx512(const uint8_t* row, const Columns& c, int16_t* out) {
    const int n = 3 * static_cast<int>(c.off0.size()), groups = static_cast<int>(c.group_base.size());
    const std::ptrdiff_t* base = c.group_base.data();
    const uint8_t* index = c.group_index.data();
    const int16_t* weights = c.weights.data();
    const std::ptrdiff_t row_bytes = c.row_bytes;
    // The pack interleaves the 128-bit lanes' halves (a.l0, b.l0, a.l1, ...): put them back.
    const __m512i order = _mm512_set_epi64(7, 5, 3, 1, 6, 4, 2, 0);
    for (int g = 0; g < groups; g += 2) {
        const __m512i a = group_values<kWide>(row, base[g], row_bytes, index + 64 * g, weights + 32 * g);
        const __m512i b = g + 1 < groups
                              ? group_values<kWide>(row, base[g + 1], row_bytes, index + 64 * (g + 1), weights + 32 * (g + 1))
                              : _mm512_setzero_si512();
        const __m512i v = _mm512_permutexvar_epi64(order, _mm512_packs_epi32(a, b));
        const int left = n - 16 * g;
        if (left >= 32)
            _mm512_storeu_si512(out + 16 * g, v);
        else
            _mm512_mask_storeu_epi16(out + 16 * g, (1u << left) - 1, v);
    }
}

// Both passes of one output row (the AVX-512 level's loop for vertical downscales, see
// preprocess.cpp): the horizontal values of top and bot stay in registers and go straight
// into the vertical blend, with no int16 rows stored and reloaded in between.  The same
// integers as horizontal_avx512 + vertical_avx512 (VNNI's vpdpwssd adds without saturating,
// like madd + add).
template <bool kWide>
MTKSEG_AVX512 void row_avx512(const uint8_t* top, const uint8_t* bot, int wy, const Columns& c, int offset,
                              bool int8_out, uint8_t* out) {
    const int n = 3 * static_cast<int>(c.off0.size()), groups = static_cast<int>(c.group_base.size());
    const std::ptrdiff_t* base = c.group_base.data();
    const uint8_t* index = c.group_index.data();
    const int16_t* weights = c.weights.data();
    const std::ptrdiff_t row_bytes = c.row_bytes;
    const __m512i wv = _mm512_set1_epi32(weight_pair(wy)), bias = _mm512_set1_epi32(kOutBias);
    const __m512i off = _mm512_set1_epi16(static_cast<int16_t>(offset));
    // After the int16 packs (groups g, g+1 | g+2, g+3) and the byte pack, 128-bit lane k holds
    // values 4k..4k+3 of each of the four groups in turn: byte 16k + 4q + r is value 4k + r of
    // group q.  This byte permute puts the 64 values back in order.
    alignas(64) static const struct Order {
        uint8_t b[64];
        Order() {
            for (int q = 0; q < 4; ++q)
                for (int j = 0; j < 16; ++j) b[16 * q + j] = static_cast<uint8_t>(16 * (j / 4) + 4 * q + j % 4);
        }
    } order_table;
    const __m512i order = _mm512_load_si512(order_table.b);
    const __m512i zero = _mm512_setzero_si512();
    for (int g = 0; g < groups; g += 4) {
        __m512i blended[2];
        for (int h = 0; h < 2; ++h) {
            __m512i t[2] = {zero, zero}, b[2] = {zero, zero};
            for (int k = 0; k < 2; ++k) {
                const int q = g + 2 * h + k;
                if (q >= groups) break;
                t[k] = group_values<kWide>(top, base[q], row_bytes, index + 64 * q, weights + 32 * q);
                b[k] = group_values<kWide>(bot, base[q], row_bytes, index + 64 * q, weights + 32 * q);
            }
            const __m512i tv = _mm512_packs_epi32(t[0], t[1]), bv = _mm512_packs_epi32(b[0], b[1]);
            const __m512i lo = _mm512_dpwssd_epi32(bias, _mm512_unpacklo_epi16(tv, bv), wv);
            const __m512i hi = _mm512_dpwssd_epi32(bias, _mm512_unpackhi_epi16(tv, bv), wv);
            blended[h] = _mm512_add_epi16(
                _mm512_packs_epi32(_mm512_srai_epi32(lo, kOutShift), _mm512_srai_epi32(hi, kOutShift)), off);
        }
        const __m512i q = int8_out ? _mm512_packs_epi16(blended[0], blended[1]) : _mm512_packus_epi16(blended[0], blended[1]);
        const __m512i v = _mm512_permutexvar_epi8(order, q);
        const int left = n - 16 * g;
        if (left >= 64)
            _mm512_storeu_si512(out + 16 * g, v);
        else
            _mm512_mask_storeu_epi8(out + 16 * g, (1ull << left) - 1, v);
    }
}

MTKSEG_AVX512 inline __m512i blend32(__m512i t, __m512i b, __m512i w, __m512i bias, __m512i offset) {
    const __m512i lo = _mm512_madd_epi16(_mm512_unpacklo_epi16(t, b), w);
    const __m512i hi = _mm512_madd_epi16(_mm512_unpackhi_epi16(t, b), w);
    const __m512i v = _mm512_packs_epi32(_mm512_srai_epi32(_mm512_add_epi32(lo, bias), kOutShift),
                                         _mm512_srai_epi32(_mm512_add_epi32(hi, bias), kOutShift));
    return _mm512_add_epi16(v, offset);
}

MTKSEG_AVX512 void vertical_avx512(const int16_t* top, const int16_t* bot, int wy, int n, int offset, bool int8_out,
                                   uint8_t* out) {
    const __m512i w = _mm512_set1_epi32(weight_pair(wy)), bias = _mm512_set1_epi32(kOutBias);
    const __m512i off = _mm512_set1_epi16(static_cast<int16_t>(offset));
    // The byte pack interleaves the 128-bit lanes' halves (v0.l0, v1.l0, v0.l1, ...): put them back.
    const __m512i order = _mm512_set_epi64(7, 5, 3, 1, 6, 4, 2, 0);
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        const __m512i v0 = blend32(_mm512_loadu_si512(top + i), _mm512_loadu_si512(bot + i), w, bias, off);
        const __m512i v1 = blend32(_mm512_loadu_si512(top + i + 32), _mm512_loadu_si512(bot + i + 32), w, bias, off);
        const __m512i q = int8_out ? _mm512_packs_epi16(v0, v1) : _mm512_packus_epi16(v0, v1);
        _mm512_storeu_si512(out + i, _mm512_permutexvar_epi64(order, q));
    }
    vertical_avx2(top + i, bot + i, wy, n - i, offset, int8_out, out + i);
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

// Fills c.group_base / group_index / row_bytes for horizontal_avx512, and pads c.weights to
// whole groups (zero weights) so that its vector loads stay inside.
void make_groups(Columns& c) {
    constexpr int kGroup = 16, kWindow = 128;
    const int n = 3 * static_cast<int>(c.off0.size()), groups = (n + kGroup - 1) / kGroup;
    c.weights.resize(2 * kGroup * static_cast<size_t>(groups), 0);
    const auto source = [&](int j, bool second) {  // byte offset of value j's tap p0 or p1
        const size_t x = static_cast<size_t>(j / 3);
        return (second ? c.off1[x] : c.off0[x]) + c.ch[j % 3];
    };
    std::ptrdiff_t last = source(0, false);
    for (int j = 0; j < n; ++j) last = std::max({last, source(j, false), source(j, true)});
    c.row_bytes = last + 1;
    c.group_window = 0;
    c.group_base.assign(static_cast<size_t>(groups), 0);
    c.group_index.assign(64 * static_cast<size_t>(groups), 0);
    for (int g = 0; g < groups; ++g) {
        const int from = kGroup * g, to = std::min(n, from + kGroup);
        std::ptrdiff_t lo = source(from, false), hi = lo;
        for (int j = from; j < to; ++j)
            for (bool second : {false, true}) {
                lo = std::min(lo, source(j, second));
                hi = std::max(hi, source(j, second));
            }
        if (hi - lo >= kWindow) {  // too steep a downscale for one window: no groups at all
            c.group_base.clear();
            c.group_index.clear();
            return;
        }
        c.group_window = std::max(c.group_window, static_cast<int>(hi - lo + 1));
        c.group_base[static_cast<size_t>(g)] = lo;
        for (int j = from; j < to; ++j) {
            uint8_t* pair = &c.group_index[64 * static_cast<size_t>(g) + 4 * static_cast<size_t>(j - from)];
            pair[0] = static_cast<uint8_t>(source(j, false) - lo);
            pair[2] = static_cast<uint8_t>(source(j, true) - lo);
        }
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
    if (packed) {
        make_shuffles(c);
        const int steps = c.vector_columns / 8;
        c.weights_avx2.resize(48 * static_cast<size_t>(steps));
        for (int b = 0; b < steps; ++b)
            for (int k = 0; k < 3; ++k)
                for (int half = 0; half < 2; ++half)
                    std::copy_n(&c.weights[48 * static_cast<size_t>(b) + 24 * half + 8 * k], 8,
                                &c.weights_avx2[48 * static_cast<size_t>(b) + 16 * k + 8 * half]);
    }
    make_groups(c);
    return c;
}

void horizontal(const uint8_t* row, const Columns& c, int16_t* out) {
    switch (simd::level()) {
#if MTKSEG_X86
        case simd::AVX512:
            if (!c.group_base.empty()) {
                if (c.group_window > 64)
                    horizontal_avx512<true>(row, c, out);
                else
                    horizontal_avx512<false>(row, c, out);
                return;
            }
            horizontal_avx2(row, c, out);  // a downscale too steep for the 128-byte windows
            return;
        case simd::AVX2: horizontal_avx2(row, c, out); return;
        case simd::SSE41: horizontal_sse41(row, c, out); return;
#elif MTKSEG_NEON
        case simd::NEON: horizontal_neon(row, c, out); return;
#endif
        default: horizontal_scalar(row, c, 0, out);
    }
}

bool row(const uint8_t* top, const uint8_t* bot, int wy, const Columns& c, int offset, bool int8_out, uint8_t* out) {
#if MTKSEG_X86
    if (simd::level() == simd::AVX512 && !c.group_base.empty()) {
        if (c.group_window > 64)
            row_avx512<true>(top, bot, wy, c, offset, int8_out, out);
        else
            row_avx512<false>(top, bot, wy, c, offset, int8_out, out);
        return true;
    }
#endif
    (void)top, (void)bot, (void)wy, (void)c, (void)offset, (void)int8_out, (void)out;
    return false;
}

void vertical(const int16_t* top, const int16_t* bot, int wy, int n, int offset, bool int8_out, uint8_t* out) {
    switch (simd::level()) {
#if MTKSEG_X86
        case simd::AVX512: vertical_avx512(top, bot, wy, n, offset, int8_out, out); return;
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
