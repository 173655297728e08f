// Stand-in for <Python.h> used only by scripts/aarch64-check.sh: the few C-API calls of
// mtkseg::GilRelease (csrc/common.hpp, csrc/gil.cpp).  The driver has no interpreter: there is
// no GIL to release, and the interpreter is never finalising.
#pragma once

#define PY_VERSION_HEX 0x030D0000

struct PyThreadState;
inline PyThreadState* PyEval_SaveThread() { return nullptr; }
inline void PyEval_RestoreThread(PyThreadState*) {}
inline int Py_IsFinalizing() { return 0; }
