// SIMD argmax over interleaved channels and confusion-code packing, with runtime dispatch.
// Every vector path is bit-exact with the scalar loops here (tests force each level).
//
// 8-bit argmax: each score becomes a 16-bit key (flipped score << 8 | class index), so one
// unsigned minimum over all classes yields the highest score and, on ties, the lowest class;
// SSE4.1's minpos does the last 8-lane step.  float32: blocks of pixels transposed so that a
// vertical compare-and-select runs over classes (tail pixels: max over classes, then the first
// class equal to it); pixels holding a NaN go to the scalar loop (their first NaN wins).
#include "simd.hpp"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "common.hpp"

#include "simd_arch.hpp"

namespace mtkseg {
namespace simd {
namespace {

// ---- scalar reference loops ------------------------------------------------------------

template <typename T>
inline uint8_t argmax_one_int(const T* q, int C) {
    T best = q[0];
    int idx = 0;
    for (int c = 1; c < C; ++c) {
        const bool gt = q[c] > best;
        best = gt ? q[c] : best;
        idx = gt ? c : idx;
    }
    return static_cast<uint8_t>(idx);
}

inline uint8_t argmax_one_f32(const void* q, int C) {
    float best = load_unaligned<float>(q, 0);
    int idx = 0;
    for (int c = 1; c < C; ++c) {
        const float s = load_unaligned<float>(q, c);
        const bool gt = s > best || (s != s && best == best);  // first NaN wins for good
        best = gt ? s : best;
        idx = gt ? c : idx;
    }
    return static_cast<uint8_t>(idx);
}

template <typename T>
void argmax_int_scalar(const T* p, int64_t sx, int from, int n, int C, uint8_t* out) {
    for (int x = from; x < n; ++x) out[x] = argmax_one_int(p + x * sx, C);
}

void argmax_f32_scalar(const void* p, int64_t sx, int from, int n, int C, uint8_t* out) {
    const char* b = static_cast<const char*>(p);
    for (int x = from; x < n; ++x) out[x] = argmax_one_f32(b + x * sx * 4, C);
}

// Pixels from 0 whose loads of `span` elements stay within `avail`.
inline int vector_pixels(int64_t sx, int n, int64_t span, int64_t avail) {
    if (avail < span) return 0;
    if (sx == 0) return n;
    const int64_t k = (avail - span) / sx + 1;
    return k < n ? static_cast<int>(k) : n;
}

void codes_scalar(const uint8_t* gt, const uint8_t* pred, int from, int n, int C, int ignore, uint8_t skip, uint8_t bad,
                  uint8_t* out) {
    for (int i = from; i < n; ++i) {
        const int g = gt[i], p = pred[i];
        out[i] = g == ignore ? skip : (g < C && p < C) ? static_cast<uint8_t>(g * C + p) : bad;
    }
}

// ---- x86-64 ----------------------------------------------------------------------------
#if MTKSEG_X86

__attribute__((target("sse4.1"))) void argmax8_sse41(const uint8_t* p, int64_t sx, int n, int C, uint8_t flip,
                                                     int64_t avail, uint8_t* out) {
    const int nch = (C + 15) / 16, rem = C - 16 * (nch - 1);
    const int nv = vector_pixels(sx, n, 16 * nch, avail);
    const __m128i fl = _mm_set1_epi8(static_cast<char>(flip));
    const __m128i lane = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m128i pad = _mm_cmpgt_epi8(lane, _mm_set1_epi8(static_cast<char>(rem - 1)));  // lanes past the classes
    const __m128i step = _mm_set1_epi8(16);
    int x = 0;
    if (nch == 1) {
        for (; x < nv; ++x) {
            __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + x * sx));
            v = _mm_or_si128(_mm_xor_si128(v, fl), pad);
            const __m128i m = _mm_min_epu16(_mm_unpacklo_epi8(lane, v), _mm_unpackhi_epi8(lane, v));
            out[x] = static_cast<uint8_t>(_mm_cvtsi128_si32(_mm_minpos_epu16(m)));
        }
    } else {
        for (; x < nv; ++x) {
            const uint8_t* q = p + x * sx;
            __m128i m = _mm_set1_epi8(-1), idx = lane;
            for (int k = 0; k < nch; ++k, q += 16, idx = _mm_add_epi8(idx, step)) {
                __m128i v = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)), fl);
                if (k == nch - 1) v = _mm_or_si128(v, pad);
                m = _mm_min_epu16(m, _mm_min_epu16(_mm_unpacklo_epi8(idx, v), _mm_unpackhi_epi8(idx, v)));
            }
            out[x] = static_cast<uint8_t>(_mm_cvtsi128_si32(_mm_minpos_epu16(m)));
        }
    }
    if (flip == 0xFF)
        argmax_int_scalar(p, sx, x, n, C, out);
    else
        argmax_int_scalar(reinterpret_cast<const int8_t*>(p), sx, x, n, C, out);
}

__attribute__((target("avx2"))) void argmax8_avx2(const uint8_t* p, int64_t sx, int n, int C, uint8_t flip,
                                                  int64_t avail, uint8_t* out) {
    const __m256i fl = _mm256_set1_epi8(static_cast<char>(flip));
    int x = 0;
    if (C <= 16) {  // two pixels per iteration, one in each 128-bit lane
        const int nv = vector_pixels(sx, n, 16, avail);
        const __m256i lane = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6,
                                              7, 8, 9, 10, 11, 12, 13, 14, 15);
        const __m256i pad = _mm256_cmpgt_epi8(lane, _mm256_set1_epi8(static_cast<char>(C - 1)));
        for (; x + 1 < nv; x += 2) {
            const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + x * sx));
            const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + (x + 1) * sx));
            __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1);
            v = _mm256_or_si256(_mm256_xor_si256(v, fl), pad);
            const __m256i m = _mm256_min_epu16(_mm256_unpacklo_epi8(lane, v), _mm256_unpackhi_epi8(lane, v));
            out[x] = static_cast<uint8_t>(_mm_cvtsi128_si32(_mm_minpos_epu16(_mm256_castsi256_si128(m))));
            out[x + 1] = static_cast<uint8_t>(_mm_cvtsi128_si32(_mm_minpos_epu16(_mm256_extracti128_si256(m, 1))));
        }
    } else {  // 32 classes per load
        const int nch = (C + 31) / 32, rem = C - 32 * (nch - 1);
        const int nv = vector_pixels(sx, n, 32 * nch, avail);
        const __m256i lane = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                                              21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31);
        const __m256i pad = _mm256_cmpgt_epi8(lane, _mm256_set1_epi8(static_cast<char>(rem - 1)));
        const __m256i step = _mm256_set1_epi8(32);
        for (; x < nv; ++x) {
            const uint8_t* q = p + x * sx;
            __m256i m = _mm256_set1_epi8(-1), idx = lane;
            for (int k = 0; k < nch; ++k, q += 32, idx = _mm256_add_epi8(idx, step)) {
                __m256i v = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)), fl);
                if (k == nch - 1) v = _mm256_or_si256(v, pad);
                m = _mm256_min_epu16(m, _mm256_min_epu16(_mm256_unpacklo_epi8(idx, v), _mm256_unpackhi_epi8(idx, v)));
            }
            const __m128i h = _mm_min_epu16(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
            out[x] = static_cast<uint8_t>(_mm_cvtsi128_si32(_mm_minpos_epu16(h)));
        }
    }
    if (flip == 0xFF)
        argmax_int_scalar(p, sx, x, n, C, out);
    else
        argmax_int_scalar(reinterpret_cast<const int8_t*>(p), sx, x, n, C, out);
}

__attribute__((target("sse4.1"))) void argmaxf_sse41(const void* data, int64_t sx, int n, int C, int64_t avail,
                                                     uint8_t* out) {
    const char* p = static_cast<const char*>(data);
    const int nch = (C + 3) / 4, rem = C - 4 * (nch - 1);
    const int nv = vector_pixels(sx, n, 4 * nch, avail);
    const __m128 ninf = _mm_set1_ps(-INFINITY);
    const __m128 pad = _mm_castsi128_ps(_mm_cmpgt_epi32(_mm_setr_epi32(0, 1, 2, 3), _mm_set1_epi32(rem - 1)));
    const int last_bits = (1 << rem) - 1;
    int x = 0;
    // 4 pixels at a time through 4x4 transposes (see argmaxf_avx2).
    for (; x + 4 <= nv; x += 4) {
        const char* q = p + x * sx * 4;
        const int64_t stride = sx * 4;
        __m128 best = _mm_setzero_ps(), idx = _mm_setzero_ps(), nan = _mm_setzero_ps();
        for (int k = 0; k < nch; ++k) {
            __m128 r0 = _mm_loadu_ps(reinterpret_cast<const float*>(q + 16 * k));
            __m128 r1 = _mm_loadu_ps(reinterpret_cast<const float*>(q + stride + 16 * k));
            __m128 r2 = _mm_loadu_ps(reinterpret_cast<const float*>(q + 2 * stride + 16 * k));
            __m128 r3 = _mm_loadu_ps(reinterpret_cast<const float*>(q + 3 * stride + 16 * k));
            nan = _mm_or_ps(_mm_or_ps(nan, _mm_cmpunord_ps(r0, r0)), _mm_cmpunord_ps(r1, r1));
            nan = _mm_or_ps(_mm_or_ps(nan, _mm_cmpunord_ps(r2, r2)), _mm_cmpunord_ps(r3, r3));
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            const __m128 col[4] = {r0, r1, r2, r3};
            const int classes = k == nch - 1 ? rem : 4;
            int j = 0;
            if (k == 0) {
                best = col[0];
                j = 1;
            }
            for (; j < classes; ++j) {
                const __m128 gt = _mm_cmpgt_ps(col[j], best);
                best = _mm_blendv_ps(best, col[j], gt);
                idx = _mm_blendv_ps(idx, _mm_castsi128_ps(_mm_set1_epi32(4 * k + j)), gt);
            }
        }
        if (_mm_movemask_ps(nan)) {
            for (int i = 0; i < 4; ++i) out[x + i] = argmax_one_f32(q + i * stride, C);
            continue;
        }
        const __m128i w16 = _mm_packus_epi32(_mm_castps_si128(idx), _mm_castps_si128(idx));
        const int32_t bytes = _mm_cvtsi128_si32(_mm_packus_epi16(w16, w16));
        std::memcpy(out + x, &bytes, 4);
    }
    for (; x < nv; ++x) {
        const char* q = p + x * sx * 4;
        __m128 mx = ninf, nan = _mm_setzero_ps();
        for (int k = 0; k < nch; ++k) {
            __m128 v = _mm_loadu_ps(reinterpret_cast<const float*>(q + 16 * k));
            if (k == nch - 1) v = _mm_blendv_ps(v, ninf, pad);
            nan = _mm_or_ps(nan, _mm_cmpunord_ps(v, v));
            mx = _mm_max_ps(mx, v);
        }
        if (_mm_movemask_ps(nan)) {
            out[x] = argmax_one_f32(q, C);
            continue;
        }
        mx = _mm_max_ps(mx, _mm_shuffle_ps(mx, mx, _MM_SHUFFLE(1, 0, 3, 2)));
        mx = _mm_max_ps(mx, _mm_shuffle_ps(mx, mx, _MM_SHUFFLE(2, 3, 0, 1)));
        for (int k = 0; k < nch; ++k) {
            int bits = _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(reinterpret_cast<const float*>(q + 16 * k)), mx));
            if (k == nch - 1) bits &= last_bits;
            if (bits) {
                out[x] = static_cast<uint8_t>(4 * k + __builtin_ctz(static_cast<unsigned>(bits)));
                break;
            }
        }
    }
    argmax_f32_scalar(data, sx, x, n, C, out);
}

// Class J (< 8) of 8 pixels from the half-transposed rows u of an 8x8 block.
template <int J>
__attribute__((target("avx2"), always_inline)) inline __m256 column8(const __m256 (&u)[8]) {
    return _mm256_permute2f128_ps(u[J & 3], u[(J & 3) + 4], J < 4 ? 0x20 : 0x31);
}

// Keeps the first maximum: class `cls` (scores `col` of 8 pixels) replaces the best so far
// where strictly greater.
__attribute__((target("avx2"), always_inline)) inline void select8(__m256 col, int cls, __m256& best, __m256& idx) {
    const __m256 gt = _mm256_cmp_ps(col, best, _CMP_GT_OQ);
    best = _mm256_blendv_ps(best, col, gt);
    idx = _mm256_blendv_ps(idx, _mm256_castsi256_ps(_mm256_set1_epi32(cls)), gt);
}

template <int First, int Count>
__attribute__((target("avx2"), always_inline)) inline void select_columns(const __m256 (&u)[8], int base, __m256& best,
                                                                         __m256& idx) {
    if constexpr (First < Count) {
        select8(column8<First>(u), base + First, best, idx);
        select_columns<First + 1, Count>(u, base, best, idx);
    }
}

// One chunk of `Classes` (<= 8) classes, at float offset 8k, of 8 pixels `stride` bytes apart.
// `sum` adds up every score: NaN survives addition, so a block holds a NaN only if its sum is
// NaN (inf - inf is NaN too: such a block just takes the exact scalar loop as well).
template <int Classes>
__attribute__((target("avx2"), always_inline)) inline void chunk8(const char* q, int64_t stride, int k, __m256& best,
                                                                 __m256& idx, __m256& sum) {
    if constexpr (Classes <= 4) {  // rows i and i + 4 share a register: one 4x4 transpose per 128-bit lane
        __m256 r[4];
        for (int i = 0; i < 4; ++i) {
            const __m128 lo = _mm_loadu_ps(reinterpret_cast<const float*>(q + i * stride + 32 * k));
            const __m128 hi = _mm_loadu_ps(reinterpret_cast<const float*>(q + (i + 4) * stride + 32 * k));
            r[i] = _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
        }
        sum = _mm256_add_ps(sum, _mm256_add_ps(_mm256_add_ps(r[0], r[1]), _mm256_add_ps(r[2], r[3])));
        const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
        const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
        const __m256 col[4] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE),
                               _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xEE)};
        int j = 0;
        if (k == 0) best = col[0], j = 1;
        for (; j < Classes; ++j) select8(col[j], 8 * k + j, best, idx);
    } else {
        __m256 r[8];
        for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(reinterpret_cast<const float*>(q + i * stride + 32 * k));
        sum = _mm256_add_ps(sum, _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(r[0], r[1]), _mm256_add_ps(r[2], r[3])),
                                               _mm256_add_ps(_mm256_add_ps(r[4], r[5]), _mm256_add_ps(r[6], r[7]))));
        const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
        const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
        const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
        const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
        const __m256 u[8] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE),
                             _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xEE),
                             _mm256_shuffle_ps(t4, t6, 0x44), _mm256_shuffle_ps(t4, t6, 0xEE),
                             _mm256_shuffle_ps(t5, t7, 0x44), _mm256_shuffle_ps(t5, t7, 0xEE)};
        if (k == 0) {
            best = column8<0>(u);
            select_columns<1, Classes>(u, 0, best, idx);
        } else {
            select_columns<0, Classes>(u, 8 * k, best, idx);
        }
    }
}

// 8 pixels at a time over [0, nv) (chunks of 8 classes, the last one of Rem); returns where it
// stopped.  A block whose scores hold a NaN goes to the scalar loop.
template <int Rem>
__attribute__((target("avx2"))) int argmaxf_blocks_avx2(const char* p, int64_t sx, int nv, int nch, uint8_t* out) {
    const int64_t stride = sx * 4;
    const int C = 8 * (nch - 1) + Rem;
    int x = 0;
    for (; x + 8 <= nv; x += 8) {
        const char* q = p + x * stride;
        __m256 best = _mm256_setzero_ps(), idx = _mm256_setzero_ps(), sum = _mm256_setzero_ps();
        for (int k = 0; k < nch - 1; ++k) chunk8<8>(q, stride, k, best, idx, sum);
        chunk8<Rem>(q, stride, nch - 1, best, idx, sum);
        if (_mm256_movemask_ps(_mm256_cmp_ps(sum, sum, _CMP_UNORD_Q))) {
            for (int i = 0; i < 8; ++i) out[x + i] = argmax_one_f32(q + i * stride, C);
            continue;
        }
        const __m256i id = _mm256_castps_si256(idx);
        const __m128i w16 = _mm_packus_epi32(_mm256_castsi256_si128(id), _mm256_extracti128_si256(id, 1));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(out + x), _mm_packus_epi16(w16, w16));
    }
    return x;
}

__attribute__((target("avx2"))) void argmaxf_avx2(const void* data, int64_t sx, int n, int C, int64_t avail,
                                                  uint8_t* out) {
    const char* p = static_cast<const char*>(data);
    const int nch = (C + 7) / 8, rem = C - 8 * (nch - 1);
    const int nv = vector_pixels(sx, n, 8 * nch, avail);
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    const __m256 pad = _mm256_castsi256_ps(
        _mm256_cmpgt_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(rem - 1)));
    const int last_bits = (1 << rem) - 1;
    int x = 0;
    switch (rem) {  // the classes of the last chunk, a constant inside each instantiation
    case 1: x = argmaxf_blocks_avx2<1>(p, sx, nv, nch, out); break;
    case 2: x = argmaxf_blocks_avx2<2>(p, sx, nv, nch, out); break;
    case 3: x = argmaxf_blocks_avx2<3>(p, sx, nv, nch, out); break;
    case 4: x = argmaxf_blocks_avx2<4>(p, sx, nv, nch, out); break;
    case 5: x = argmaxf_blocks_avx2<5>(p, sx, nv, nch, out); break;
    case 6: x = argmaxf_blocks_avx2<6>(p, sx, nv, nch, out); break;
    case 7: x = argmaxf_blocks_avx2<7>(p, sx, nv, nch, out); break;
    default: x = argmaxf_blocks_avx2<8>(p, sx, nv, nch, out); break;
    }
    for (; x < nv; ++x) {
        const char* q = p + x * sx * 4;
        __m256 mx = ninf, nan = _mm256_setzero_ps();
        for (int k = 0; k < nch; ++k) {
            __m256 v = _mm256_loadu_ps(reinterpret_cast<const float*>(q + 32 * k));
            if (k == nch - 1) v = _mm256_blendv_ps(v, ninf, pad);
            nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
            mx = _mm256_max_ps(mx, v);
        }
        if (_mm256_movemask_ps(nan)) {
            out[x] = argmax_one_f32(q, C);
            continue;
        }
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        h = _mm_max_ps(h, _mm_shuffle_ps(h, h, _MM_SHUFFLE(1, 0, 3, 2)));
        h = _mm_max_ps(h, _mm_shuffle_ps(h, h, _MM_SHUFFLE(2, 3, 0, 1)));
        const __m256 m = _mm256_set_m128(h, h);
        for (int k = 0; k < nch; ++k) {
            int bits = _mm256_movemask_ps(
                _mm256_cmp_ps(_mm256_loadu_ps(reinterpret_cast<const float*>(q + 32 * k)), m, _CMP_EQ_OQ));
            if (k == nch - 1) bits &= last_bits;
            if (bits) {
                out[x] = static_cast<uint8_t>(8 * k + __builtin_ctz(static_cast<unsigned>(bits)));
                break;
            }
        }
    }
    argmax_f32_scalar(data, sx, x, n, C, out);
}

__attribute__((target("sse4.1"))) void codes_sse41(const uint8_t* gt, const uint8_t* pred, int n, int C, int ignore,
                                                   uint8_t skip, uint8_t bad, uint8_t* out) {
    alignas(16) uint8_t mul[16];
    for (int j = 0; j < 16; ++j) mul[j] = static_cast<uint8_t>(j < C ? j * C : 0);
    const __m128i tab = _mm_load_si128(reinterpret_cast<const __m128i*>(mul));
    const __m128i top = _mm_set1_epi8(static_cast<char>(C - 1)), badv = _mm_set1_epi8(static_cast<char>(bad));
    const __m128i skipv = _mm_set1_epi8(static_cast<char>(skip));
    const bool has_ignore = ignore >= 0 && ignore <= 255;
    const __m128i ig = _mm_set1_epi8(static_cast<char>(has_ignore ? ignore : 0));
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m128i g = _mm_loadu_si128(reinterpret_cast<const __m128i*>(gt + i));
        const __m128i pr = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pred + i));
        const __m128i ok = _mm_and_si128(_mm_cmpeq_epi8(_mm_min_epu8(g, top), g), _mm_cmpeq_epi8(_mm_min_epu8(pr, top), pr));
        __m128i code = _mm_add_epi8(_mm_shuffle_epi8(tab, g), pr);  // lanes with g >= 16 are replaced below
        code = _mm_blendv_epi8(badv, code, ok);
        if (has_ignore) code = _mm_blendv_epi8(code, skipv, _mm_cmpeq_epi8(g, ig));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), code);
    }
    codes_scalar(gt, pred, i, n, C, ignore, skip, bad, out);
}

__attribute__((target("avx2"))) void codes_avx2(const uint8_t* gt, const uint8_t* pred, int n, int C, int ignore,
                                                uint8_t skip, uint8_t bad, uint8_t* out) {
    alignas(16) uint8_t mul[16];
    for (int j = 0; j < 16; ++j) mul[j] = static_cast<uint8_t>(j < C ? j * C : 0);
    const __m256i tab = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(mul)));
    const __m256i top = _mm256_set1_epi8(static_cast<char>(C - 1)), badv = _mm256_set1_epi8(static_cast<char>(bad));
    const __m256i skipv = _mm256_set1_epi8(static_cast<char>(skip));
    const bool has_ignore = ignore >= 0 && ignore <= 255;
    const __m256i ig = _mm256_set1_epi8(static_cast<char>(has_ignore ? ignore : 0));
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i g = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(gt + i));
        const __m256i pr = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pred + i));
        const __m256i ok = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_min_epu8(g, top), g),
                                            _mm256_cmpeq_epi8(_mm256_min_epu8(pr, top), pr));
        __m256i code = _mm256_add_epi8(_mm256_shuffle_epi8(tab, g), pr);
        code = _mm256_blendv_epi8(badv, code, ok);
        if (has_ignore) code = _mm256_blendv_epi8(code, skipv, _mm256_cmpeq_epi8(g, ig));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), code);
    }
    codes_scalar(gt, pred, i, n, C, ignore, skip, bad, out);
}

#endif  // MTKSEG_X86

// ---- aarch64 ---------------------------------------------------------------------------
#if MTKSEG_NEON

// Index of the first set lane of a 16-lane byte mask (0xFF / 0x00 lanes), 16 if none.
inline int first_lane_u8(uint8x16_t eq) {
    const uint64_t bits = vget_lane_u64(vreinterpret_u64_u8(vshrn_n_u16(vreinterpretq_u16_u8(eq), 4)), 0);
    return bits ? __builtin_ctzll(bits) / 4 : 16;
}

// Max-based: scores mapped to unsigned order (int8: ^ 0x80), lanes past the classes zeroed.
void argmax8_neon(const uint8_t* p, int64_t sx, int n, int C, uint8_t to_unsigned, int64_t avail, uint8_t* out) {
    const int nch = (C + 15) / 16, rem = C - 16 * (nch - 1);
    const int nv = vector_pixels(sx, n, 16 * nch, avail);
    static const uint8_t lanes[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const uint8x16_t valid = vcltq_u8(vld1q_u8(lanes), vdupq_n_u8(static_cast<uint8_t>(rem)));
    const uint8x16_t fl = vdupq_n_u8(to_unsigned);
    int x = 0;
    for (; x < nv; ++x) {
        const uint8_t* q = p + x * sx;
        uint8x16_t mx = vdupq_n_u8(0);
        for (int k = 0; k < nch; ++k) {
            uint8x16_t v = veorq_u8(vld1q_u8(q + 16 * k), fl);
            if (k == nch - 1) v = vandq_u8(v, valid);
            mx = vmaxq_u8(mx, v);
        }
        const uint8x16_t m = vdupq_n_u8(vmaxvq_u8(mx));
        for (int k = 0; k < nch; ++k) {
            uint8x16_t eq = vceqq_u8(veorq_u8(vld1q_u8(q + 16 * k), fl), m);
            if (k == nch - 1) eq = vandq_u8(eq, valid);
            const int lane = first_lane_u8(eq);
            if (lane < 16) {
                out[x] = static_cast<uint8_t>(16 * k + lane);
                break;
            }
        }
    }
    if (to_unsigned == 0)
        argmax_int_scalar(p, sx, x, n, C, out);
    else
        argmax_int_scalar(reinterpret_cast<const int8_t*>(p), sx, x, n, C, out);
}

void argmaxf_neon(const void* data, int64_t sx, int n, int C, int64_t avail, uint8_t* out) {
    const char* p = static_cast<const char*>(data);
    const int nch = (C + 3) / 4, rem = C - 4 * (nch - 1);
    const int nv = vector_pixels(sx, n, 4 * nch, avail);
    static const uint32_t lanes[4] = {0, 1, 2, 3};
    const uint32x4_t valid = vcltq_u32(vld1q_u32(lanes), vdupq_n_u32(static_cast<uint32_t>(rem)));
    const float32x4_t ninf = vdupq_n_f32(-INFINITY);
    int x = 0;
    for (; x < nv; ++x) {
        const char* q = p + x * sx * 4;
        float32x4_t mx = ninf;
        uint32x4_t ordered = vdupq_n_u32(0xFFFFFFFFu);
        for (int k = 0; k < nch; ++k) {
            float32x4_t v = vreinterpretq_f32_u8(vld1q_u8(reinterpret_cast<const uint8_t*>(q + 16 * k)));
            if (k == nch - 1) v = vbslq_f32(valid, v, ninf);
            ordered = vandq_u32(ordered, vceqq_f32(v, v));
            mx = vmaxq_f32(mx, v);
        }
        if (vminvq_u32(ordered) == 0) {  // a NaN
            out[x] = argmax_one_f32(q, C);
            continue;
        }
        const float32x4_t m = vdupq_n_f32(vmaxvq_f32(mx));
        for (int k = 0; k < nch; ++k) {
            const float32x4_t v = vreinterpretq_f32_u8(vld1q_u8(reinterpret_cast<const uint8_t*>(q + 16 * k)));
            uint32x4_t eq = vceqq_f32(v, m);
            if (k == nch - 1) eq = vandq_u32(eq, valid);
            const uint64_t bits = vget_lane_u64(vreinterpret_u64_u16(vmovn_u32(eq)), 0);
            if (bits) {
                out[x] = static_cast<uint8_t>(4 * k + __builtin_ctzll(bits) / 16);
                break;
            }
        }
    }
    argmax_f32_scalar(data, sx, x, n, C, out);
}

#endif  // MTKSEG_NEON

int best_level() {
#if MTKSEG_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vbmi") &&
        __builtin_cpu_supports("avx512vnni"))
        return AVX512;
    if (__builtin_cpu_supports("avx2")) return AVX2;
    if (__builtin_cpu_supports("sse4.1")) return SSE41;
    return Scalar;
#elif MTKSEG_NEON
    return NEON;
#else
    return Scalar;
#endif
}

bool is_supported(int l) {
    if (l == Scalar) return true;
#if MTKSEG_X86
    return (l == SSE41 || l == AVX2 || l == AVX512) && l <= best_level();
#elif MTKSEG_NEON
    return l == NEON;
#else
    return false;
#endif
}

int parse_level(const std::string& name) {
    for (int l = Scalar; l <= NEON; ++l)
        if (name == level_name(l)) return l;
    return -1;
}

std::atomic<int> g_level{-1};

}  // namespace

const char* level_name(int level) {
    switch (level) {
        case SSE41: return "sse4.1";
        case AVX2: return "avx2";
        case AVX512: return "avx512";
        case NEON: return "neon";
        default: return "scalar";
    }
}

std::vector<std::string> supported_levels() {
    std::vector<std::string> out;
    for (int l = Scalar; l <= NEON; ++l)
        if (is_supported(l)) out.push_back(level_name(l));
    return out;
}

int level() {
    int l = g_level.load(std::memory_order_relaxed);
    if (l >= 0) return l;
    const char* env = std::getenv("MTKSEG_SIMD");
    const int want = env ? parse_level(env) : -1;
    l = want >= 0 && is_supported(want) ? want : best_level();
    // An x86 level above what the CPU has is capped at the best one it has.
    g_level.store(l, std::memory_order_relaxed);
    return l;
}

std::string set_level(const std::string& name) {
    const std::string previous = level_name(level());
    const int want = name == "auto" ? best_level() : parse_level(name);
    if (want < 0 || !is_supported(want)) {
        std::string names;
        for (const auto& s : supported_levels()) names += (names.empty() ? "" : ", ") + s;
        throw ArgumentError("simd level: '" + name + "' is not supported here (supported: " + names + ", auto)");
    }
    g_level.store(want, std::memory_order_relaxed);
    return previous;
}

void argmax_u8(const uint8_t* p, int64_t sx, int n, int C, int64_t avail, uint8_t* out) {
    switch (level()) {
#if MTKSEG_X86
        case AVX512:  // no AVX-512 version: the AVX2 one
        case AVX2: argmax8_avx2(p, sx, n, C, 0xFF, avail, out); return;
        case SSE41: argmax8_sse41(p, sx, n, C, 0xFF, avail, out); return;
#elif MTKSEG_NEON
        case NEON: argmax8_neon(p, sx, n, C, 0x00, avail, out); return;
#endif
        default: argmax_int_scalar(p, sx, 0, n, C, out);
    }
    (void)avail;
}

void argmax_i8(const int8_t* p, int64_t sx, int n, int C, int64_t avail, uint8_t* out) {
    switch (level()) {
#if MTKSEG_X86
        case AVX512:  // no AVX-512 version: the AVX2 one
        case AVX2: argmax8_avx2(reinterpret_cast<const uint8_t*>(p), sx, n, C, 0x7F, avail, out); return;
        case SSE41: argmax8_sse41(reinterpret_cast<const uint8_t*>(p), sx, n, C, 0x7F, avail, out); return;
#elif MTKSEG_NEON
        case NEON: argmax8_neon(reinterpret_cast<const uint8_t*>(p), sx, n, C, 0x80, avail, out); return;
#endif
        default: argmax_int_scalar(p, sx, 0, n, C, out);
    }
    (void)avail;
}

void argmax_f32(const void* p, int64_t sx, int n, int C, int64_t avail, uint8_t* out) {
    switch (level()) {
#if MTKSEG_X86
        case AVX512:  // no AVX-512 version: the AVX2 one
        case AVX2: argmaxf_avx2(p, sx, n, C, avail, out); return;
        case SSE41: argmaxf_sse41(p, sx, n, C, avail, out); return;
#elif MTKSEG_NEON
        case NEON: argmaxf_neon(p, sx, n, C, avail, out); return;
#endif
        default: argmax_f32_scalar(p, sx, 0, n, C, out);
    }
    (void)avail;
}

void confusion_codes(const uint8_t* gt, const uint8_t* pred, int n, int C, int ignore, uint8_t skip, uint8_t bad,
                     uint8_t* out) {
    switch (level()) {
#if MTKSEG_X86
        case AVX512:  // no AVX-512 version: the AVX2 one
        case AVX2: codes_avx2(gt, pred, n, C, ignore, skip, bad, out); return;
        case SSE41: codes_sse41(gt, pred, n, C, ignore, skip, bad, out); return;
#endif
        default: codes_scalar(gt, pred, 0, n, C, ignore, skip, bad, out);
    }
}

}  // namespace simd
}  // namespace mtkseg
