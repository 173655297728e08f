// Stand-in for <pybind11/numpy.h>: see pybind11.h beside it.
#pragma once
#include "pybind11.h"
