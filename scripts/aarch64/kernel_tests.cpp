// Known-answer tests of the native kernels without Python (scripts/aarch64-check.sh builds
// this with the csrc/ kernel sources against the pybind11 stand-in in shim/ and runs it under
// qemu-aarch64).  Every case runs at every SIMD level the CPU supports (scalar, NEON on
// aarch64; SSE4.1/AVX2 on x86-64).  Exit status 0 = all passed.
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels.hpp"
#include "simd.hpp"

using namespace mtkseg;
namespace py = pybind11;

static int failures = 0;
static std::string level_now;

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            ++failures;                                                                      \
            std::printf("FAIL [%s] %s:%d: %s: ", level_now.c_str(), __FILE__, __LINE__, #cond); \
            std::printf(__VA_ARGS__);                                                        \
            std::printf("\n");                                                               \
        }                                                                                    \
    } while (0)

template <typename T>
py::dtype dt();
template <> py::dtype dt<uint8_t>() { return py::dtype('u', 1); }
template <> py::dtype dt<int8_t>() { return py::dtype('i', 1); }
template <> py::dtype dt<int64_t>() { return py::dtype('i', 8); }
template <> py::dtype dt<float>() { return py::dtype('f', 4); }

template <typename T>
py::array view(std::vector<T>& v, std::vector<py::ssize_t> shape) {
    return py::array(dt<T>(), std::move(shape), v.data());
}

// Deterministic pseudo-random numbers (no <random> distribution differences between libcs).
static uint32_t lcg_state = 12345;
static uint32_t lcg() { return lcg_state = lcg_state * 1664525u + 1013904223u; }

// ---- preprocess: 2x4 BGR frame -> 1x2 RGB float32, a 2x2 block average per output pixel ----
static void test_preprocess() {
    std::vector<uint8_t> frame(2 * 4 * 3);
    for (int y = 0; y < 2; ++y)
        for (int x = 0; x < 4; ++x) {
            uint8_t* p = &frame[(y * 4 + x) * 3];
            p[0] = static_cast<uint8_t>(10 * x + y);  // B
            p[1] = static_cast<uint8_t>(100 + x);     // G
            p[2] = static_cast<uint8_t>(200 + y);     // R
        }
    const float want[2][3] = {{200.5f, 100.5f, 5.5f}, {200.5f, 102.5f, 25.5f}};  // RGB
    for (int interp : {0, 1}) {                                                     // linear, area
        for (bool nchw : {false, true}) {
            std::vector<float> out(6, -1.f);
            py::array src = view(frame, {2, 4, 3});
            py::array dst = nchw ? view(out, {1, 3, 1, 2}) : view(out, {1, 1, 2, 3});
            auto r = preprocess(src, dst, 2 /*BGR*/, 1 /*RGB*/, nchw, interp, false, {0, 0, 0}, {0, 0, 0}, {1, 1, 1},
                                1.0, 0);
            CHECK(std::get<2>(r) == 2 && std::get<3>(r) == 1, "region %d x %d", std::get<2>(r), std::get<3>(r));
            for (int x = 0; x < 2; ++x)
                for (int c = 0; c < 3; ++c) {
                    const float got = nchw ? out[c * 2 + x] : out[x * 3 + c];
                    CHECK(std::fabs(got - want[x][c]) < 1e-4f, "interp %d nchw %d x %d c %d: %g != %g", interp, nchw,
                          x, c, got, want[x][c]);
                }
        }
    }
    // Normalisation and int8 quantisation: (v - 127.5) / 127.5 quantised with scale 1/128, zp 0.
    std::vector<uint8_t> grey = {0, 255, 128, 64};
    std::vector<int8_t> q(4, 0);
    py::array gsrc = view(grey, {2, 2});
    py::array qdst = view(q, {1, 2, 2, 1});
    preprocess(gsrc, qdst, 0 /*gray*/, 0 /*gray*/, false, 0, false, {0, 0, 0}, {127.5, 127.5, 127.5},
               {127.5, 127.5, 127.5}, 1.0 / 128, 0);
    const int qwant[4] = {-128, 127, 1, -64};  // -1 -> -128; 1 -> 128 saturates; 0.0039*128 = 0.5 -> 0? see below
    (void)qwant;
    CHECK(q[0] == -128 && q[1] == 127, "int8 ends %d %d", q[0], q[1]);
    CHECK(q[3] == -64 || q[3] == -63, "int8 64 -> %d", q[3]);  // (64 - 127.5) / 127.5 * 128 = -63.75
}

// ---- preprocess, integer path (uint8/int8 inputs = pixel + zero point, csrc/linear_u8.cpp) ----
// frame (sh x sw BGR, rows `pitch` bytes apart) -> dh x dw RGB; int8: zero point -128.
static std::vector<uint8_t> preprocess_q(std::vector<uint8_t>& frame, int sh, int sw, int pitch, int dh, int dw,
                                         bool int8) {
    std::vector<uint8_t> out(static_cast<size_t>(dh) * dw * 3, 0);
    py::array src(py::dtype('u', 1), {sh, sw, 3}, {pitch, 3, 1}, frame.data());
    py::array dst(int8 ? py::dtype('i', 1) : py::dtype('u', 1), {1, dh, dw, 3}, out.data());
    preprocess(src, dst, 2 /*BGR*/, 1 /*RGB*/, false, 0, false, {0, 0, 0}, {0, 0, 0}, {255, 255, 255}, 1.0 / 255,
               int8 ? -128 : 0);
    return out;
}

static void test_preprocess_fixed() {
    // 2x downscale: every output is the mean of a 2x2 block, rounded half up.
    std::vector<uint8_t> frame(4 * 8 * 3);
    for (auto& v : frame) v = static_cast<uint8_t>(lcg() >> 24);
    for (bool int8 : {false, true}) {
        const std::vector<uint8_t> q = preprocess_q(frame, 4, 8, 24, 2, 4, int8);
        for (int y = 0; y < 2; ++y)
            for (int x = 0; x < 4; ++x)
                for (int k = 0; k < 3; ++k) {
                    int sum = 0;
                    for (int i = 0; i < 4; ++i) sum += frame[((2 * y + i / 2) * 8 + 2 * x + i % 2) * 3 + 2 - k];
                    const int want = ((sum + 2) >> 2) - (int8 ? 128 : 0);
                    const int got = int8 ? static_cast<int8_t>(q[(y * 4 + x) * 3 + k]) : q[(y * 4 + x) * 3 + k];
                    CHECK(got == want, "int8 %d (%d, %d, %d) = %d, want %d", int8, y, x, k, got, want);
                }
    }
    // Every level byte for byte equal to the scalar loops: odd sizes, up- and downscales, rows
    // with padding between them.
    const std::string level = simd::level_name(simd::level());
    const int sizes[][4] = {{37, 61, 20, 45}, {5, 3, 17, 29}, {90, 160, 36, 48}, {2, 9, 1, 33}, {12, 40, 12, 40}};
    for (const auto& z : sizes) {
        const int pitch = 3 * z[1] + 5;
        std::vector<uint8_t> src(static_cast<size_t>(z[0]) * pitch);
        for (auto& v : src) v = static_cast<uint8_t>(lcg() >> 24);
        for (bool int8 : {false, true}) {
            simd::set_level("scalar");
            const std::vector<uint8_t> want = preprocess_q(src, z[0], z[1], pitch, z[2], z[3], int8);
            simd::set_level(level);
            const std::vector<uint8_t> got = preprocess_q(src, z[0], z[1], pitch, z[2], z[3], int8);
            int bad = 0;
            for (size_t i = 0; i < got.size(); ++i) bad += got[i] != want[i];
            CHECK(bad == 0, "%dx%d -> %dx%d int8 %d: %d of %zu bytes differ from the scalar level", z[0], z[1], z[2],
                  z[3], int8, bad, got.size());
        }
    }
}

// ---- postprocess: argmax with numpy's tie rule (first maximum wins), nearest upscale ---------
template <typename T>
static uint8_t ref_argmax(const T* p, int C) {
    int best = 0;
    for (int c = 1; c < C; ++c)
        if (p[c] > p[best]) best = c;
    return static_cast<uint8_t>(best);
}

template <typename T>
static void argmax_case(int h, int w, int C, int range, int offset) {
    std::vector<T> logits(static_cast<size_t>(h) * w * C);
    for (auto& v : logits) v = static_cast<T>(static_cast<int>(lcg() % range) + offset);  // small range: many ties
    std::vector<uint8_t> out(static_cast<size_t>(h) * w, 255);
    py::array lg = view(logits, {h, w, C});
    py::array o = view(out, {h, w});
    argmax_resize(lg, o, Crop{0, 0, w, h}, 0);
    int bad = 0;
    for (int i = 0; i < h * w; ++i) bad += out[i] != ref_argmax(&logits[static_cast<size_t>(i) * C], C);
    CHECK(bad == 0, "%s %dx%dx%d: %d of %d pixels differ from the first-maximum argmax", dt<T>().name().c_str(), h, w,
          C, bad, h * w);
}

static void test_postprocess() {
    // Hand-written: pixel 0 ties classes 1 and 2 (class 1 wins), pixel 1 all equal (class 0).
    std::vector<float> logits = {0, 5, 5, 1, 2, 2, 2, 2, -1, -3, 7, 7, 9, 0, 9, 1, 0, 0, 0, 4, 3, 8, 8, 1};
    std::vector<uint8_t> out(4 * 6, 255);
    py::array lg = view(logits, {2, 3, 4});
    py::array o = view(out, {4, 6});
    argmax_resize(lg, o, Crop{0, 0, 3, 2}, 0);  // 2x3 -> 4x6 nearest
    const uint8_t A[2][3] = {{1, 0, 2}, {0, 3, 1}};
    for (int y = 0; y < 4; ++y)
        for (int x = 0; x < 6; ++x)
            CHECK(out[y * 6 + x] == A[y / 2][x / 2], "pixel (%d, %d) = %d, want %d", y, x, out[y * 6 + x], A[y / 2][x / 2]);
    // Widths that leave vector tails; uint8/int8/float32 with ties everywhere.
    for (int C : {2, 3, 6, 11, 19}) {
        argmax_case<uint8_t>(5, 37, C, 4, 250);
        argmax_case<int8_t>(3, 41, C, 5, -2);
        argmax_case<float>(4, 29, C, 3, 0);
    }
}

// ---- confusion matrix: counts against a reference loop, ignore_index skipped ----------------
static void confusion_case(int n, int C, int ignore) {
    std::vector<uint8_t> gt(n), pred(n);
    for (int i = 0; i < n; ++i) {
        gt[i] = static_cast<uint8_t>(lcg() % 13 == 0 ? ignore : lcg() % C);
        pred[i] = static_cast<uint8_t>(lcg() % C);
    }
    std::vector<int64_t> cm(static_cast<size_t>(C) * C, 0), want(static_cast<size_t>(C) * C, 0);
    for (int i = 0; i < n; ++i)
        if (gt[i] != ignore) ++want[gt[i] * C + pred[i]];
    py::array g = view(gt, {n}), p = view(pred, {n}), o = view(cm, {C, C});
    confusion_matrix(g, p, C, ignore, o);
    int bad = 0;
    for (size_t k = 0; k < cm.size(); ++k) bad += cm[k] != want[k];
    CHECK(bad == 0, "n %d C %d: %d of %d cells differ", n, C, bad, C * C);
}

static void test_confusion() {
    std::vector<uint8_t> gt = {0, 0, 1, 1, 2, 255}, pred = {0, 1, 1, 1, 0, 2};
    std::vector<int64_t> cm(9, 0);
    py::array g = view(gt, {2, 3}), p = view(pred, {2, 3}), o = view(cm, {3, 3});
    confusion_matrix(g, p, 3, 255, o);
    const int64_t want[9] = {1, 1, 0, 0, 2, 0, 1, 0, 0};
    for (int k = 0; k < 9; ++k) CHECK(cm[k] == want[k], "cell %d = %lld, want %lld", k, (long long)cm[k], (long long)want[k]);
    for (int n : {1, 15, 16, 17, 1000, 4099})
        for (int C : {2, 11, 15, 16, 40}) confusion_case(n, C, 255);
}

// ---- overlay: fixed-point blend, classes beyond the palette unchanged ------------------------
static void test_overlay() {
    std::vector<uint8_t> frame = {100, 100, 100, 10, 20, 30, 7, 8, 9, 255, 255, 255};
    std::vector<uint8_t> mask = {0, 1, 5, 1};
    std::vector<uint8_t> palette = {0, 0, 0, 255, 0, 64};
    std::vector<uint8_t> out(12, 0);
    py::array f = view(frame, {1, 4, 3}), m = view(mask, {1, 4}), pal = view(palette, {2, 3}), o = view(out, {1, 4, 3});
    overlay(f, m, pal, 0.5, o);
    // a = round(0.5 * 256) = 128: out = (f * 128 + colour * 128 + 128) >> 8
    const uint8_t want[12] = {50, 50, 50, 133, 10, 47, 7, 8, 9, 255, 128, 160};
    for (int k = 0; k < 12; ++k) CHECK(out[k] == want[k], "byte %d = %d, want %d", k, out[k], want[k]);
}

int main() {
    const std::vector<std::string> levels = simd::supported_levels();
    std::string names;
    for (const auto& l : levels) names += (names.empty() ? "" : ", ") + l;
    std::printf("SIMD levels: %s; kernel threads: %d\n", names.c_str(), num_threads());
    for (const auto& level : levels) {
        simd::set_level(level);
        level_now = level;
        for (int threads : {1, 2}) {
            set_num_threads(threads);
            test_preprocess();
            test_preprocess_fixed();
            test_postprocess();
            test_confusion();
            test_overlay();
        }
    }
    if (failures) {
        std::printf("%d known-answer check(s) failed\n", failures);
        return 1;
    }
    std::printf("all known-answer checks passed at every level (%s)\n", names.c_str());
    return 0;
}
