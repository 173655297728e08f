// Model output -> uint8 class mask at the requested size: argmax fused with nearest or
// bilinear resizing, class-index and thresholded single-channel outputs, confidence maps.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels.hpp"
#include "simd.hpp"

namespace mtkseg {
namespace {

// Strided view of a (h, w, C) score tensor in elements, restricted to the crop.
struct ScoreView {
    const void* data;
    int64_t sy, sx, sc;  // element strides
    int h, w, c;         // crop size and class count
    int64_t base;        // element offset of the crop's top-left
    int64_t extent;      // elements from data to one past the array's last element
};

// Tensors may be unaligned views (numpy allows it): every element read goes through memcpy.
template <typename T>
inline float load(const ScoreView& v, int64_t off) {
    return static_cast<float>(load_unaligned<T>(v.data, off));
}
template <>
inline float load<uint16_t>(const ScoreView& v, int64_t off) {
    return half_table()[load_unaligned<uint16_t>(v.data, off)];
}

// Whether score s replaces `best` in an argmax: larger wins, ties keep the lower class, and
// the first NaN wins for good (np.argmax's rule).  Integers are never NaN: the extra test folds away.
template <typename T>
inline bool beats(T s, T best) {
    return s > best || (s != s && best == best);
}

// Argmax over classes at (y, x) of the crop (np.argmax's rules, see beats()).
// Branch-free selects: real logits change winner unpredictably near class borders.
template <typename T>
inline uint8_t argmax_at(const ScoreView& v, int y, int x) {
    const int64_t off = v.base + y * v.sy + x * v.sx;
    if (v.sc == 1 && !std::is_same<T, uint16_t>::value) {
        T best = load_unaligned<T>(v.data, off);
        int idx = 0;
        for (int c = 1; c < v.c; ++c) {
            const T s = load_unaligned<T>(v.data, off + c);
            const bool gt = beats(s, best);
            best = gt ? s : best;
            idx = gt ? c : idx;
        }
        return static_cast<uint8_t>(idx);
    }
    float best = load<T>(v, off);
    int idx = 0;
    for (int c = 1; c < v.c; ++c) {
        const float s = load<T>(v, off + c * v.sc);
        const bool gt = beats(s, best);
        best = gt ? s : best;
        idx = gt ? c : idx;
    }
    return static_cast<uint8_t>(idx);
}

// One row of the argmax map through the SIMD kernels (channels contiguous); false if T has none.
template <typename T>
inline bool argmax_row_simd(const ScoreView& v, int64_t y, uint8_t* row) {
    if (v.sc != 1) return false;
    const int64_t off = v.base + y * v.sy;
    const void* p = static_cast<const char*>(v.data) + off * static_cast<int64_t>(sizeof(T));
    if (std::is_same<T, uint8_t>::value)
        simd::argmax_u8(static_cast<const uint8_t*>(p), v.sx, v.w, v.c, v.extent - off, row);
    else if (std::is_same<T, int8_t>::value)
        simd::argmax_i8(static_cast<const int8_t*>(p), v.sx, v.w, v.c, v.extent - off, row);
    else if (std::is_same<T, float>::value)
        simd::argmax_f32(p, v.sx, v.w, v.c, v.extent - off, row);
    else
        return false;
    return true;
}

template <typename T>
void argmax_map(const ScoreView& v, uint8_t* A) {
    parallel_for(v.h, rows_per_chunk(static_cast<int64_t>(v.w) * v.c), [&](int64_t b, int64_t e) {
        for (int64_t y = b; y < e; ++y) {
            if (argmax_row_simd<T>(v, y, A + y * v.w)) continue;
            int x = 0;
            // Local copies: stores through uint8_t* may alias anything, so fields read through a
            // reference would be reloaded for every pixel.
            const ScoreView view = v;
            uint8_t* __restrict row = A + y * view.w;
            for (; x < view.w; ++x) row[x] = argmax_at<T>(view, static_cast<int>(y), x);
        }
    });
}

// Writes each source value of `row` replicated over its run of output columns as one
// S-byte store (runs <= S); `p` has S bytes of slack past the row.
template <int S>
inline void replicate_runs(const uint8_t* __restrict row, const int* __restrict runs, int w, uint8_t* p) {
    for (int x = 0; x < w; ++x) {
        std::memset(p, row[x], S);
        p += runs[x];
    }
}

// Nearest-neighbour upscaling of a uint8 map in OpenCV's INTER_NEAREST geometry.  Source
// columns map to contiguous runs of output columns; runs up to 32 are written as one
// fixed-width store of the replicated value, and output rows that repeat a source row are copied.
void nearest_from_map(const uint8_t* A, int h, int w, uint8_t* out, int H, int W) {
    std::vector<int> xs(static_cast<size_t>(W));
    const double ifx = 1.0 / (static_cast<double>(W) / w), ify = 1.0 / (static_cast<double>(H) / h);
    for (int x = 0; x < W; ++x) xs[x] = nearest_index(x, ifx, w);
    // Run of output columns per source column (0 for columns that are skipped).
    std::vector<int> run(static_cast<size_t>(w), 0);
    for (int x = 0; x < W; ++x) ++run[xs[x]];
    const int max_run = *std::max_element(run.begin(), run.end());
    parallel_for(H, rows_per_chunk(W), [&](int64_t b, int64_t e) {
        std::vector<uint8_t> scratch(static_cast<size_t>(W) + 32);
        int prev_sy = -1;
        for (int64_t y = b; y < e; ++y) {
            const int sy = nearest_index(static_cast<int>(y), ify, h);
            uint8_t* dst = out + y * W;
            if (sy == prev_sy) {
                std::memcpy(dst, dst - W, static_cast<size_t>(W));
                continue;
            }
            const uint8_t* __restrict row = A + static_cast<int64_t>(sy) * w;
            if (max_run <= 32) {
                if (max_run <= 8)
                    replicate_runs<8>(row, run.data(), w, scratch.data());
                else if (max_run <= 16)
                    replicate_runs<16>(row, run.data(), w, scratch.data());
                else
                    replicate_runs<32>(row, run.data(), w, scratch.data());
                std::memcpy(dst, scratch.data(), static_cast<size_t>(W));
            } else {
                const int* __restrict cols = xs.data();
                for (int x = 0; x < W; ++x) dst[x] = row[cols[x]];
            }
            prev_sy = sy;
        }
    });
}

std::vector<LinearTap> taps_for(int src, int dst) {
    std::vector<LinearTap> t(static_cast<size_t>(dst));
    const double scale = 1.0 / (static_cast<double>(dst) / src);
    for (int d = 0; d < dst; ++d) t[d] = linear_tap(d, scale, src);
    return t;
}

// Bilinear scores + argmax per output pixel.  Where the four source pixels around an output
// pixel share one argmax class k, k also wins everywhere between them (the interpolated
// score difference s_k - s_j is a convex combination of non-negative corner differences),
// so only cells on class boundaries interpolate the full score vectors.  Those interpolate
// vertically first, once per source column and output row, then horizontally per pixel.
template <typename T>
void bilinear_argmax(const ScoreView& v, const uint8_t* A, uint8_t* out, int H, int W) {
    const std::vector<LinearTap> tx = taps_for(v.w, W), ty = taps_for(v.h, H);
    // Work per output row: a boundary pixel blends and compares all C scores (~2C operations);
    // a 720p mask of 6 classes is ~3 ms on one core, worth both.
    parallel_for(H, rows_per_chunk(static_cast<int64_t>(W) * 2 * v.c), [&](int64_t b, int64_t e) {
        std::vector<uint8_t> uniform(static_cast<size_t>(v.w)), cls(static_cast<size_t>(v.w));
        // Vertically interpolated scores of a source column, computed on first use in a row.
        std::vector<float> column(static_cast<size_t>(v.w) * v.c);
        std::vector<int64_t> stamp(static_cast<size_t>(v.w), -1);
        for (int64_t y = b; y < e; ++y) {
            const LinearTap t = ty[y];
            const uint8_t* r0 = A + static_cast<int64_t>(t.i0) * v.w;
            const uint8_t* r1 = A + static_cast<int64_t>(t.i1) * v.w;
            for (int x = 0; x < v.w; ++x) {
                const int x1 = x + 1 < v.w ? x + 1 : x;
                const uint8_t k = r0[x];
                uniform[x] = (r0[x1] == k) & (r1[x] == k) & (r1[x1] == k);
                cls[x] = k;
            }
            auto scores_of = [&](int sx) -> const float* {
                float* col = &column[static_cast<size_t>(sx) * v.c];
                if (stamp[sx] != y) {
                    const int64_t o0 = v.base + t.i0 * v.sy + sx * v.sx, o1 = v.base + t.i1 * v.sy + sx * v.sx;
                    for (int c = 0; c < v.c; ++c) {
                        const float top = load<T>(v, o0 + c * v.sc), bot = load<T>(v, o1 + c * v.sc);
                        col[c] = top * (1.f - t.w) + bot * t.w;
                    }
                    stamp[sx] = y;
                }
                return col;
            };
            uint8_t* __restrict dst = out + y * W;
            const LinearTap* __restrict taps = tx.data();
            const uint8_t* __restrict uni = uniform.data();
            const uint8_t* __restrict klass = cls.data();
            for (int x = 0; x < W; ++x) {
                const LinearTap s = taps[x];
                if (uni[s.i0]) {
                    dst[x] = klass[s.i0];
                    continue;
                }
                const float* left = scores_of(s.i0);
                const float* right = scores_of(s.i1);
                float best = left[0] * (1.f - s.w) + right[0] * s.w;
                int idx = 0;
                for (int c = 1; c < v.c; ++c) {
                    const float val = left[c] * (1.f - s.w) + right[c] * s.w;
                    const bool gt = beats(val, best);
                    best = gt ? val : best;
                    idx = gt ? c : idx;
                }
                dst[x] = static_cast<uint8_t>(idx);
            }
        }
    });
}

// Bilinear or nearest resampling of a float map (h, w) into out (H, W).
void resample_map(const float* map, int h, int w, float* out, int H, int W, int mode) {
    if (mode == 0) {
        std::vector<int> xs(static_cast<size_t>(W));
        const double ifx = 1.0 / (static_cast<double>(W) / w), ify = 1.0 / (static_cast<double>(H) / h);
        for (int x = 0; x < W; ++x) xs[x] = nearest_index(x, ifx, w);
        parallel_for(H, rows_per_chunk(W), [&](int64_t b, int64_t e) {
            for (int64_t y = b; y < e; ++y) {
                const float* row = map + static_cast<int64_t>(nearest_index(static_cast<int>(y), ify, h)) * w;
                for (int x = 0; x < W; ++x) out[y * W + x] = row[xs[x]];
            }
        });
        return;
    }
    const std::vector<LinearTap> tx = taps_for(w, W), ty = taps_for(h, H);
    parallel_for(H, rows_per_chunk(4 * W), [&](int64_t b, int64_t e) {
        for (int64_t y = b; y < e; ++y) {
            const LinearTap t = ty[y];
            const float* r0 = map + static_cast<int64_t>(t.i0) * w;
            const float* r1 = map + static_cast<int64_t>(t.i1) * w;
            for (int x = 0; x < W; ++x) {
                const LinearTap s = tx[x];
                const float up = r0[s.i0] * (1.f - s.w) + r0[s.i1] * s.w;
                const float dn = r1[s.i0] * (1.f - s.w) + r1[s.i1] * s.w;
                out[y * W + x] = up * (1.f - t.w) + dn * t.w;
            }
        }
    });
}

// Validates a (h, w, C) or (h, w) tensor, the crop and the output; builds the view.
ScoreView score_view(const py::array& a, const char* what, Crop crop, bool has_channels) {
    if (has_channels) {
        require_ndim(a, what, {3});
    } else {
        require_ndim(a, what, {2});
    }
    require_nonempty(a, what);
    require_int_dims(a, what);
    const int h = static_cast<int>(a.shape(0)), w = static_cast<int>(a.shape(1));
    const int c = has_channels ? static_cast<int>(a.shape(2)) : 1;
    if (has_channels && c > 255)
        throw ArgumentError(std::string(what) + ": at most 255 classes fit a uint8 mask, got " + std::to_string(c));
    if (crop.w <= 0 || crop.h <= 0 || crop.x0 < 0 || crop.y0 < 0 || crop.x0 + crop.w > w || crop.y0 + crop.h > h)
        throw ArgumentError("crop: region (x0=" + std::to_string(crop.x0) + ", y0=" + std::to_string(crop.y0) +
                            ", w=" + std::to_string(crop.w) + ", h=" + std::to_string(crop.h) +
                            ") does not lie inside the " + std::to_string(w) + "x" + std::to_string(h) + " output");
    const int64_t item = a.itemsize();
    for (int k = 0; k < a.ndim(); ++k)
        if (a.strides(k) % item != 0 || a.strides(k) < 0)
            throw ArgumentError(std::string(what) + ": unsupported memory layout (negative or unaligned strides)");
    ScoreView v{a.data(), a.strides(0) / item, a.strides(1) / item, has_channels ? a.strides(2) / item : 1,
                crop.h, crop.w, c, 0, 0};
    v.base = crop.y0 * v.sy + crop.x0 * v.sx;
    v.extent = 1;
    for (int k = 0; k < a.ndim(); ++k) v.extent += (a.shape(k) - 1) * (a.strides(k) / item);
    return v;
}

void check_mask_out(const py::array& out, const char* what) {
    require_dtype(out, what, {DType::U8});
    require_ndim(out, what, {2});
    require_nonempty(out, what);
    require_int_dims(out, what);
    require_c_contiguous(out, what);
    require_writeable(out, what);
}

void check_mode(int mode) {
    if (mode != 0 && mode != 1) throw ArgumentError("mode: expected 0 (nearest) or 1 (bilinear)");
}

}  // namespace

void argmax_resize(const py::array& logits, py::array& out, Crop crop, int mode) {
    require_dtype(logits, "logits", {DType::F32, DType::F16, DType::I8, DType::U8});
    const ScoreView v = score_view(logits, "logits", crop, true);
    check_mask_out(out, "out");
    check_mode(mode);
    const int H = static_cast<int>(out.shape(0)), W = static_cast<int>(out.shape(1));
    auto* dst = static_cast<uint8_t*>(out.mutable_data());
    const DType dt = dtype_of(logits);
    GilRelease release;
    std::vector<uint8_t> A(static_cast<size_t>(v.h) * v.w);
    auto go = [&](auto tag) {
        using T = decltype(tag);
        argmax_map<T>(v, A.data());
        if (mode == 0)
            nearest_from_map(A.data(), v.h, v.w, dst, H, W);
        else
            bilinear_argmax<T>(v, A.data(), dst, H, W);
    };
    switch (dt) {
        case DType::F32: go(float{}); break;
        case DType::F16: go(uint16_t{}); break;
        case DType::I8: go(int8_t{}); break;
        default: go(uint8_t{}); break;
    }
}

void labels_resize(const py::array& labels, py::array& out, Crop crop) {
    require_dtype(labels, "labels", {DType::U8, DType::I32, DType::I64});
    const ScoreView v = score_view(labels, "labels", crop, false);
    check_mask_out(out, "out");
    const int H = static_cast<int>(out.shape(0)), W = static_cast<int>(out.shape(1));
    std::vector<uint8_t> A(static_cast<size_t>(v.h) * v.w);
    const DType dt = dtype_of(labels);
    int64_t bad_value = 0;
    bool bad = false;
    {
        GilRelease release;
        for (int y = 0; y < v.h && !bad; ++y)
            for (int x = 0; x < v.w; ++x) {
                const int64_t off = v.base + y * v.sy + x * v.sx;
                int64_t val;
                if (dt == DType::U8)
                    val = load_unaligned<uint8_t>(v.data, off);
                else if (dt == DType::I32)
                    val = load_unaligned<int32_t>(v.data, off);
                else
                    val = load_unaligned<int64_t>(v.data, off);
                if (val < 0 || val > 255) {
                    bad = true;
                    bad_value = val;
                    break;
                }
                A[static_cast<size_t>(y) * v.w + x] = static_cast<uint8_t>(val);
            }
        if (!bad) nearest_from_map(A.data(), v.h, v.w, static_cast<uint8_t*>(out.mutable_data()), H, W);
    }
    if (bad)
        throw ArgumentError("labels: class index " + std::to_string(bad_value) +
                            " does not fit a uint8 mask (expected 0..255)");
}

void threshold_resize(const py::array& scores, py::array& out, Crop crop, int mode, double threshold) {
    require_dtype(scores, "scores", {DType::F32, DType::F16, DType::I8, DType::U8});
    require_finite(threshold, "threshold");
    const ScoreView v = score_view(scores, "scores", crop, false);
    check_mask_out(out, "out");
    check_mode(mode);
    const int H = static_cast<int>(out.shape(0)), W = static_cast<int>(out.shape(1));
    const DType dt = dtype_of(scores);
    GilRelease release;
    std::vector<float> map(static_cast<size_t>(v.h) * v.w);
    for (int y = 0; y < v.h; ++y)
        for (int x = 0; x < v.w; ++x) {
            const int64_t off = v.base + y * v.sy + x * v.sx;
            float s;
            switch (dt) {
                case DType::F32: s = load<float>(v, off); break;
                case DType::F16: s = load<uint16_t>(v, off); break;
                case DType::I8: s = load<int8_t>(v, off); break;
                default: s = load<uint8_t>(v, off); break;
            }
            map[static_cast<size_t>(y) * v.w + x] = s;
        }
    auto* dst = static_cast<uint8_t*>(out.mutable_data());
    const float thr = static_cast<float>(threshold);
    if (mode == 0) {  // threshold at model resolution, then replicate like the argmax path
        std::vector<uint8_t> A(map.size());
        for (size_t i = 0; i < map.size(); ++i) A[i] = map[i] > thr ? 1 : 0;
        nearest_from_map(A.data(), v.h, v.w, dst, H, W);
        return;
    }
    const std::vector<LinearTap> tx = taps_for(v.w, W), ty = taps_for(v.h, H);
    parallel_for(H, rows_per_chunk(4 * W), [&](int64_t b, int64_t e) {
        std::vector<float> row(static_cast<size_t>(v.w));
        for (int64_t y = b; y < e; ++y) {
            const LinearTap t = ty[y];
            const float* r0 = &map[static_cast<size_t>(t.i0) * v.w];
            const float* r1 = &map[static_cast<size_t>(t.i1) * v.w];
            for (int x = 0; x < v.w; ++x) row[x] = r0[x] * (1.f - t.w) + r1[x] * t.w;
            uint8_t* o = dst + y * W;
            for (int x = 0; x < W; ++x) {
                const LinearTap s = tx[x];
                o[x] = row[s.i0] * (1.f - s.w) + row[s.i1] * s.w > thr ? 1 : 0;
            }
        }
    });
}

void confidence_resize(const py::array& logits, py::array& out, Crop crop, int mode, int64_t class_index,
                       double scale, int64_t zero_point, bool softmax) {
    require_dtype(logits, "logits", {DType::F32, DType::F16, DType::I8, DType::U8});
    const ScoreView v = score_view(logits, "logits", crop, true);
    require_dtype(out, "out", {DType::F32});
    require_ndim(out, "out", {2});
    require_nonempty(out, "out");
    require_int_dims(out, "out");
    require_c_contiguous(out, "out");
    require_writeable(out, "out");
    check_mode(mode);
    require_finite(scale, "scale");
    if (scale <= 0) throw ArgumentError("scale: must be > 0");
    if (class_index >= v.c)
        throw ArgumentError("class_index: " + std::to_string(class_index) + " is outside the model's " +
                            std::to_string(v.c) + " classes");
    const int H = static_cast<int>(out.shape(0)), W = static_cast<int>(out.shape(1));
    const DType dt = dtype_of(logits);
    GilRelease release;
    std::vector<float> map(static_cast<size_t>(v.h) * v.w);
    parallel_for(v.h, rows_per_chunk(static_cast<int64_t>(v.w) * v.c * 8), [&](int64_t b, int64_t e) {
        std::vector<float> z(static_cast<size_t>(v.c));
        for (int64_t y = b; y < e; ++y)
            for (int x = 0; x < v.w; ++x) {
                const int64_t off = v.base + y * v.sy + x * v.sx;
                float zmax = -INFINITY;
                for (int c = 0; c < v.c; ++c) {
                    float raw;
                    switch (dt) {
                        case DType::F32: raw = load<float>(v, off + c * v.sc); break;
                        case DType::F16: raw = load<uint16_t>(v, off + c * v.sc); break;
                        case DType::I8: raw = load<int8_t>(v, off + c * v.sc); break;
                        default: raw = load<uint8_t>(v, off + c * v.sc); break;
                    }
                    z[c] = static_cast<float>(scale * (raw - static_cast<double>(zero_point)));
                    zmax = std::max(zmax, z[c]);
                }
                float value;
                if (softmax) {
                    double sum = 0.0;
                    for (int c = 0; c < v.c; ++c) sum += std::exp(static_cast<double>(z[c] - zmax));
                    value = class_index >= 0 ? static_cast<float>(std::exp(static_cast<double>(z[class_index] - zmax)) / sum)
                                             : static_cast<float>(1.0 / sum);
                } else {
                    value = class_index >= 0 ? z[class_index] : zmax;
                }
                map[static_cast<size_t>(y) * v.w + x] = value;
            }
    });
    resample_map(map.data(), v.h, v.w, static_cast<float*>(out.mutable_data()), H, W, mode);
}

}  // namespace mtkseg
