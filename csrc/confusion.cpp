// Confusion matrix of ground-truth vs predicted labels (rows gt, columns prediction).
#include <algorithm>
#include <atomic>
#include <vector>

#include "kernels.hpp"

namespace mtkseg {
namespace {

template <typename T>
inline int64_t as_label(const void* base, int64_t i) {
    return static_cast<int64_t>(static_cast<const T*>(base)[i]);
}

// Generic path: any label dtypes, any class count.  Returns the first bad index or -1.
template <typename G, typename P>
int64_t confusion_generic(const void* gt, const void* pred, int64_t n, int64_t C, int64_t ignore,
                          int64_t* out) {
    std::atomic<int64_t> bad{-1};
    std::vector<std::vector<int64_t>> partial(static_cast<size_t>(num_threads()));
    std::atomic<int> slot{0};
    parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) {
        std::vector<int64_t>& hist = partial[static_cast<size_t>(slot.fetch_add(1))];
        hist.assign(static_cast<size_t>(C * C), 0);
        for (int64_t i = b; i < e; ++i) {
            const int64_t g = as_label<G>(gt, i);
            if (g == ignore) continue;
            const int64_t p = as_label<P>(pred, i);
            if (g < 0 || g >= C || p < 0 || p >= C) {
                int64_t expected = -1;
                bad.compare_exchange_strong(expected, i);
                return;
            }
            ++hist[static_cast<size_t>(g * C + p)];
        }
    });
    if (bad.load() >= 0) return bad.load();
    for (auto& hist : partial)
        for (size_t k = 0; k < hist.size(); ++k) out[k] += hist[k];
    return -1;
}

// uint8/uint8 fast path: one 256x256 joint histogram per thread, folded into CxC afterwards.
int64_t confusion_u8(const uint8_t* gt, const uint8_t* pred, int64_t n, int64_t C, int64_t ignore, int64_t* out) {
    const int threads = num_threads();
    std::vector<std::vector<uint32_t>> partial(static_cast<size_t>(threads));
    std::atomic<int> slot{0};
    // Chunks stay below 2^32 pixels so uint32 counters cannot overflow.
    const int64_t block = int64_t(1) << 30;
    for (int64_t start = 0; start < n; start += block) {
        const int64_t len = std::min(block, n - start);
        slot.store(0);
        parallel_for(len, 1 << 16, [&](int64_t b, int64_t e) {
            std::vector<uint32_t>& hist = partial[static_cast<size_t>(slot.fetch_add(1))];
            if (hist.empty()) hist.assign(65536, 0);
            const uint8_t* g = gt + start;
            const uint8_t* p = pred + start;
            for (int64_t i = b; i < e; ++i) ++hist[(static_cast<uint32_t>(g[i]) << 8) | p[i]];
        });
        for (auto& hist : partial) {
            if (hist.empty()) continue;
            for (int g = 0; g < 256; ++g) {
                if (g == ignore) continue;
                const uint32_t* row = &hist[static_cast<size_t>(g) << 8];
                for (int p = 0; p < 256; ++p) {
                    if (!row[p]) continue;
                    if (g >= C || p >= C) {
                        // Locate the offending pixel for the error message.
                        for (int64_t i = 0; i < n; ++i)
                            if (gt[i] == g && pred[i] == p) return i;
                        return 0;
                    }
                }
            }
        }
        for (auto& hist : partial) {
            if (hist.empty()) continue;
            for (int64_t g = 0; g < C && g < 256; ++g) {
                if (g == ignore) continue;
                for (int64_t p = 0; p < C && p < 256; ++p) out[g * C + p] += hist[static_cast<size_t>((g << 8) | p)];
            }
            std::fill(hist.begin(), hist.end(), 0u);
        }
    }
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
        py::gil_scoped_release release;
        if (gd == DType::U8 && pd == DType::U8)
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
        throw ArgumentError(std::string(gt_bad ? "gt" : "pred") + ": label " + std::to_string(gt_bad ? g : p) +
                            " at flat index " + std::to_string(bad) + " is outside [0, " +
                            std::to_string(num_classes) + ") and is not ignore_index (" +
                            std::to_string(ignore_index) + ")");
    }
    for (size_t k = 0; k < scratch.size(); ++k) dst[k] += scratch[k];
}

}  // namespace mtkseg
