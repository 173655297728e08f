// GilRelease's way back to the GIL (common.hpp), which must never abort the interpreter.
//
// Before Python 3.14, a thread other than the finalising one that tries to take the GIL once
// finalisation has started (a daemon thread coming back from a kernel while the interpreter
// exits) is ended by PyEval_RestoreThread -> take_gil -> PyThread_exit_thread -> pthread_exit.
// With glibc that is a forced unwind (abi::__forced_unwind) through every C++ frame above; the
// first noexcept frame on the way (a destructor such as py::gil_scoped_release's, which is where
// the GIL is re-taken) calls std::terminate: exit code 134, "terminate called without an active
// exception" (pybind11 #2215, PyTorch #38228).  Letting the unwind through instead would run the
// destructors of the call's Python objects (pybind11's argument casters) without the GIL while
// the main thread finalises.  So, as Python 3.14 does itself (gh-87135), the thread is parked
// for good: it touches nothing more, its frames are never unwound, and the process ends when
// the main thread finishes finalising.
//
// Two layers:
//  1. Finalisation has started (Py_IsFinalizing: a call and a load): park without calling into
//     Python.  Not on the finalising thread itself, which may call a kernel from a __del__ or a
//     weakref callback during finalisation and must go on: GilRelease tells it apart by
//     finalisation having started already when it released the GIL (once the flag is set, any
//     other thread that gets the GIL is ended at once, so a thread that held it then is the
//     finalising one; a thread inside a kernel cannot be the one that sets the flag).
//  2. It starts after that check, or while this thread waits for the GIL (take_gil checks again
//     after each switch interval and after acquiring it): PyEval_RestoreThread calls pthread_exit,
//     and the forced unwind lands in the catch below, in this frame, before any noexcept one.
//     The handler never ends, so the unwind is neither swallowed (glibc would abort with
//     "FATAL: exception not rethrown") nor rethrown.  catch (...) catches it with libstdc++ and
//     with libc++abi alike; PyEval_RestoreThread throws nothing else.  The finalising thread
//     never gets here that way (CPython does not end it).
// What remains: where pthread_exit does not unwind C++ frames (musl; Windows' _endthreadex)
// layer 2 never sees it and the thread just ends, destructors skipped, which does not abort
// either.  A parked thread keeps its stack: the kernel's buffers and the call's references
// leak (at exit), and it holds no lock of ours (the kernel, and its parallel_for, finished
// before this runs) nor the GIL (take_gil drops it before ending a thread).  Built with
// -fno-exceptions, layer 2 would be compiled out; this file never is.
#ifdef _WIN32
#define NOMINMAX
#include <windows.h>
#else
#include <unistd.h>
#endif

#include "common.hpp"  // pybind11, hence Python.h

namespace mtkseg {
namespace {

// What Python 3.14 does to such a thread itself (gh-87135): sleep until the process ends.
[[noreturn]] void park_forever() noexcept {
    for (;;) {
#ifdef _WIN32
        Sleep(INFINITE);
#else
        pause();
#endif
    }
}

}  // namespace

void GilRelease::reacquire(PyThreadState* tstate, bool finalizer) noexcept {
    if (!finalizer && finalizing()) park_forever();
    try {
        PyEval_RestoreThread(tstate);
    } catch (...) {  // pthread_exit's forced unwind (see above): never leave this handler
        park_forever();
    }
}

}  // namespace mtkseg
