// Validation helpers, half-float conversion and the parallel-for shared by all kernels.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <sstream>
#include <system_error>
#include <thread>
#include <vector>

#include "common.hpp"

namespace mtkseg {

DType dtype_of(const py::array& a) {
    const py::dtype dt = a.dtype();
    if (!dt.attr("isnative").cast<bool>()) return DType::Other;  // byte-swapped data
    const char kind = dt.kind();
    const auto size = dt.itemsize();
    if (kind == 'u' && size == 1) return DType::U8;
    if (kind == 'i' && size == 1) return DType::I8;
    if (kind == 'u' && size == 2) return DType::U16;
    if (kind == 'i' && size == 4) return DType::I32;
    if (kind == 'i' && size == 8) return DType::I64;
    if (kind == 'f' && size == 2) return DType::F16;
    if (kind == 'f' && size == 4) return DType::F32;
    return DType::Other;
}

const char* dtype_name(DType d) {
    switch (d) {
        case DType::U8: return "uint8";
        case DType::I8: return "int8";
        case DType::U16: return "uint16";
        case DType::I32: return "int32";
        case DType::I64: return "int64";
        case DType::F16: return "float16";
        case DType::F32: return "float32";
        default: return "unsupported";
    }
}

std::string shape_str(const py::array& a) {
    std::ostringstream s;
    s << "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
    if (a.ndim() == 1) s << ",";
    s << ")";
    return s.str();
}

void require_dtype(const py::array& a, const char* what, std::initializer_list<DType> allowed) {
    const DType d = dtype_of(a);
    for (DType x : allowed)
        if (x == d && d != DType::Other) return;
    std::string names;
    for (DType x : allowed) names += std::string(names.empty() ? "" : ", ") + dtype_name(x);
    throw DTypeError(std::string(what) + ": expected dtype " + names + ", got " +
                     std::string(py::str(a.dtype())));
}

void require_ndim(const py::array& a, const char* what, std::initializer_list<int> allowed) {
    for (int n : allowed)
        if (a.ndim() == n) return;
    std::string dims;
    for (int n : allowed) dims += std::string(dims.empty() ? "" : " or ") + std::to_string(n);
    throw ArgumentError(std::string(what) + ": expected " + dims + " dimensions, got shape " + shape_str(a));
}

void require_nonempty(const py::array& a, const char* what) {
    if (a.size() == 0) throw ArgumentError(std::string(what) + ": array is empty, shape " + shape_str(a));
}

void require_c_contiguous(const py::array& a, const char* what) {
    if (!(a.flags() & py::array::c_style))
        throw ArgumentError(std::string(what) + ": expected a C-contiguous array (use np.ascontiguousarray)");
}

void require_writeable(const py::array& a, const char* what) {
    if (!a.writeable()) throw ArgumentError(std::string(what) + ": array is read-only; pass a writeable array");
}

void require_finite(double v, const char* what) {
    if (!std::isfinite(v)) throw ArgumentError(std::string(what) + ": must be a finite number, got " + std::to_string(v));
}

void require_int_dims(const py::array& a, const char* what) {
    constexpr int64_t kMax = 2147483647;  // INT32_MAX
    bool too_big = static_cast<int64_t>(a.size()) > kMax;
    for (int k = 0; k < a.ndim(); ++k) too_big |= static_cast<int64_t>(a.shape(k)) > kMax;
    if (too_big)
        throw ArgumentError(std::string(what) + ": shape " + shape_str(a) +
                            " is too large: kernels index with int32, so at most 2**31-1 elements");
}

uint16_t float_to_half(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t mant = x & 0x7fffffu;
    const int32_t exp = static_cast<int32_t>((x >> 23) & 0xffu);
    if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0u));  // inf / nan
    int32_t e = exp - 127 + 15;
    if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
    if (e <= 0) {                                                  // subnormal half or zero
        if (e < -10) return static_cast<uint16_t>(sign);
        mant |= 0x800000u;
        const uint32_t shift = static_cast<uint32_t>(14 - e);
        uint32_t half = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1u);
        const uint32_t mid = 1u << (shift - 1u);
        if (rem > mid || (rem == mid && (half & 1u))) ++half;
        return static_cast<uint16_t>(sign | half);
    }
    uint32_t half = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;  // may carry into exponent: correct
    return static_cast<uint16_t>(sign | half);
}

float half_to_float(uint16_t h) {
    const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            int e = -1;
            do {
                ++e;
                mant <<= 1;
            } while (!(mant & 0x400u));
            bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

const float* half_table() {
    static const std::vector<float> table = [] {
        std::vector<float> t(65536);
        for (uint32_t i = 0; i < 65536; ++i) t[i] = half_to_float(static_cast<uint16_t>(i));
        return t;
    }();
    return table.data();
}

static std::atomic<int> g_threads{0};

int num_threads() {
    int n = g_threads.load();
    if (n <= 0) {
        n = static_cast<int>(std::thread::hardware_concurrency());
        n = std::max(1, std::min(n, 64));
    }
    return n;
}

void set_num_threads(int n) {
    if (n < 0 || n > 1024) throw ArgumentError("num_threads: expected 0 (automatic) to 1024, got " + std::to_string(n));
    g_threads.store(n);
}

namespace {
// Joins every started worker however the scope is left: a joinable std::thread destroyed
// during unwinding would call std::terminate.
struct JoinAll {
    std::vector<std::thread>& workers;
    ~JoinAll() {
        for (auto& w : workers)
            if (w.joinable()) w.join();
    }
};
}  // namespace

void parallel_for(int64_t n, int64_t min_chunk, const std::function<void(int64_t, int64_t)>& fn, int threads) {
    if (n <= 0) return;
    if (threads <= 0) threads = num_threads();
    int64_t chunks = std::min<int64_t>(threads, std::max<int64_t>(1, n / std::max<int64_t>(1, min_chunk)));
    if (chunks <= 1) {
        fn(0, n);
        return;
    }
    std::vector<std::thread> workers;
    workers.reserve(static_cast<size_t>(chunks - 1));
    JoinAll join_all{workers};
    const int64_t step = (n + chunks - 1) / chunks;
    // When a worker cannot start (EAGAIN: thread or memory limits), the chunks not yet
    // handed out run on the calling thread as one range: at most `chunks` calls of fn in all,
    // which kernels rely on (they size per-call scratch by the thread count).
    int64_t rest = n;
    for (int64_t c = 1; c < chunks; ++c) {
        const int64_t b = c * step, e = std::min(n, b + step);
        if (b >= e) break;
        try {
            workers.emplace_back(fn, b, e);
        } catch (const std::system_error&) {
            rest = b;
            break;
        }
    }
    fn(0, std::min(n, step));
    if (rest < n) fn(rest, n);
}

}  // namespace mtkseg
