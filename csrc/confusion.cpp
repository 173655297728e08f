// Confusion matrix of ground-truth vs predicted labels (rows gt, columns prediction).
#include <algorithm>
#include <atomic>
#include <cstring>
#include <cstdint>
#include <vector>

#include "kernels.hpp"
#include "simd.hpp"

namespace mtkseg {
namespace {

// Pixels per thread before counting is split.  A histogram increment costs several element
// ops, and confusion matrices are built in evaluation loops rather than beside a running
// interpreter, so the split starts earlier than kMinParallelWork (a 720p mask uses 2 threads).
constexpr int64_t kMinParallelPixels = int64_t(1) << 18;

template <typename T>
inline int64_t as_label(const void* base, int64_t i) {
    return static_cast<int64_t>(static_cast<const T*>(base)[i]);
}

// Generic path: any label dtypes, any class count.  Returns the first bad index or -1.
template <typename G, typename P>
int64_t confusion_generic(const void* gt, const void* pred, int64_t n, int64_t C, int64_t ignore,
                          int64_t* out) {
    std::atomic<int64_t> bad{-1};
    const int threads = num_threads();  // read once: it sizes `partial` and bounds the chunks
    std::vector<std::vector<int64_t>> partial(static_cast<size_t>(threads));
    std::atomic<int> slot{0};
    parallel_for(n, kMinParallelPixels, [&](int64_t b, int64_t e) {
        std::vector<int64_t>& hist = partial[static_cast<size_t>(slot.fetch_add(1))];
        hist.assign(static_cast<size_t>(C * C), 0);
        for (int64_t i = b; i < e; ++i) {
            const int64_t g = as_label<G>(gt, i);
            if (g == ignore) continue;
            const int64_t p = as_label<P>(pred, i);
            if (g < 0 || g >= C || p < 0 || p >= C) {  // keep the lowest bad index over all chunks
                int64_t seen = bad.load();
                while ((seen < 0 || i < seen) && !bad.compare_exchange_weak(seen, i)) {
                }
                return;
            }
            ++hist[static_cast<size_t>(g * C + p)];
        }
    }, threads);
    if (bad.load() >= 0) return bad.load();
    for (auto& hist : partial)
        for (size_t k = 0; k < hist.size(); ++k) out[k] += hist[k];
    return -1;
}

// uint8/uint8 fast path.  Two 256-entry tables map gt to a histogram row (its class, a
// "skip" row for ignore_index, a "bad" row for out-of-range labels) and pred to a column (its
// class or a "bad" column), so the joint histogram is (C + 2) x (C + 1) counters: a few KB
// that stay in L1.  Four interleaved histograms break increment dependency chains.
int64_t confusion_u8(const uint8_t* gt, const uint8_t* pred, int64_t n, int64_t C, int64_t ignore, int64_t* out) {
    const int64_t cols = C + 1, rows = C + 2, skip_row = C, bad_row = C + 1, bad_col = C;
    uint32_t row_of[256], col_of[256];
    for (int v = 0; v < 256; ++v) {
        row_of[v] = static_cast<uint32_t>((v == ignore ? skip_row : v < C ? v : bad_row) * cols);
        col_of[v] = static_cast<uint32_t>(v < C ? v : bad_col);
    }
    const size_t cells = static_cast<size_t>(rows * cols);
    const int threads = num_threads();  // read once: it sizes `totals` and bounds the chunks
    std::vector<std::vector<uint64_t>> totals(static_cast<size_t>(threads));
    std::atomic<int> slot{0};
    parallel_for(n, kMinParallelPixels, [&](int64_t b, int64_t e) {
        std::vector<uint64_t>& total = totals[static_cast<size_t>(slot.fetch_add(1))];
        total.assign(cells, 0);
        std::vector<uint32_t> h(4 * cells, 0);
        uint32_t* h0 = h.data();
        uint32_t* h1 = h0 + cells;
        uint32_t* h2 = h1 + cells;
        uint32_t* h3 = h2 + cells;
        const int64_t block = int64_t(1) << 30;  // flush before uint32 counters could overflow
        for (int64_t start = b; start < e; start += block) {
            const int64_t end = std::min(e, start + block);
            int64_t i = start;
            for (; i + 4 <= end; i += 4) {
                ++h0[row_of[gt[i]] + col_of[pred[i]]];
                ++h1[row_of[gt[i + 1]] + col_of[pred[i + 1]]];
                ++h2[row_of[gt[i + 2]] + col_of[pred[i + 2]]];
                ++h3[row_of[gt[i + 3]] + col_of[pred[i + 3]]];
            }
            for (; i < end; ++i) ++h0[row_of[gt[i]] + col_of[pred[i]]];
            for (size_t k = 0; k < cells; ++k) {
                total[k] += static_cast<uint64_t>(h0[k]) + h1[k] + h2[k] + h3[k];
                h0[k] = h1[k] = h2[k] = h3[k] = 0;
            }
        }
    }, threads);
    std::vector<uint64_t> sum(cells, 0);
    for (auto& t : totals)
        for (size_t k = 0; k < t.size(); ++k) sum[k] += t[k];
    bool bad = false;
    for (int64_t c = 0; c < cols; ++c) bad |= sum[static_cast<size_t>(bad_row * cols + c)] != 0;
    for (int64_t g = 0; g < C; ++g) bad |= sum[static_cast<size_t>(g * cols + bad_col)] != 0;
    if (bad) {  // locate the first offending pixel for the error message
        for (int64_t i = 0; i < n; ++i)
            if (gt[i] != ignore && (gt[i] >= C || pred[i] >= C)) return i;
    }
    for (int64_t g = 0; g < C; ++g)
        for (int64_t p = 0; p < C; ++p) out[g * C + p] += static_cast<int64_t>(sum[static_cast<size_t>(g * cols + p)]);
    return -1;
}

// uint8/uint8 with at most 15 classes: the SIMD kernel packs each pixel into one code byte
// (gt * C + pred, or a skip / bad code), which is then counted with 8-byte loads into four
// interleaved 256-entry histograms.  The codes index `out` directly.
int64_t confusion_small(const uint8_t* gt, const uint8_t* pred, int64_t n, int64_t C, int64_t ignore, int64_t* out) {
    constexpr uint8_t kSkip = 254, kBad = 255;  // codes < 15 * 15
    const int ig = ignore >= 0 && ignore <= 255 ? static_cast<int>(ignore) : -1;
    const int threads = num_threads();  // read once: it sizes `totals` and bounds the chunks
    std::vector<std::vector<uint64_t>> totals(static_cast<size_t>(threads));
    std::atomic<int> slot{0};
    parallel_for(n, kMinParallelPixels, [&](int64_t b, int64_t e) {
        std::vector<uint64_t>& total = totals[static_cast<size_t>(slot.fetch_add(1))];
        total.assign(256, 0);
        std::vector<uint32_t> h(4 * 256, 0);
        uint32_t *h0 = h.data(), *h1 = h0 + 256, *h2 = h1 + 256, *h3 = h2 + 256;
        constexpr int kBlock = 4096;
        alignas(8) uint8_t codes[kBlock];
        const int64_t flush = int64_t(1) << 30;  // flush before uint32 counters could overflow
        for (int64_t start = b; start < e; start += flush) {
            const int64_t end = std::min(e, start + flush);
            for (int64_t i = start; i < end; i += kBlock) {
                const int m = static_cast<int>(std::min<int64_t>(kBlock, end - i));
                simd::confusion_codes(gt + i, pred + i, m, static_cast<int>(C), ig, kSkip, kBad, codes);
                int k = 0;
                for (; k + 8 <= m; k += 8) {
                    uint64_t w;
                    std::memcpy(&w, codes + k, 8);
                    ++h0[w & 0xff];
                    ++h1[(w >> 8) & 0xff];
                    ++h2[(w >> 16) & 0xff];
                    ++h3[(w >> 24) & 0xff];
                    ++h0[(w >> 32) & 0xff];
                    ++h1[(w >> 40) & 0xff];
                    ++h2[(w >> 48) & 0xff];
                    ++h3[w >> 56];
                }
                for (; k < m; ++k) ++h0[codes[k]];
            }
            for (size_t k = 0; k < 256; ++k) {
                total[k] += static_cast<uint64_t>(h0[k]) + h1[k] + h2[k] + h3[k];
                h0[k] = h1[k] = h2[k] = h3[k] = 0;
            }
        }
    }, threads);
    uint64_t bad = 0;
    for (auto& t : totals)
        if (!t.empty()) bad += t[kBad];
    if (bad) {  // locate the first offending pixel for the error message
        for (int64_t i = 0; i < n; ++i)
            if (gt[i] != ignore && (gt[i] >= C || pred[i] >= C)) return i;
    }
    for (auto& t : totals)
        for (size_t k = 0; k < t.size() && k < static_cast<size_t>(C * C); ++k) out[k] += static_cast<int64_t>(t[k]);
    return -1;
}

template <typename G>
int64_t dispatch_pred(DType pd, const void* gt, const void* pred, int64_t n, int64_t C, int64_t ignore, int64_t* out) {
    switch (pd) {
        case DType::U8: return confusion_generic<G, uint8_t>(gt, pred, n, C, ignore, out);
        case DType::U16: return confusion_generic<G, uint16_t>(gt, pred, n, C, ignore, out);
        default: return confusion_generic<G, int32_t>(gt, pred, n, C, ignore, out);
    }
}

int64_t label_at(const py::array& a, int64_t i) {
    switch (dtype_of(a)) {
        case DType::U8: return as_label<uint8_t>(a.data(), i);
        case DType::U16: return as_label<uint16_t>(a.data(), i);
        default: return as_label<int32_t>(a.data(), i);
    }
}

}  // namespace

void confusion_matrix(const py::array& gt, const py::array& pred, int64_t num_classes, int64_t ignore_index,
                      py::array& out) {
    const auto label_types = {DType::U8, DType::U16, DType::I32};
    require_dtype(gt, "gt", label_types);
    require_dtype(pred, "pred", label_types);
    require_c_contiguous(gt, "gt");
    require_c_contiguous(pred, "pred");
    if (gt.ndim() != pred.ndim() || !std::equal(gt.shape(), gt.shape() + gt.ndim(), pred.shape()))
        throw ArgumentError("pred: shape " + shape_str(pred) + " does not match gt shape " + shape_str(gt));
    if (num_classes < 1 || num_classes > 4096)
        throw ArgumentError("num_classes: expected 1 to 4096, got " + std::to_string(num_classes));
    require_dtype(out, "out", {DType::I64});
    require_c_contiguous(out, "out");
    require_writeable(out, "out");
    if (out.ndim() != 2 || out.shape(0) != num_classes || out.shape(1) != num_classes)
        throw ArgumentError("out: expected shape (" + std::to_string(num_classes) + ", " + std::to_string(num_classes) +
                            "), got " + shape_str(out));

    const int64_t n = gt.size();
    const DType gd = dtype_of(gt), pd = dtype_of(pred);
    auto* dst = static_cast<int64_t*>(out.mutable_data());
    // Count into a scratch matrix so a failure leaves `out` untouched.
    std::vector<int64_t> scratch(static_cast<size_t>(num_classes * num_classes), 0);
    int64_t bad;
    {
        GilRelease release;
        if (gd == DType::U8 && pd == DType::U8 && num_classes <= 15)
            bad = confusion_small(static_cast<const uint8_t*>(gt.data()), static_cast<const uint8_t*>(pred.data()), n,
                                  num_classes, ignore_index, scratch.data());
        else if (gd == DType::U8 && pd == DType::U8 && num_classes <= 256)
            bad = confusion_u8(static_cast<const uint8_t*>(gt.data()), static_cast<const uint8_t*>(pred.data()), n,
                               num_classes, ignore_index, scratch.data());
        else if (gd == DType::U8)
            bad = dispatch_pred<uint8_t>(pd, gt.data(), pred.data(), n, num_classes, ignore_index, scratch.data());
        else if (gd == DType::U16)
            bad = dispatch_pred<uint16_t>(pd, gt.data(), pred.data(), n, num_classes, ignore_index, scratch.data());
        else
            bad = dispatch_pred<int32_t>(pd, gt.data(), pred.data(), n, num_classes, ignore_index, scratch.data());
    }
    if (bad >= 0) {
        const int64_t g = label_at(gt, bad), p = label_at(pred, bad);
        const bool gt_bad = (g < 0 || g >= num_classes) && g != ignore_index;
        // An ignore_index outside the int32 label range stands for None: no pixel is skipped.
        const bool has_ignore = ignore_index >= INT32_MIN && ignore_index <= INT32_MAX;
        const std::string label = std::to_string(gt_bad ? g : p);
        throw ArgumentError(std::string(gt_bad ? "gt" : "pred") + ": label " + label + " at flat index " +
                            std::to_string(bad) + " is outside [0, " + std::to_string(num_classes) + ")" +
                            (has_ignore ? " and is not ignore_index (" + std::to_string(ignore_index) + ")"
                             : gt_bad ? "; ignore_index is None, so every label is counted: pass ignore_index=" +
                                            label + " to skip these pixels"
                                      : ""));
    }
    for (size_t k = 0; k < scratch.size(); ++k) dst[k] += scratch[k];
}

}  // namespace mtkseg
