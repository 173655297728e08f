// Validation helpers, half-float conversion and the parallel-for (a persistent worker pool)
// shared by all kernels.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <sstream>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#ifndef _WIN32
#include <pthread.h>
#include <signal.h>
#endif

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
    // Never freed: a daemon thread may still be inside a kernel while exit() runs static
    // destructors, and must not read a destroyed table.
    static const float* const table = [] {
        float* t = new float[65536];
        for (uint32_t i = 0; i < 65536; ++i) t[i] = half_to_float(static_cast<uint16_t>(i));
        return t;
    }();
    return table;
}

static std::atomic<int> g_threads{0};

// The machine's logical cores, read once: glibc's hardware_concurrency() opens and reads
// /sys/devices/system/cpu/online on every call (three syscalls, several microseconds, which
// every kernel call paid before).
int hardware_threads() {
    static const int n = std::max(1, std::min(static_cast<int>(std::thread::hardware_concurrency()), 64));
    return n;
}

int num_threads() {
    const int n = g_threads.load();
    return n > 0 ? n : hardware_threads();
}

void set_num_threads(int n) {
    if (n < 0 || n > 1024) throw ArgumentError("num_threads: expected 0 (automatic) to 1024, got " + std::to_string(n));
    g_threads.store(n);
}

namespace {

using ChunkFn = std::function<void(int64_t, int64_t)>;

// Runs fn(b, e) and returns what it threw (nullptr if nothing): an exception must never leave a
// worker thread (std::terminate) nor leave the caller before every chunk has finished.
std::exception_ptr call_chunk(const ChunkFn& fn, int64_t b, int64_t e) noexcept {
    try {
        fn(b, e);
    } catch (...) {
        return std::current_exception();
    }
    return nullptr;
}

// ---------------------------------------------------------------- fallback: a thread per chunk
// Used when the pool is busy (another thread's parallel_for, or a nested call from inside fn).

// Joins every started worker however the scope is left: a joinable std::thread destroyed
// during unwinding would call std::terminate.
struct JoinAll {
    std::vector<std::thread>& workers;
    void join() {
        for (auto& w : workers)
            if (w.joinable()) w.join();
    }
    ~JoinAll() { join(); }
};

// The first exception of any chunk, set by several threads.
class FirstError {
public:
    void keep(std::exception_ptr e) {
        if (!e) return;
        std::lock_guard<std::mutex> lock(m_);
        if (!first_) first_ = std::move(e);
    }
    void rethrow() {
        if (first_) std::rethrow_exception(first_);
    }

private:
    std::mutex m_;
    std::exception_ptr first_;
};

void spawn_for(int64_t n, int64_t step, int64_t chunks, const ChunkFn& fn) {
    FirstError error;
    std::vector<std::thread> workers;
    workers.reserve(static_cast<size_t>(chunks - 1));
    JoinAll join_all{workers};
    // When a worker cannot start (EAGAIN: thread or memory limits), the chunks not yet
    // handed out run on the calling thread as one range: at most `chunks` calls of fn in all.
    int64_t rest = n;
    for (int64_t c = 1; c < chunks; ++c) {
        const int64_t b = c * step, e = std::min(n, b + step);
        try {
            workers.emplace_back([&fn, &error, b, e] { error.keep(call_chunk(fn, b, e)); });
        } catch (const std::system_error&) {
            rest = b;
            break;
        }
    }
    error.keep(call_chunk(fn, 0, std::min(n, step)));
    if (rest < n) error.keep(call_chunk(fn, rest, n));
    join_all.join();
    error.rethrow();
}

// ---------------------------------------------------------------- the persistent pool
// One parallel_for at a time owns the pool (try-lock on `busy_`; others fall back to
// spawn_for).  The owner publishes the job as chunk indices 1..chunks-1 and runs chunk 0;
// sleeping workers and then the owner itself claim the remaining indices one by one, so each
// chunk runs exactly once whoever gets it, and a worker slow to wake on a loaded machine costs
// nothing (the owner just runs its chunk).  After an exception no further chunk is claimed.
// The object is never destroyed: workers are detached and may outlive static destructors.
class Pool {
public:
    static constexpr int kMaxWorkers = 64;

    // Runs the job and returns true, or returns false at once if another call owns the pool.
    bool try_run(int64_t n, int64_t step, int64_t chunks, const ChunkFn& fn) {
        if (busy_.exchange(true, std::memory_order_acquire)) return false;
        grow(static_cast<int>(std::min<int64_t>(chunks - 1, kMaxWorkers)));
        std::exception_ptr error = run_owned(n, step, chunks, fn);
        busy_.store(false, std::memory_order_release);
        if (error) std::rethrow_exception(error);
        return true;
    }

private:
    std::exception_ptr run_owned(int64_t n, int64_t step, int64_t chunks, const ChunkFn& fn) {
        std::unique_lock<std::mutex> lock(m_);
        fn_ = &fn;
        n_ = n, step_ = step, chunks_ = chunks, next_ = 1, error_ = nullptr;
        lock.unlock();
        for (int64_t c = std::min<int64_t>(chunks - 1, workers_); c > 0; --c) work_cv_.notify_one();
        int64_t b = 0, e = std::min(n, step);  // chunk 0 is the owner's
        for (;;) {
            std::exception_ptr error = call_chunk(fn, b, e);
            lock.lock();
            if (error && !error_) error_ = std::move(error);
            if (!claim(b, e)) break;
            lock.unlock();
        }
        done_cv_.wait(lock, [this] { return running_ == 0; });  // no chunk is left to claim
        fn_ = nullptr;
        chunks_ = next_ = 0;
        return std::exchange(error_, nullptr);  // the pool keeps no reference to it
    }

    // With m_ held: the next unclaimed chunk, if any (none after an exception).
    bool claim(int64_t& b, int64_t& e) {
        if (next_ >= chunks_ || error_) return false;
        b = next_++ * step_;
        e = std::min(n_, b + step_);
        return true;
    }

    void worker_loop() {
        std::unique_lock<std::mutex> lock(m_);
        for (;;) {
            int64_t b = 0, e = 0;
            work_cv_.wait(lock, [&] { return claim(b, e); });
            const ChunkFn& fn = *fn_;
            ++running_;
            lock.unlock();
            std::exception_ptr error = call_chunk(fn, b, e);
            lock.lock();
            if (error && !error_) error_ = std::move(error);
            if (--running_ == 0) done_cv_.notify_one();
        }
    }

    // Owner only: starts workers up to `want`; on failure (EAGAIN) the pool stays smaller and
    // the owner runs the unclaimed chunks.
    void grow(int want) {
        while (workers_ < want) {
            try {
                start_worker();
            } catch (const std::exception&) {  // std::system_error, or std::bad_alloc
                return;
            }
            ++workers_;
        }
    }

    // Workers block asynchronous signals (SIGINT, SIGCHLD, ...), so that these go to the
    // interpreter's threads and interrupt their blocking calls; fault signals stay deliverable.
    void start_worker() {
#ifndef _WIN32
        sigset_t all, old;
        sigfillset(&all);
        for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT}) sigdelset(&all, s);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        struct Restore {
            sigset_t& old;
            ~Restore() { pthread_sigmask(SIG_SETMASK, &old, nullptr); }
        } restore{old};
#endif
        std::thread([this] { worker_loop(); }).detach();
    }

    std::atomic<bool> busy_{false};
    int workers_ = 0;  // touched by the owner only
    std::mutex m_;
    std::condition_variable work_cv_, done_cv_;
    // The published job, guarded by m_; next_ >= chunks_ when no chunk is left to claim.
    const ChunkFn* fn_ = nullptr;
    int64_t n_ = 0, step_ = 0, chunks_ = 0, next_ = 0;
    int running_ = 0;  // chunks being run by workers
    std::exception_ptr error_;
};

std::atomic<Pool*> g_pool{nullptr};

// The process's pool, created on first use; nullptr if it cannot be allocated.
Pool* pool() {
    Pool* p = g_pool.load(std::memory_order_acquire);
    if (p) return p;
    Pool* fresh = new (std::nothrow) Pool;
    if (fresh && !g_pool.compare_exchange_strong(p, fresh, std::memory_order_acq_rel)) {
        delete fresh;  // another thread won the race: use its pool
        return p;
    }
    return fresh;
}

#ifndef _WIN32
// A forked child has none of the parent's workers, and the pool's mutex may have been held at
// the fork: leave that copy alone (leaked) and start a fresh pool on first use.
void forget_pool_in_child() { g_pool.store(nullptr, std::memory_order_relaxed); }
[[maybe_unused]] const int g_atfork = pthread_atfork(nullptr, nullptr, forget_pool_in_child);
#endif

}  // namespace

void parallel_for(int64_t n, int64_t min_chunk, const std::function<void(int64_t, int64_t)>& fn, int threads) {
    if (n <= 0) return;
    if (threads <= 0) threads = num_threads();
    int64_t chunks = std::min<int64_t>(threads, std::max<int64_t>(1, n / std::max<int64_t>(1, min_chunk)));
    const int64_t step = (n + chunks - 1) / chunks;
    chunks = (n + step - 1) / step;  // no empty trailing chunks
    if (chunks <= 1) {
        fn(0, n);
        return;
    }
    Pool* p = pool();
    if (!p || !p->try_run(n, step, chunks, fn)) spawn_for(n, step, chunks, fn);
}

}  // namespace mtkseg
