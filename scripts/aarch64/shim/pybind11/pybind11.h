// Stand-in for <pybind11/pybind11.h> used only by scripts/aarch64-check.sh: just enough of
// pybind11's array API for the kernel sources (csrc/*.cpp except bindings.cpp) to compile and
// run in a plain C++ test driver, with no Python for the target architecture.  An array here
// is a view (dtype, shape, byte strides, pointer) that the driver owns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <Python.h>  // the shim's: what csrc/gil.cpp and GilRelease (common.hpp) call

namespace pybind11 {

using ssize_t = std::ptrdiff_t;

struct bool_value {
    bool v;
    template <typename T>
    T cast() const { return static_cast<T>(v); }
};

class dtype_t {
public:
    dtype_t(char kind = 'u', ssize_t itemsize = 1) : kind_(kind), itemsize_(itemsize) {}
    char kind() const { return kind_; }
    ssize_t itemsize() const { return itemsize_; }
    bool_value attr(const char*) const { return {true}; }  // "isnative": the driver's data is native
    std::string name() const {
        return std::string(kind_ == 'f' ? "float" : kind_ == 'i' ? "int" : "uint") + std::to_string(8 * itemsize_);
    }

private:
    char kind_;
    ssize_t itemsize_;
};
using dtype = dtype_t;

class str {
public:
    explicit str(const dtype_t& d) : s_(d.name()) {}
    operator std::string() const { return s_; }

private:
    std::string s_;
};

class array {
public:
    enum { c_style = 1, f_style = 2 };
    array() = default;
    array(dtype_t dt, std::vector<ssize_t> shape, void* data, bool writeable = true)
        : dt_(dt), shape_(std::move(shape)), data_(data), writeable_(writeable) {
        strides_.assign(shape_.size(), 0);
        ssize_t s = dt_.itemsize();
        for (size_t i = shape_.size(); i-- > 0;) {
            strides_[i] = s;
            s *= shape_[i];
        }
    }
    array(dtype_t dt, std::vector<ssize_t> shape, std::vector<ssize_t> strides, void* data, bool writeable = true)
        : dt_(dt), shape_(std::move(shape)), strides_(std::move(strides)), data_(data), writeable_(writeable) {}

    ssize_t ndim() const { return static_cast<ssize_t>(shape_.size()); }
    const ssize_t* shape() const { return shape_.data(); }
    ssize_t shape(ssize_t i) const { return shape_[static_cast<size_t>(i)]; }
    const ssize_t* strides() const { return strides_.data(); }
    ssize_t strides(ssize_t i) const { return strides_[static_cast<size_t>(i)]; }
    ssize_t size() const {
        ssize_t n = 1;
        for (ssize_t s : shape_) n *= s;
        return n;
    }
    ssize_t itemsize() const { return dt_.itemsize(); }
    ssize_t nbytes() const { return size() * itemsize(); }
    dtype_t dtype() const { return dt_; }
    const void* data() const { return data_; }
    void* mutable_data() { return data_; }
    bool writeable() const { return writeable_; }
    int flags() const {
        ssize_t expect = itemsize();
        for (size_t i = shape_.size(); i-- > 0;) {
            if (shape_[i] != 1 && strides_[i] != expect) return 0;
            expect *= shape_[i];
        }
        return c_style;
    }

private:
    dtype_t dt_;
    std::vector<ssize_t> shape_, strides_;
    void* data_ = nullptr;
    bool writeable_ = true;
};

}  // namespace pybind11
