// uint8 frame -> model input tensor in one pass: resize (bilinear or area), colour order,
// normalisation or quantisation, optional letterbox, written straight into `dst`.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

#include "kernels.hpp"
#include "linear_u8.hpp"

namespace mtkseg {
namespace {

// Horizontal or vertical resampling taps in compressed-row form: destination index i reads
// src[idx[k]] * weight[k] for k in [start[i], start[i + 1]).
struct Taps {
    std::vector<int> start, idx;
    std::vector<float> weight;
};

// OpenCV INTER_LINEAR geometry as taps (one tap where the weight of the second is zero).
Taps linear_taps(int src, int dst) {
    Taps t;
    const double scale = 1.0 / (static_cast<double>(dst) / src);  // OpenCV computes it this way
    t.start.push_back(0);
    for (int d = 0; d < dst; ++d) {
        const LinearTap tap = linear_tap(d, scale, src);
        t.idx.push_back(tap.i0);
        t.weight.push_back(1.f - tap.w);
        if (tap.w > 0.f) {
            t.idx.push_back(tap.i1);
            t.weight.push_back(tap.w);
        }
        t.start.push_back(static_cast<int>(t.idx.size()));
    }
    return t;
}

// OpenCV INTER_AREA geometry for downscaling: each output pixel averages the source area it
// covers, partially covered source pixels weighted by their covered fraction.
Taps area_taps(int src, int dst) {
    Taps t;
    const double scale = static_cast<double>(src) / dst;
    t.start.push_back(0);
    for (int d = 0; d < dst; ++d) {
        const double f1 = d * scale, f2 = f1 + scale;
        const double cell = std::min(scale, src - f1);
        const int s1 = static_cast<int>(std::ceil(f1)), s2 = static_cast<int>(std::floor(f2));
        if (s1 - f1 > 1e-3) {
            t.idx.push_back(s1 - 1);
            t.weight.push_back(static_cast<float>((s1 - f1) / cell));
        }
        for (int s = s1; s < s2 && s < src; ++s) {
            t.idx.push_back(s);
            t.weight.push_back(static_cast<float>(1.0 / cell));
        }
        if (f2 - s2 > 1e-3 && s2 < src) {
            t.idx.push_back(s2);
            t.weight.push_back(static_cast<float>(std::min(std::min(f2 - s2, 1.0), cell) / cell));
        }
        t.start.push_back(static_cast<int>(t.idx.size()));
    }
    return t;
}

struct SrcView {
    const uint8_t* data;
    py::ssize_t sy, sx, sc;  // byte strides
    int channels_used;       // 1 (gray) or 3 (r, g, b)
    int ch[3];               // source channel index of r, g, b
};

// Accumulates weight * (horizontally resampled source row y) into acc (dst_w x channels_used).
inline void accumulate_row(const SrcView& s, int y, float wy, const Taps& xt, int dst_w, float* acc) {
    const uint8_t* row = s.data + y * s.sy;
    if (s.channels_used == 1) {
        for (int dx = 0; dx < dst_w; ++dx) {
            float v = 0.f;
            for (int k = xt.start[dx]; k < xt.start[dx + 1]; ++k) v += xt.weight[k] * row[xt.idx[k] * s.sx];
            acc[dx] += wy * v;
        }
        return;
    }
    const py::ssize_t cr = s.ch[0] * s.sc, cg = s.ch[1] * s.sc, cb = s.ch[2] * s.sc;
    for (int dx = 0; dx < dst_w; ++dx) {
        float r = 0.f, g = 0.f, b = 0.f;
        for (int k = xt.start[dx]; k < xt.start[dx + 1]; ++k) {
            const uint8_t* p = row + xt.idx[k] * s.sx;
            const float w = xt.weight[k];
            r += w * p[cr];
            g += w * p[cg];
            b += w * p[cb];
        }
        acc[3 * dx] += wy * r;
        acc[3 * dx + 1] += wy * g;
        acc[3 * dx + 2] += wy * b;
    }
}

struct DstView {
    uint8_t* data;
    py::ssize_t sy, sx, sc;  // byte strides
    int channels;            // 1 or 3
    int order[3];            // output channel k takes buffer channel order[k] (r=0, g=1, b=2)
    bool to_gray;            // colour source, gray model
    float a[3], b[3];        // value -> a * value + b per output channel
    DType dtype;
    float qmin, qmax;
};

template <typename T>
inline void store(uint8_t* p, float v, const DstView& d);
template <>
inline void store<float>(uint8_t* p, float v, const DstView&) {
    std::memcpy(p, &v, sizeof v);  // outputs may be unaligned numpy views
}
template <>
inline void store<uint16_t>(uint8_t* p, float v, const DstView&) {
    const uint16_t h = float_to_half(v);
    std::memcpy(p, &h, sizeof h);
}
// Round half to even without a libm call (SSE2 has no round instruction): adding and
// subtracting 1.5 * 2^23 leaves the nearest integer for |v| < 2^22.  Clamping first keeps v
// in range; inputs are finite by construction.
inline float round_even(float v) {
    // Without -ffast-math the compiler must keep (v + m) - m as written.
    const float m = 12582912.0f;
    return (v + m) - m;
}
template <>
inline void store<int8_t>(uint8_t* p, float v, const DstView& d) {
    *reinterpret_cast<int8_t*>(p) = static_cast<int8_t>(round_even(std::min(d.qmax, std::max(d.qmin, v))));
}
template <>
inline void store<uint8_t>(uint8_t* p, float v, const DstView& d) {
    *p = static_cast<uint8_t>(round_even(std::min(d.qmax, std::max(d.qmin, v))));
}

// Contiguous stores of n values (vectorisable: no calls, no branches).
inline void store_row(float* out, const float* v, int n, const DstView&) { std::memcpy(out, v, sizeof(float) * n); }
inline void store_row(uint16_t* out, const float* v, int n, const DstView&) {
    auto* bytes = reinterpret_cast<uint8_t*>(out);  // possibly unaligned: stored via memcpy
    for (int i = 0; i < n; ++i) {
        const uint16_t h = float_to_half(v[i]);
        std::memcpy(bytes + 2 * i, &h, sizeof h);
    }
}
inline void store_row(int8_t* out, const float* v, int n, const DstView& d) {
    const float lo = d.qmin, hi = d.qmax;
    for (int i = 0; i < n; ++i) out[i] = static_cast<int8_t>(static_cast<int>(round_even(std::min(hi, std::max(lo, v[i])))));
}
inline void store_row(uint8_t* out, const float* v, int n, const DstView& d) {
    const float lo = d.qmin, hi = d.qmax;
    for (int i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(static_cast<int>(round_even(std::min(hi, std::max(lo, v[i])))));
}

// Writes one row of interpolated pixel values (buffer order r, g, b or gray) into dst.
template <typename T>
void write_row(const DstView& d, int y, int x0, int w, const float* buf, int buf_channels) {
    uint8_t* row = d.data + y * d.sy + x0 * d.sx;
    for (int x = 0; x < w; ++x) {
        const float* px = buf + x * buf_channels;
        uint8_t* out = row + x * d.sx;
        if (d.channels == 1) {
            const float v = d.to_gray ? 0.299f * px[0] + 0.587f * px[1] + 0.114f * px[2] : px[0];
            store<T>(out, v * d.a[0] + d.b[0], d);
        } else {
            for (int k = 0; k < 3; ++k) {
                const float v = buf_channels == 1 ? px[0] : px[d.order[k]];
                store<T>(out + k * d.sc, v * d.a[k] + d.b[k], d);
            }
        }
    }
}

template <typename T>
void fill_pad(const DstView& d, int h, int w, const float pad[3]) {
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            for (int k = 0; k < d.channels; ++k)
                store<T>(d.data + y * d.sy + x * d.sx + k * d.sc, pad[k] * d.a[k] + d.b[k], d);
}

// Bilinear fast path: exactly two taps per axis, no accumulation buffer passes.
template <typename T>
void linear_rows(const SrcView& s, const DstView& d, int sw, int sh, int x0, int y0, int rw, int rh) {
    const double sx_scale = 1.0 / (static_cast<double>(rw) / sw), sy_scale = 1.0 / (static_cast<double>(rh) / sh);
    std::vector<py::ssize_t> off0(static_cast<size_t>(rw)), off1(static_cast<size_t>(rw));
    std::vector<float> wx(static_cast<size_t>(rw));
    for (int x = 0; x < rw; ++x) {
        const LinearTap t = linear_tap(x, sx_scale, sw);
        off0[x] = t.i0 * s.sx;
        off1[x] = t.i1 * s.sx;
        wx[x] = t.w;
    }
    const int bc = s.channels_used;
    parallel_for(rh, rows_per_chunk(4 * rw * bc), [&](int64_t b, int64_t e) {
        std::vector<float> buf(static_cast<size_t>(rw * bc));
        for (int64_t dy = b; dy < e; ++dy) {
            const LinearTap ty = linear_tap(static_cast<int>(dy), sy_scale, sh);
            const uint8_t* r0 = s.data + ty.i0 * s.sy;
            const uint8_t* r1 = s.data + ty.i1 * s.sy;
            const float wy = ty.w;
            float* o = buf.data();
            for (int x = 0; x < rw; ++x, o += bc) {
                const uint8_t *a = r0 + off0[x], *bb = r0 + off1[x], *c = r1 + off0[x], *dd = r1 + off1[x];
                const float w = wx[x];
                for (int k = 0; k < bc; ++k) {
                    const py::ssize_t ch = s.ch[k] * s.sc;
                    const float top = a[ch] + w * (bb[ch] - a[ch]);
                    const float bot = c[ch] + w * (dd[ch] - c[ch]);
                    o[k] = top + wy * (bot - top);
                }
            }
            write_row<T>(d, y0 + static_cast<int>(dy), x0, rw, buf.data(), bc);
        }
    });
}

// The common case, specialised: packed 3-channel frame (BGR/RGB, pixel stride 3) into a
// packed NHWC 3-channel tensor, separably like OpenCV: each source row a destination row
// needs is resampled horizontally once (gathers, in output channel order), then the vertical
// blend, normalisation and store run over contiguous arrays the compiler vectorises.
template <typename T, bool swap>
void linear_rows_packed3(const SrcView& s, const DstView& d, int sw, int sh, int x0, int y0, int rw, int rh) {
    const double sx_scale = 1.0 / (static_cast<double>(rw) / sw), sy_scale = 1.0 / (static_cast<double>(rh) / sh);
    const int n = rw * 3;
    std::vector<int> off0(static_cast<size_t>(rw)), off1(static_cast<size_t>(rw));
    std::vector<float> wx(static_cast<size_t>(rw)), scale(static_cast<size_t>(n)), shift(static_cast<size_t>(n));
    for (int x = 0; x < rw; ++x) {
        const LinearTap t = linear_tap(x, sx_scale, sw);
        off0[x] = 3 * t.i0;
        off1[x] = 3 * t.i1;
        wx[x] = t.w;
        for (int k = 0; k < 3; ++k) scale[3 * x + k] = d.a[k], shift[3 * x + k] = d.b[k];
    }
    auto horizontal = [&](const uint8_t* row, float* dst) {
        for (int x = 0; x < rw; ++x) {
            const uint8_t *p0 = row + off0[x], *p1 = row + off1[x];
            const float w = wx[x];
            for (int k = 0; k < 3; ++k) {
                const int c = swap ? 2 - k : k;
                dst[3 * x + k] = p0[c] + w * static_cast<float>(p1[c] - p0[c]);
            }
        }
    };
    if (rw < sw && rh < sh) {
        // Downscaling: blend the two source rows first over contiguous memory (vectorised),
        // then gather two taps per output pixel from that one float row.
        const int src_n = sw * 3;
        parallel_for(rh, rows_per_chunk(static_cast<int64_t>(src_n) * 2), [&](int64_t b, int64_t e) {
            std::vector<float> blend(static_cast<size_t>(src_n)), value(static_cast<size_t>(n));
            for (int64_t dy = b; dy < e; ++dy) {
                const LinearTap ty = linear_tap(static_cast<int>(dy), sy_scale, sh);
                const uint8_t* r0 = s.data + ty.i0 * s.sy;
                const uint8_t* r1 = s.data + ty.i1 * s.sy;
                const float wy = ty.w;
                float* bl = blend.data();
                for (int i = 0; i < src_n; ++i) bl[i] = r0[i] + wy * static_cast<float>(r1[i] - r0[i]);
                for (int x = 0; x < rw; ++x) {
                    const float *p0 = bl + off0[x], *p1 = bl + off1[x];
                    const float w = wx[x];
                    for (int k = 0; k < 3; ++k) {
                        const int c = swap ? 2 - k : k;
                        value[3 * x + k] = (p0[c] + w * (p1[c] - p0[c])) * scale[3 * x + k] + shift[3 * x + k];
                    }
                }
                store_row(reinterpret_cast<T*>(d.data + (y0 + dy) * d.sy + x0 * d.sx), value.data(), n, d);
            }
        });
        return;
    }
    parallel_for(rh, rows_per_chunk(2 * n), [&](int64_t b, int64_t e) {
        std::vector<float> top(static_cast<size_t>(n)), bot(static_cast<size_t>(n));
        std::vector<float> value(static_cast<size_t>(n));
        int top_row = -1, bot_row = -1;
        for (int64_t dy = b; dy < e; ++dy) {
            const LinearTap ty = linear_tap(static_cast<int>(dy), sy_scale, sh);
            if (ty.i0 != top_row) {
                if (ty.i0 == bot_row) {
                    top.swap(bot);
                    std::swap(top_row, bot_row);
                } else {
                    horizontal(s.data + ty.i0 * s.sy, top.data());
                    top_row = ty.i0;
                }
            }
            if (ty.w > 0.f && ty.i1 != bot_row) {
                horizontal(s.data + ty.i1 * s.sy, bot.data());
                bot_row = ty.i1;
            }
            const float wy = ty.w;
            const float* t = top.data();
            const float* bo = wy > 0.f ? bot.data() : top.data();
            float* v = value.data();
            for (int i = 0; i < n; ++i) v[i] = (t[i] + wy * (bo[i] - t[i])) * scale[i] + shift[i];
            T* out = reinterpret_cast<T*>(d.data + (y0 + dy) * d.sy + x0 * d.sx);
            store_row(out, v, n, d);
        }
    });
}

// The horizontally resampled source rows an output row blends, two at a time: consecutive
// output rows that share a source row (upscaling) resample it once.
class RowCache {
public:
    RowCache(const SrcView& s, const linear_u8::Columns& cols, int n) : s_(s), cols_(cols), n_(n) {}
    // Source row y, computing it in the slot that does not hold row `keep` if needed.
    const int16_t* get(int y, int keep) {
        for (int k = 0; k < 2; ++k)
            if (row_[k] == y) return buf_[k].data();
        const int k = row_[0] == keep ? 1 : 0;
        buf_[k].resize(static_cast<size_t>(n_));  // on first use: the fused loop needs none
        linear_u8::horizontal(s_.data + y * s_.sy, cols_, buf_[k].data());
        row_[k] = y;
        return buf_[k].data();
    }

private:
    const SrcView& s_;
    const linear_u8::Columns& cols_;
    int n_;
    std::vector<int16_t> buf_[2];
    int row_[2] = {-1, -1};
};

// The column taps of the last integer-path resize on this thread: a video's frames all have
// one geometry, and building the taps (~10 us at 384 columns) is a tenth of the resize.
const linear_u8::Columns& cached_columns(int sw, int rw, std::ptrdiff_t sx, const std::ptrdiff_t ch[3], bool packed) {
    struct Entry {
        int sw = -1, rw = -1;
        std::ptrdiff_t sx = 0, ch[3] = {0, 0, 0};
        bool packed = false;
        linear_u8::Columns cols;
    };
    thread_local Entry last;
    if (last.sw != sw || last.rw != rw || last.sx != sx || last.packed != packed || last.ch[0] != ch[0] ||
        last.ch[1] != ch[1] || last.ch[2] != ch[2]) {
        last.sw = -1;  // invalid until the new taps are complete (make_columns may throw bad_alloc)
        last.cols = linear_u8::make_columns(sw, rw, sx, ch, packed);
        last.rw = rw, last.sx = sx, last.packed = packed;
        for (int k = 0; k < 3; ++k) last.ch[k] = ch[k];
        last.sw = sw;
    }
    return last.cols;
}

// Integer path (linear_u8.hpp): 3-channel frame with any strides, bilinear, into a packed
// NHWC uint8/int8 tensor whose quantised value is pixel + offset.  The vector loops take
// packed frames (pixel stride 3, channel stride 1); others run the scalar loops.  Downscales
// by 1.5x or more take the fused row loop where the CPU has one: fewer output rows share a
// source row there, and recomputing the shared ones costs less than the two-pass loop's
// stores and reloads (measured equal at 1.5x).
void linear_rows_fixed(const SrcView& s, const DstView& d, int sw, int sh, int x0, int y0, int rw, int rh, int offset) {
    std::ptrdiff_t ch[3];
    for (int k = 0; k < 3; ++k) ch[k] = s.ch[d.order[k]] * s.sc;
    // This thread's cache, read by the chunks on pool workers while this thread waits for them.
    const linear_u8::Columns& cols = cached_columns(sw, rw, s.sx, ch, s.sx == 3 && s.sc == 1);
    const double sy_scale = 1.0 / (static_cast<double>(rh) / sh);
    const int n = rw * 3;
    const bool int8_out = d.dtype == DType::I8;
    const bool fused = 2 * static_cast<int64_t>(sh) >= 3 * static_cast<int64_t>(rh);
    parallel_for(rh, rows_per_chunk(2 * n), [&](int64_t b, int64_t e) {
        RowCache rows(s, cols, n);
        for (int64_t dy = b; dy < e; ++dy) {
            const LinearTap ty = linear_tap(static_cast<int>(dy), sy_scale, sh);
            const int wy = linear_u8::weight(ty.w);
            uint8_t* out = d.data + (y0 + dy) * d.sy + x0 * d.sx;
            if (fused && linear_u8::row(s.data + ty.i0 * s.sy, s.data + ty.i1 * s.sy, wy, cols, offset, int8_out, out))
                continue;
            const int16_t* top = rows.get(ty.i0, ty.i1);
            const int16_t* bot = wy > 0 ? rows.get(ty.i1, ty.i0) : top;
            linear_u8::vertical(top, bot, wy, n, offset, int8_out, out);
        }
    });
}

// Any packed frame (pixel stride = channel count: gray, BGR/RGB, BGRA/RGBA) with any taps,
// vertical pass first: the source rows of one output row are blended with their weights over
// contiguous memory (vectorised), then one horizontal pass resamples that float row into the
// model's channels.  Packed 3-channel NHWC outputs get contiguous vectorised stores; other
// layouts (NCHW, one channel) are written through their strides.
template <typename T>
void packed_rows(const SrcView& s, const DstView& d, int src_c, const Taps& xt, const Taps& yt, int sw, int x0, int y0,
                 int rw, int rh) {
    const int src_n = sw * src_c, bc = s.channels_used;
    const bool contiguous_out = d.channels == 3 && !d.to_gray && d.sx == static_cast<py::ssize_t>(3 * sizeof(T)) &&
                                d.sc == static_cast<py::ssize_t>(sizeof(T));
    std::vector<float> scale(static_cast<size_t>(rw) * 3), shift(static_cast<size_t>(rw) * 3);
    for (int x = 0; x < rw; ++x)
        for (int k = 0; k < 3; ++k) scale[3 * x + k] = d.a[k], shift[3 * x + k] = d.b[k];
    // Source byte offset of each buffer channel within a pixel.
    const int c0 = s.ch[0], c1 = s.ch[1], c2 = s.ch[2];
    parallel_for(rh, rows_per_chunk(static_cast<int64_t>(src_n) * 3), [&](int64_t b, int64_t e) {
        std::vector<float> acc(static_cast<size_t>(src_n)), buf(static_cast<size_t>(rw) * bc);
        std::vector<float> value(static_cast<size_t>(rw) * 3);
        for (int64_t dy = b; dy < e; ++dy) {
            float* a = acc.data();
            for (int k = yt.start[dy]; k < yt.start[dy + 1]; ++k) {
                const uint8_t* row = s.data + yt.idx[k] * s.sy;
                const float w = yt.weight[k];
                if (k == yt.start[dy]) {
                    for (int i = 0; i < src_n; ++i) a[i] = w * row[i];
                } else {
                    for (int i = 0; i < src_n; ++i) a[i] += w * row[i];
                }
            }
            if (bc == 1) {
                for (int dx = 0; dx < rw; ++dx) {
                    float v = 0.f;
                    for (int k = xt.start[dx]; k < xt.start[dx + 1]; ++k) v += xt.weight[k] * a[xt.idx[k] * src_c];
                    buf[dx] = v;
                }
            } else {
                for (int dx = 0; dx < rw; ++dx) {
                    float r = 0.f, g = 0.f, bl = 0.f;
                    for (int k = xt.start[dx]; k < xt.start[dx + 1]; ++k) {
                        const float* px = a + xt.idx[k] * src_c;
                        const float w = xt.weight[k];
                        r += w * px[c0];
                        g += w * px[c1];
                        bl += w * px[c2];
                    }
                    buf[3 * dx] = r, buf[3 * dx + 1] = g, buf[3 * dx + 2] = bl;
                }
            }
            if (contiguous_out) {
                const int o0 = d.order[0], o1 = d.order[1], o2 = d.order[2];
                for (int dx = 0; dx < rw; ++dx) {
                    const float* px = &buf[3 * dx];
                    value[3 * dx] = px[o0] * scale[3 * dx] + shift[3 * dx];
                    value[3 * dx + 1] = px[o1] * scale[3 * dx + 1] + shift[3 * dx + 1];
                    value[3 * dx + 2] = px[o2] * scale[3 * dx + 2] + shift[3 * dx + 2];
                }
                store_row(reinterpret_cast<T*>(d.data + (y0 + dy) * d.sy + x0 * d.sx), value.data(), rw * 3, d);
            } else {
                write_row<T>(d, y0 + static_cast<int>(dy), x0, rw, buf.data(), bc);
            }
        }
    });
}

template <typename T>
void run(const SrcView& s, const DstView& d, const Taps& xt, const Taps& yt, int dst_h, int dst_w, int x0, int y0,
         int rw, int rh, bool pad_needed, const float pad[3], bool linear, int sw, int sh, int src_c,
         std::optional<int> int_offset) {
    if (pad_needed) fill_pad<T>(d, dst_h, dst_w, pad);
    const bool packed_dst3 = d.channels == 3 && !d.to_gray && d.sx == static_cast<py::ssize_t>(3 * sizeof(T)) &&
                             d.sc == static_cast<py::ssize_t>(sizeof(T));
    if (sizeof(T) == 1 && int_offset && linear && src_c == 3 && packed_dst3) {
        linear_rows_fixed(s, d, sw, sh, x0, y0, rw, rh, *int_offset);
        return;
    }
    const bool packed_src = s.sc == 1 && s.sx == src_c;
    if (linear && packed_src && src_c == 3 && packed_dst3) {
        // Buffer channel order is (r, g, b) = source channels (ch[0], ch[1], ch[2]); output
        // channel k takes buffer channel order[k].  With a packed source, out k = src[k] or src[2-k].
        if (s.ch[d.order[0]] == 2)
            linear_rows_packed3<T, true>(s, d, sw, sh, x0, y0, rw, rh);
        else
            linear_rows_packed3<T, false>(s, d, sw, sh, x0, y0, rw, rh);
        return;
    }
    if (packed_src) {
        packed_rows<T>(s, d, src_c, linear ? linear_taps(sw, rw) : xt, linear ? linear_taps(sh, rh) : yt, sw, x0, y0,
                       rw, rh);
        return;
    }
    if (linear) {
        linear_rows<T>(s, d, sw, sh, x0, y0, rw, rh);
        return;
    }
    const int bc = s.channels_used;
    // Area: each output row reads about (sh / rh) source rows of sw pixels.
    const int64_t work_per_row = static_cast<int64_t>(sw) * bc * std::max(1, sh / std::max(1, rh));
    parallel_for(rh, rows_per_chunk(work_per_row), [&](int64_t b, int64_t e) {
        std::vector<float> acc(static_cast<size_t>(rw * bc));
        for (int64_t dy = b; dy < e; ++dy) {
            std::fill(acc.begin(), acc.end(), 0.f);
            for (int k = yt.start[dy]; k < yt.start[dy + 1]; ++k)
                accumulate_row(s, yt.idx[k], yt.weight[k], xt, rw, acc.data());
            write_row<T>(d, y0 + static_cast<int>(dy), x0, rw, acc.data(), bc);
        }
    });
}

// The quantised input is round(pixel * a + b) with a = 1 / (std * scale), b = zero_point -
// mean / (std * scale).  Where that is pixel + c for one integer c on every channel (within
// 2^-10 over 0..255, well below the fixed-point resize's own error), the integer path applies
// it exactly: e.g. mean 0, std 255 with scale 1/255 (c = zero point: uint8 0, int8 -128).
std::optional<int> integer_offset(const std::array<double, 3>& mean, const std::array<double, 3>& std_, double qscale,
                                  int64_t qzero) {
    const double c = std::round(static_cast<double>(qzero) - mean[0] / (std_[0] * qscale));
    for (int k = 0; k < 3; ++k) {
        const double a = 1.0 / (std_[k] * qscale), b = static_cast<double>(qzero) - mean[k] / (std_[k] * qscale);
        if (!(255.0 * std::fabs(a - 1.0) + std::fabs(b - c) <= 1.0 / 1024)) return std::nullopt;
    }
    if (std::fabs(c) > 512) return std::nullopt;  // would saturate every value; linear_u8 takes |c| <= 512
    return static_cast<int>(c);
}

int format_channels(PixelFormat f) {
    switch (f) {
        case PixelFormat::Gray: return 1;
        case PixelFormat::RGB:
        case PixelFormat::BGR: return 3;
        default: return 4;
    }
}

}  // namespace

std::tuple<int, int, int, int> preprocess(const py::array& src, py::array& dst, int src_format, int dst_format,
                                          bool nchw, int interp, bool letterbox, std::array<double, 3> pad,
                                          std::array<double, 3> mean, std::array<double, 3> std_, double qscale,
                                          int64_t qzero) {
    // ---- validate the frame
    require_dtype(src, "frame", {DType::U8});
    require_ndim(src, "frame", {2, 3});
    require_nonempty(src, "frame");
    require_int_dims(src, "frame");
    if (src_format < 0 || src_format > 4) throw ArgumentError("src_format: unknown pixel format code");
    const auto sf = static_cast<PixelFormat>(src_format);
    const int src_c = src.ndim() == 2 ? 1 : static_cast<int>(src.shape(2));
    if (src_c != format_channels(sf))
        throw ArgumentError("frame: shape " + shape_str(src) + " has " + std::to_string(src_c) +
                            " channels but its colour format needs " + std::to_string(format_channels(sf)));
    const int sh = static_cast<int>(src.shape(0)), sw = static_cast<int>(src.shape(1));

    // ---- validate the destination tensor
    require_dtype(dst, "out", {DType::F32, DType::F16, DType::I8, DType::U8});
    require_writeable(dst, "out");
    require_ndim(dst, "out", {3, 4});
    require_nonempty(dst, "out");
    require_int_dims(dst, "out");
    const int off = dst.ndim() == 4 ? 1 : 0;
    if (off && dst.shape(0) != 1) throw ArgumentError("out: batch size must be 1, got shape " + shape_str(dst));
    const int ax_c = nchw ? off : off + 2, ax_y = nchw ? off + 1 : off, ax_x = nchw ? off + 2 : off + 1;
    const int dst_c = static_cast<int>(dst.shape(ax_c));
    const int dh = static_cast<int>(dst.shape(ax_y)), dw = static_cast<int>(dst.shape(ax_x));
    if (dst_c != 1 && dst_c != 3)
        throw ArgumentError("out: model input must have 1 or 3 channels, got shape " + shape_str(dst) +
                            (nchw ? " (NCHW)" : " (NHWC)"));
    if (dst_format < 0 || dst_format > 2) throw ArgumentError("dst_format: must be gray, rgb or bgr");
    if ((dst_c == 1) != (dst_format == 0))
        throw ArgumentError("dst_format: does not match the " + std::to_string(dst_c) + "-channel output tensor");
    for (int k = 0; k < 3; ++k) {
        require_finite(mean[k], "mean");
        require_finite(std_[k], "std");
        require_finite(pad[k], "pad_value");
        if (std_[k] == 0.0) throw ArgumentError("std: must be non-zero");
    }
    const DType dt = dtype_of(dst);
    const bool quantised = dt == DType::I8 || dt == DType::U8;
    if (quantised) {
        require_finite(qscale, "scale");
        if (qscale <= 0.0) throw ArgumentError("scale: quantisation scale must be > 0, got " + std::to_string(qscale));
        const int64_t lo = dt == DType::I8 ? -128 : 0, hi = dt == DType::I8 ? 127 : 255;
        if (qzero < lo || qzero > hi)
            throw ArgumentError("zero_point: " + std::to_string(qzero) + " is outside the " + dtype_name(dt) + " range");
    }
    if (interp != 0 && interp != 1) throw ArgumentError("interpolation: unknown code");

    // ---- geometry
    int rw = dw, rh = dh, x0 = 0, y0 = 0;
    if (letterbox) {
        const double s = std::min(static_cast<double>(dw) / sw, static_cast<double>(dh) / sh);
        rw = std::max(1, std::min(dw, static_cast<int>(std::lround(sw * s))));
        rh = std::max(1, std::min(dh, static_cast<int>(std::lround(sh * s))));
        x0 = (dw - rw) / 2;
        y0 = (dh - rh) / 2;
    }
    if (interp == 1 && (rw > sw || rh > sh))
        throw ArgumentError("interpolation: 'area' only downscales, but the frame " + std::to_string(sw) + "x" +
                            std::to_string(sh) + " is smaller than the target " + std::to_string(rw) + "x" +
                            std::to_string(rh) + "; use 'linear'");

    SrcView s{static_cast<const uint8_t*>(src.data()), src.strides(0), src.strides(1),
              src.ndim() == 3 ? src.strides(2) : 0, src_c == 1 ? 1 : 3, {0, 1, 2}};
    if (sf == PixelFormat::BGR || sf == PixelFormat::BGRA) s.ch[0] = 2, s.ch[2] = 0;

    DstView d{};
    d.data = static_cast<uint8_t*>(dst.mutable_data());
    d.sy = dst.strides(ax_y);
    d.sx = dst.strides(ax_x);
    d.sc = dst.strides(ax_c);
    d.channels = dst_c;
    d.to_gray = dst_c == 1 && src_c != 1;
    d.order[0] = dst_format == 2 ? 2 : 0;
    d.order[1] = 1;
    d.order[2] = dst_format == 2 ? 0 : 2;
    d.dtype = dt;
    d.qmin = dt == DType::I8 ? -128.f : 0.f;
    d.qmax = dt == DType::I8 ? 127.f : 255.f;
    float padv[3];
    for (int k = 0; k < 3; ++k) {
        // mean/std/pad are given per output channel.
        const double q = quantised ? qscale : 1.0;
        d.a[k] = static_cast<float>(1.0 / (std_[k] * q));
        d.b[k] = static_cast<float>(-mean[k] / (std_[k] * q) + (quantised ? static_cast<double>(qzero) : 0.0));
        padv[k] = static_cast<float>(pad[k]);
    }

    const bool linear = interp == 0;
    const Taps xt = linear ? Taps{} : area_taps(sw, rw);
    const Taps yt = linear ? Taps{} : area_taps(sh, rh);
    const bool pad_needed = letterbox && (rw != dw || rh != dh);
    const std::optional<int> int_offset = quantised ? integer_offset(mean, std_, qscale, qzero) : std::nullopt;
    {
        GilRelease release;
        switch (dt) {
            case DType::F32: run<float>(s, d, xt, yt, dh, dw, x0, y0, rw, rh, pad_needed, padv, linear, sw, sh, src_c, int_offset); break;
            case DType::F16: run<uint16_t>(s, d, xt, yt, dh, dw, x0, y0, rw, rh, pad_needed, padv, linear, sw, sh, src_c, int_offset); break;
            case DType::I8: run<int8_t>(s, d, xt, yt, dh, dw, x0, y0, rw, rh, pad_needed, padv, linear, sw, sh, src_c, int_offset); break;
            default: run<uint8_t>(s, d, xt, yt, dh, dw, x0, y0, rw, rh, pad_needed, padv, linear, sw, sh, src_c, int_offset); break;
        }
    }
    return {x0, y0, rw, rh};
}

}  // namespace mtkseg
