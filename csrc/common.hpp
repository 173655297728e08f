// Shared helpers of the mtkseg native core: typed errors, array validation, half floats,
// and a tiny parallel-for.  Kernels validate with the GIL held and compute without it.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>

namespace py = pybind11;

namespace mtkseg {

// Raised as mtkseg.errors.InvalidArgumentError (a ValueError) in Python.
struct ArgumentError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
// Raised as mtkseg.errors.InvalidTypeError (a TypeError) in Python.
struct DTypeError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Releases the GIL for its scope; every kernel computes inside one (never use
// py::gil_scoped_release or py::call_guard<py::gil_scoped_release>: tests check).  On the way
// back, a thread that finds the interpreter finalising is parked for good instead of re-taking
// the GIL: before Python 3.14, PyEval_RestoreThread ends such a (daemon) thread with
// pthread_exit, whose forced unwinding through a noexcept destructor aborts the process
// (std::terminate).  Python 3.14 parks the thread itself (gh-87135).  The finalising thread
// itself (a __del__ that calls a kernel during finalisation) just takes the GIL back.
// See csrc/gil.cpp.
class GilRelease {
public:
    GilRelease() : finalizer_(finalizing()), tstate_(PyEval_SaveThread()) {}
    ~GilRelease() { reacquire(tstate_, finalizer_); }
    GilRelease(const GilRelease&) = delete;
    GilRelease& operator=(const GilRelease&) = delete;

private:
    static bool finalizing() noexcept {
#if PY_VERSION_HEX >= 0x030D0000
        return Py_IsFinalizing() != 0;
#else
        return _Py_IsFinalizing() != 0;
#endif
    }
    // Takes the GIL back, or never returns (the interpreter is finalising, and this thread
    // is not the one finalising it).
    static void reacquire(PyThreadState* tstate, bool finalizer) noexcept;
    // Finalisation had started while this thread held the GIL: only the finalising thread can.
    bool finalizer_;
    PyThreadState* tstate_;
};

enum class DType { U8, I8, U16, I32, I64, F16, F32, Other };

DType dtype_of(const py::array& a);
const char* dtype_name(DType d);
std::string shape_str(const py::array& a);

// Checks used by every kernel; `what` names the argument in the message.
void require_dtype(const py::array& a, const char* what, std::initializer_list<DType> allowed);
void require_ndim(const py::array& a, const char* what, std::initializer_list<int> allowed);
void require_nonempty(const py::array& a, const char* what);
void require_c_contiguous(const py::array& a, const char* what);
void require_writeable(const py::array& a, const char* what);
void require_finite(double v, const char* what);
// Kernels index pixels with int: every dimension and the element count must fit int32.
void require_int_dims(const py::array& a, const char* what);

// Element i of a T array that may not be aligned to alignof(T) (numpy allows such views);
// memcpy compiles to a plain load where unaligned loads are legal.
template <typename T>
inline T load_unaligned(const void* base, int64_t i) {
    T v;
    std::memcpy(&v, static_cast<const char*>(base) + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
    return v;
}

// IEEE half <-> float with round-to-nearest-even (numpy's astype semantics).
uint16_t float_to_half(float f);
float half_to_float(uint16_t h);
// 65536-entry table, built on first use (thread-safe static).
const float* half_table();

// Threads used by kernels (default: hardware concurrency).
int num_threads();
void set_num_threads(int n);

// Runs fn(begin, end) over [0, n) split into up to `threads` chunks (0: num_threads(), read
// once): at most that many calls of fn, on disjoint ranges, one of them on the calling thread;
// returns when all have finished.  Chunks smaller than min_chunk are not split.  A kernel that
// sizes per-chunk buffers must read num_threads() once itself and pass it here, since
// set_num_threads may run concurrently.  Chunks run on a persistent worker pool (at most 64
// workers; one parallel_for at a time, so concurrent or nested calls start threads of their
// own).  If fn throws, chunks not yet started are skipped and the first exception is rethrown
// here once the running ones are done.  Workers that cannot start (thread limits) leave their
// chunks to the calling thread, so this never aborts for want of threads.
void parallel_for(int64_t n, int64_t min_chunk, const std::function<void(int64_t, int64_t)>& fn, int threads = 0);

// Work (element operations) below which a kernel stays on the calling thread.  Waking a pool
// worker costs ~10 us (starting a thread, on the fallback path, tens), and on a small device
// the other core is usually busy with the interpreter (the video pipeline overlaps them), so
// only big frames are split.
constexpr int64_t kMinParallelWork = int64_t(1) << 21;

// Rows per chunk so that each chunk carries at least kMinParallelWork.
inline int64_t rows_per_chunk(int64_t work_per_row) {
    return kMinParallelWork / (work_per_row > 0 ? work_per_row : 1) + 1;
}

// Geometry of the valid (non-padded) region of a model tensor.
struct Crop {
    int x0, y0, w, h;
};

// One bilinear tap in OpenCV's INTER_LINEAR geometry (half-pixel centres, replicated
// borders): value = (1 - w) * src[i0] + w * src[i1].
struct LinearTap {
    int i0, i1;
    float w;
};
inline LinearTap linear_tap(int d, double scale, int src) {
    float f = static_cast<float>((d + 0.5) * scale - 0.5);
    int s = static_cast<int>(std::floor(f));
    f -= static_cast<float>(s);
    if (s < 0) {
        f = 0.f;
        s = 0;
    }
    if (s >= src - 1) {
        f = 0.f;
        s = src - 1;
    }
    return {s, s + 1 < src ? s + 1 : s, f};
}

// OpenCV INTER_NEAREST geometry: src index = floor(d * src / dst), clamped.
inline int nearest_index(int d, double inv_scale, int src) {
    const int s = static_cast<int>(std::floor(d * inv_scale));
    return s < src - 1 ? s : src - 1;
}

}  // namespace mtkseg
