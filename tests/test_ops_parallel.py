"""The kernels' persistent worker pool (csrc/parallel.cpp): workers are reused, concurrent
callers and forked children get correct results, the process exits cleanly however it ends,
and a ThreadSanitizer build of a C++ stress test (tests/fixtures/parallel_stress.cpp) is clean.

Each scenario runs in a fresh interpreter with a timeout, so a hang or a native crash is a
failed test rather than a dead pytest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import skip_unless_ci

ROOT = Path(__file__).resolve().parents[1]

# Kernels above their parallel thresholds with 4 threads, and their single-threaded results.
SETUP = """
import os, sys, threading, time
import numpy as np
from mtkseg import ops
ops.set_num_threads(1)
rng = np.random.default_rng(0)
gt = rng.integers(0, 12, (1024, 1100), dtype=np.uint8)    # > 4 * 2**18 pixels: 4 chunks
pred = rng.integers(0, 12, (1024, 1100), dtype=np.uint8)
frame = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
out = np.empty((1, 540, 960, 3), np.float32)
cm_expected = ops.confusion_matrix(gt, pred, 12)
ops.preprocess(frame, out)
pre_expected = out.copy()
ops.set_num_threads(4)

def kernels_ok(o=None):
    o = np.empty_like(out) if o is None else o
    o[:] = 0
    ops.preprocess(frame, o)
    return np.array_equal(ops.confusion_matrix(gt, pred, 12), cm_expected) and np.array_equal(o, pre_expected)

def threads_now():
    return len(os.listdir("/proc/self/task"))
"""

SANITIZED = os.environ.get("MTKSEG_SANITIZE") == "1"  # scripts/asan-tests.sh
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc/self/task")


def run_script(body: str, timeout: float = 180) -> subprocess.CompletedProcess:
    code = SETUP + textwrap.dedent(body)
    try:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"hung for {timeout} s; stderr: {exc.stderr!s:.2000}")


def assert_ok(proc: subprocess.CompletedProcess, stdout: str = "ok") -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.stdout.split() == stdout.split(), proc.stdout + proc.stderr[-2000:]


@linux_only
def test_workers_are_started_once_and_reused():
    proc = run_script("""
        before = threads_now()
        assert kernels_ok()
        started = threads_now() - before
        for _ in range(20):
            assert kernels_ok()
        print(started, threads_now() - before)
    """)
    assert_ok(proc, "3 3")  # threads - 1 pool workers, no more after 40 more calls


@linux_only
def test_concurrent_callers_get_correct_results_and_leave_no_threads():
    """Python threads call kernels at once (the video pipeline does, GIL released): one owns
    the pool, the others start threads of their own, which are all joined afterwards."""
    proc = run_script("""
        assert kernels_ok()
        before = threads_now()
        bad = []
        def loop():
            for _ in range(8):
                if not kernels_ok():
                    bad.append(1)
        callers = [threading.Thread(target=loop) for _ in range(4)]
        for t in callers: t.start()
        for t in callers: t.join()
        end = time.monotonic() + 5  # a joined Python thread's OS thread may still be exiting
        while threads_now() > before and time.monotonic() < end:
            time.sleep(0.01)
        print("ok" if not bad and threads_now() == before else f"bad={len(bad)} extra={threads_now() - before}")
    """)
    assert_ok(proc)


@linux_only
def test_forked_children_start_their_own_pool():
    """os.fork after the pool ran, including while another thread is inside a kernel (the
    pool's lock may be held at the fork): the child has none of the parent's workers and
    must not wait for them; its threaded kernels give the same results.

    Under the sanitizer job only the quiet-parent half runs: GCC 12's libasan has no fork
    handlers (ASan installs pthread_atfork only since LLVM 18, llvm-project PR #75290), so a
    child forked while a parent worker is inside the sanitizer's allocator (the confusion
    kernel's per-chunk histograms) deadlocks in its first malloc (1 of 206 forks in a repro here).
    glibc's malloc locks its arenas around fork, so the plain build has no such hang."""
    modes = "(False,)" if SANITIZED else "(False, True)"
    proc = run_script("""
        import warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        assert kernels_ok()
        stop = threading.Event()
        def busy():
            while not stop.is_set():
                kernels_ok()
        def child():
            before = threads_now()
            ok = kernels_ok() and kernels_ok() and threads_now() - before == 3
            os._exit(0 if ok else 1)
        def wait(pid, deadline=60):
            end = time.monotonic() + deadline
            while time.monotonic() < end:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    return os.waitstatus_to_exitcode(status)
                time.sleep(0.01)
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return "hang"
        results = []
        for busy_parent in MODES:
            stop.clear()
            t = threading.Thread(target=busy)
            if busy_parent:
                t.start()
            for _ in range(4):
                pid = os.fork()
                if pid == 0:
                    child()
                results.append(wait(pid))
            stop.set()
            if busy_parent:
                t.join()
        print(*results)
    """.replace("MODES", modes), timeout=400)
    assert_ok(proc, " ".join(["0"] * (4 if SANITIZED else 8)))


@linux_only
def test_multiprocessing_fork_pool_runs_threaded_kernels():
    proc = run_script("""
        import multiprocessing as mp
        assert kernels_ok()
        def task(_):
            return kernels_ok()
        with mp.get_context("fork").Pool(2) as pool:
            print(all(pool.map(task, range(4))))
    """, timeout=300)
    assert_ok(proc, "True")


EXITS = {
    # Idle workers while the interpreter finalizes and static destructors run.
    "normal": "assert kernels_ok(); print('ok')",
    # The pool was started from a thread that has ended; then the main thread uses it.
    "pool_from_thread": """
        t = threading.Thread(target=lambda: print("ok" if kernels_ok() else "bad"))
        t.start(); t.join()
        assert kernels_ok()
    """,
    "os_exit_in_thread": """
        def end():
            ok = kernels_ok()
            print("ok" if ok else "bad", flush=True)
            os._exit(0)
        threading.Thread(target=end).start()
        time.sleep(120)
    """,
    # libc exit() on a non-main thread: C++ static destructors run while the main thread lives.
    "libc_exit_in_thread": """
        import ctypes
        def end():
            ok = kernels_ok()
            print("ok" if ok else "bad", flush=True)
            ctypes.CDLL(None).exit(0)
        threading.Thread(target=end).start()
        time.sleep(120)
    """,
    # The interpreter exits while a daemon thread is inside a kernel on the pool (see below).
    "exit_during_kernel": """
        def loop():
            while True:
                kernels_ok()
        threading.Thread(target=loop, daemon=True).start()
        time.sleep(0.3)
        print("ok")
    """,
    # The finalizing thread itself calls a kernel (a __del__ run when __main__ is cleared, after
    # finalization has started): it must take the GIL back and go on, not be parked (a hang).
    "kernel_in_del_during_finalization": """
        from mtkseg import _core
        a = rng.integers(0, 12, (1024, 2048), dtype=np.uint8)  # above the parallel threshold
        res = np.empty_like(a)
        _core.mode3(a, a, a, res)  # pybind11 imports numpy's C API on first use: not at exit
        class KernelWhenCollected:
            def __del__(self, fin=sys.is_finalizing, mode3=_core.mode3, a=a, res=res, want=a.tobytes(),
                        write=os.write):
                res.fill(0)
                mode3(a, a, a, res)
                write(1, b"ok" if fin() and res.tobytes() == want else b"bad")
        keep = KernelWhenCollected()
    """,
}


@pytest.mark.parametrize("how", sorted(EXITS))
def test_process_exits_cleanly_after_using_the_pool(how):
    assert_ok(run_script(EXITS[how], timeout=120))


# Daemon threads loop over every kernel that releases the GIL, on inputs big enough that they
# spend most of their time without it, and the main thread exits.  Python < 3.14 ends a thread
# that wants the GIL back once finalization has started with pthread_exit; its forced unwinding
# through py::gil_scoped_release's noexcept destructor aborted the process (exit 134, "terminate
# called without an active exception").  csrc/gil.cpp parks such a thread instead.  argv: n > 0
# makes sum(range(n)) the only exit function, the last thing before finalization starts: C code
# that holds the GIL (no bytecode, so no switch) while daemon threads come back from their
# kernels, so that they are still waiting inside PyEval_RestoreThread when finalization starts
# (the race after GilRelease's Py_IsFinalizing check, deterministic this way); 0: a plain exit.
DAEMON_EXIT = """
import atexit, sys, threading, time
import numpy as np
from mtkseg import ops
ops.set_num_threads(4)
rng = np.random.default_rng(0)
frame = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
x = np.empty((1, 540, 960, 3), np.float32)
logits = rng.standard_normal((1, 135, 240, 12)).astype(np.float32)
score = rng.standard_normal((1, 135, 240, 1)).astype(np.float32)
labels = rng.integers(0, 12, (135, 240), dtype=np.int32)
mask = rng.integers(0, 12, (1080, 1920), dtype=np.uint8)
palette = rng.integers(0, 256, (12, 3), dtype=np.uint8)
size = (1080, 1920)
calls = [
    lambda: ops.preprocess(frame, x),
    lambda: ops.postprocess(logits, size, mode="bilinear"),  # argmax_resize
    lambda: ops.postprocess(labels, size),                   # labels_resize
    lambda: ops.postprocess(score, size, mode="bilinear"),   # threshold_resize
    lambda: ops.confidence(logits, size),
    lambda: ops.confusion_matrix(mask, mask, 12),
    lambda: ops.overlay(frame, mask, palette),
    lambda: ops.colorize(mask, palette),
    lambda: ops.ema_update(None, logits, 0.5),
    lambda: ops.mode3(mask, mask, mask),
]
for call in calls:
    call()
def loop(k):
    while True:
        for i in range(len(calls)):
            calls[(i + k) % len(calls)]()
for k in range(3):
    threading.Thread(target=loop, args=(k,), daemon=True).start()
time.sleep(0.3)
if int(sys.argv[1]):
    atexit._clear()
    atexit.register(sum, range(int(sys.argv[1])))
"""


@pytest.mark.slow
@pytest.mark.parametrize("hold_gil_at_exit", [0, 30_000_000])
def test_interpreter_exits_while_daemon_threads_are_in_kernels(hold_gil_at_exit):
    """24 runs (4 at a time): every one exits 0.  With py::gil_scoped_release, 23 and 24 of 24
    aborted (plain exit, GIL held at exit); with only the Py_IsFinalizing check, 0 and 24."""
    runs, at_once, results = 24, 4, []
    pending: list = []
    args = [sys.executable, "-c", DAEMON_EXIT, str(hold_gil_at_exit)]

    def reap(proc: subprocess.Popen) -> None:
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            results.append(f"hung: {err[-300:]}")
            return
        results.append("ok" if proc.returncode == 0 else f"exit {proc.returncode}: {err[-300:]}")

    for _ in range(runs):
        pending.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        if len(pending) >= at_once:
            reap(pending.pop(0))
    for proc in pending:
        reap(proc)
    bad = [r for r in results if r != "ok"]
    assert not bad, f"{len(bad)} of {runs} runs failed; first: {bad[0]}"


def test_kernels_release_the_gil_only_through_gil_release():
    """A py::gil_scoped_release (or call_guard of it) would bring the exit abort back."""
    offenders = [f"{path.name}:{n}" for path in sorted((ROOT / "csrc").glob("*.[ch]pp"))
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if "gil_scoped_release" in line and not line.lstrip().startswith("//")]
    assert not offenders, offenders


@linux_only
@pytest.mark.parametrize("margin_mib", [4, 12])
def test_pool_that_cannot_start_workers_runs_chunks_on_the_caller(margin_mib):
    """The first threaded call comes with no room for (all) worker stacks: the calling thread
    runs what the missing workers would have; with room again, the pool grows to size."""
    proc = run_script("""
        import resource
        base = threads_now()
        with open("/proc/self/statm") as f:
            vm = int(f.read().split()[0]) * resource.getpagesize()
        limit = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (vm + (int(sys.argv[1]) << 20), limit[1]))
        ok = kernels_ok(out)  # no room for a new buffer
        resource.setrlimit(resource.RLIMIT_AS, limit)
        started = threads_now() - base
        print(ok, kernels_ok(), started < 3, threads_now() - base)
    """.replace("sys.argv[1]", str(margin_mib)))
    assert_ok(proc, "True True True 3")


def _cxx() -> str:
    cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        skip_unless_ci("no C++ compiler (c++, g++ or clang++) on PATH for the ThreadSanitizer stress test")
    return cxx  # type: ignore[return-value]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="builds against the Linux libpython layout")
@pytest.mark.skipif(SANITIZED, reason="not under the ASan job (own sanitizer)")
def test_thread_sanitizer_stress(tmp_path):
    """Several threads call parallel_for at once, nested, throwing, beyond the pool's 64
    workers; built with -fsanitize=thread, any data race or failed check fails the test."""
    import sysconfig

    pybind11 = pytest.importorskip("pybind11")
    cxx = _cxx()
    libdir, ver = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDVERSION")
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    exe = tmp_path / "parallel_stress"
    build = subprocess.run(
        [cxx, "-std=c++17", "-O1", "-g", "-fsanitize=thread", "-I", str(ROOT / "csrc"), "-I", pybind11.get_include(),
         "-I", sysconfig.get_paths()["include"], str(ROOT / "tests/fixtures/parallel_stress.cpp"),
         str(ROOT / "csrc/parallel.cpp"), f"-L{libdir}", f"-Wl,-rpath,{libdir}", f"-lpython{ver}", "-pthread",
         "-o", str(exe)], capture_output=True, text=True, env=env, timeout=600)
    if build.returncode != 0:
        if "tsan" in build.stderr.lower() or f"lpython{ver}" in build.stderr:
            skip_unless_ci(f"cannot build with -fsanitize=thread here: {build.stderr[-500:]}")
        pytest.fail(build.stderr[-3000:])
    env["TSAN_OPTIONS"] = "halt_on_error=1:exitcode=66"
    cmd = [str(exe), "6", "500"]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if "unexpected memory mapping" in run.stderr and shutil.which("setarch"):  # TSan vs. high ASLR entropy
        run = subprocess.run(["setarch", os.uname().machine, "-R", *cmd], capture_output=True, text=True, env=env,
                             timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    assert run.stdout.startswith("ok"), run.stdout
