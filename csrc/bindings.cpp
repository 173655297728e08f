// Python bindings of mtkseg._core.  Argument normalisation lives in mtkseg/ops.py; these
// entry points validate again and raise mtkseg.errors types, never abort.
#include <pybind11/stl.h>

#include "kernels.hpp"
#include "simd.hpp"

#define MTKSEG_STRINGIFY_(x) #x
#define MTKSEG_STRINGIFY(x) MTKSEG_STRINGIFY_(x)

namespace mtkseg {
namespace {

// Translates native argument errors into mtkseg.errors classes (looked up lazily, GIL held).
void translate(std::exception_ptr p) {
    try {
        if (p) std::rethrow_exception(p);
    } catch (const ArgumentError& e) {
        py::object cls = py::module_::import("mtkseg.errors").attr("InvalidArgumentError");
        PyErr_SetString(cls.ptr(), e.what());
    } catch (const DTypeError& e) {
        py::object cls = py::module_::import("mtkseg.errors").attr("InvalidTypeError");
        PyErr_SetString(cls.ptr(), e.what());
    }
}

Crop to_crop(std::array<int, 4> c) { return Crop{c[0], c[1], c[2], c[3]}; }

}  // namespace

// Typed arguments of the Python API (the kernels keep their int codes).
enum class Layout { NHWC = 0, NCHW = 1 };
enum class Mode { Nearest = 0, Bilinear = 1 };

}  // namespace mtkseg

PYBIND11_MODULE(_core, m) {
    using namespace mtkseg;
    namespace py = pybind11;
    m.doc() = "mtkseg native kernels (use mtkseg.ops for the documented API)";
    py::register_exception_translator(&translate);
#ifdef MTKSEG_VERSION_INFO
    m.attr("__version__") = MTKSEG_STRINGIFY(MTKSEG_VERSION_INFO);  // the project version CMake got
#else
    m.attr("__version__") = "dev";
#endif

    py::enum_<PixelFormat>(m, "PixelFormat", "Pixel layout of a frame (source) or of the model input (destination).")
        .value("GRAY", PixelFormat::Gray)
        .value("RGB", PixelFormat::RGB)
        .value("BGR", PixelFormat::BGR)
        .value("RGBA", PixelFormat::RGBA)
        .value("BGRA", PixelFormat::BGRA);
    py::enum_<Layout>(m, "Layout", "Tensor layout of the model input/output.")
        .value("NHWC", Layout::NHWC)
        .value("NCHW", Layout::NCHW);
    py::enum_<Interp>(m, "Interpolation", "How frames are resized to the model input.")
        .value("LINEAR", Interp::Linear)
        .value("AREA", Interp::Area);
    py::enum_<Mode>(m, "Mode", "How scores/masks are resized to the output size.")
        .value("NEAREST", Mode::Nearest)
        .value("BILINEAR", Mode::Bilinear);

    m.def("num_threads", &num_threads, "Threads the kernels use.");
    m.def("set_num_threads", &set_num_threads, py::arg("n"), "Set kernel threads (0 = all cores).");

    // Test-only: which SIMD level the kernels use (MTKSEG_SIMD picks one at import).
    m.def("simd_level", [] { return std::string(simd::level_name(simd::level())); });
    m.def("simd_levels", &simd::supported_levels, "SIMD levels this CPU runs, scalar first.");
    m.def("_set_simd_level", &simd::set_level, py::arg("name"),
          "Test-only: force a SIMD level ('auto' = best); returns the previous one.");

    m.def(
        "preprocess",
        [](const py::array& frame, py::array& out, PixelFormat src_format, PixelFormat dst_format, Layout layout,
           Interp interpolation, bool letterbox, std::array<double, 3> pad, std::array<double, 3> mean,
           std::array<double, 3> std_, double scale, int64_t zero_point) {
            return preprocess(frame, out, static_cast<int>(src_format), static_cast<int>(dst_format),
                              layout == Layout::NCHW, static_cast<int>(interpolation), letterbox, pad, mean, std_, scale,
                              zero_point);
        },
        py::arg("frame"), py::arg("out"), py::arg("src_format"), py::arg("dst_format"), py::arg("layout"),
        py::arg("interpolation"), py::arg("letterbox"), py::arg("pad"), py::arg("mean"), py::arg("std"),
        py::arg("scale"), py::arg("zero_point"));
    m.def(
        "argmax_resize",
        [](const py::array& logits, py::array& out, std::array<int, 4> crop, Mode mode) {
            argmax_resize(logits, out, to_crop(crop), static_cast<int>(mode));
        },
        py::arg("logits"), py::arg("out"), py::arg("crop"), py::arg("mode"));
    m.def(
        "labels_resize",
        [](const py::array& labels, py::array& out, std::array<int, 4> crop) {
            labels_resize(labels, out, to_crop(crop));
        },
        py::arg("labels"), py::arg("out"), py::arg("crop"));
    m.def(
        "threshold_resize",
        [](const py::array& scores, py::array& out, std::array<int, 4> crop, Mode mode, double threshold) {
            threshold_resize(scores, out, to_crop(crop), static_cast<int>(mode), threshold);
        },
        py::arg("scores"), py::arg("out"), py::arg("crop"), py::arg("mode"), py::arg("threshold"));
    m.def(
        "confidence_resize",
        [](const py::array& logits, py::array& out, std::array<int, 4> crop, Mode mode, int64_t class_index,
           double scale, int64_t zero_point, bool softmax) {
            confidence_resize(logits, out, to_crop(crop), static_cast<int>(mode), class_index, scale, zero_point,
                              softmax);
        },
        py::arg("logits"), py::arg("out"), py::arg("crop"), py::arg("mode"), py::arg("class_index"), py::arg("scale"),
        py::arg("zero_point"), py::arg("softmax"));
    m.def("confusion_matrix", &confusion_matrix, py::arg("gt"), py::arg("pred"), py::arg("num_classes"),
          py::arg("ignore_index"), py::arg("out"));
    m.def("overlay", &overlay, py::arg("frame"), py::arg("mask"), py::arg("palette"), py::arg("alpha"), py::arg("out"));
    m.def("colorize", &colorize, py::arg("mask"), py::arg("palette"), py::arg("out"));
    m.def("ema_update", &ema_update, py::arg("state"), py::arg("logits"), py::arg("momentum"), py::arg("scale"),
          py::arg("zero_point"), py::arg("init"));
    m.def("mode3", &mode3, py::arg("a"), py::arg("b"), py::arg("c"), py::arg("out"));
}
