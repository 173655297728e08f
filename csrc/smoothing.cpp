// Temporal smoothing of segmentation outputs: exponential moving average of class scores
// at model resolution, and a per-pixel majority vote over the last three masks.
#include <algorithm>

#include "kernels.hpp"

namespace mtkseg {

void ema_update(py::array& state, const py::array& logits, double momentum, double scale, int64_t zero_point,
                bool init) {
    require_dtype(state, "state", {DType::F32});
    require_c_contiguous(state, "state");
    require_writeable(state, "state");
    require_dtype(logits, "logits", {DType::F32, DType::F16, DType::I8, DType::U8});
    require_c_contiguous(logits, "logits");
    require_nonempty(logits, "logits");
    if (state.ndim() != logits.ndim() || !std::equal(state.shape(), state.shape() + state.ndim(), logits.shape()))
        throw ArgumentError("state: shape " + shape_str(state) + " does not match logits shape " + shape_str(logits));
    require_finite(momentum, "momentum");
    if (momentum < 0.0 || momentum >= 1.0) throw ArgumentError("momentum: expected 0 <= momentum < 1");
    require_finite(scale, "scale");
    if (scale <= 0.0) throw ArgumentError("scale: must be > 0");
    const int64_t n = logits.size();
    auto* s = static_cast<float*>(state.mutable_data());  // possibly unaligned: accessed via memcpy
    const float keep = init ? 0.f : static_cast<float>(momentum), take = 1.f - keep;
    const float sc = static_cast<float>(scale), zp = static_cast<float>(zero_point);
    const DType dt = dtype_of(logits);
    const void* src = logits.data();
    GilRelease release;
    parallel_for(n, kMinParallelWork, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
            float x;
            switch (dt) {
                // memcpy loads: logits may be an unaligned view
                case DType::F32: x = load_unaligned<float>(src, i); break;
                case DType::F16: x = half_table()[load_unaligned<uint16_t>(src, i)]; break;
                case DType::I8: x = static_cast<float>(static_cast<const int8_t*>(src)[i]); break;
                default: x = static_cast<float>(static_cast<const uint8_t*>(src)[i]); break;
            }
            const float z = sc * (x - zp);
            const float v = init ? z : keep * load_unaligned<float>(s, i) + take * z;
            std::memcpy(s + i, &v, sizeof v);  // state may be unaligned too
        }
    });
}

void mode3(const py::array& a, const py::array& b, const py::array& c, py::array& out) {
    const char* names[3] = {"a", "b", "c"};
    const py::array* arrs[3] = {&a, &b, &c};
    for (int k = 0; k < 3; ++k) {
        require_dtype(*arrs[k], names[k], {DType::U8});
        require_c_contiguous(*arrs[k], names[k]);
        require_nonempty(*arrs[k], names[k]);
        if (arrs[k]->ndim() != a.ndim() || !std::equal(a.shape(), a.shape() + a.ndim(), arrs[k]->shape()))
            throw ArgumentError(std::string(names[k]) + ": shape " + shape_str(*arrs[k]) + " differs from a's " +
                                shape_str(a));
    }
    require_dtype(out, "out", {DType::U8});
    require_c_contiguous(out, "out");
    require_writeable(out, "out");
    if (out.ndim() != a.ndim() || !std::equal(a.shape(), a.shape() + a.ndim(), out.shape()))
        throw ArgumentError("out: shape " + shape_str(out) + " differs from the masks' " + shape_str(a));
    const auto *pa = static_cast<const uint8_t*>(a.data()), *pb = static_cast<const uint8_t*>(b.data()),
               *pc = static_cast<const uint8_t*>(c.data());
    auto* po = static_cast<uint8_t*>(out.mutable_data());
    const int64_t n = a.size();
    GilRelease release;
    parallel_for(n, kMinParallelWork, [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) po[i] = (pa[i] == pb[i]) ? pa[i] : pb[i] == pc[i] ? pb[i] : pc[i];
    });
}

}  // namespace mtkseg
