// Runtime-dispatched SIMD kernels (simd.cpp).  No global -march: x86-64 paths are compiled
// with target attributes and chosen by __builtin_cpu_supports; aarch64 always has NEON.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mtkseg {
namespace simd {

// AVX512 means AVX-512 F, BW, VL, VBMI and VNNI (Ice Lake, Zen 4 and later); kernels without an
// AVX-512 version run their AVX2 one at that level.
enum Level { Scalar = 0, SSE41 = 1, AVX2 = 2, AVX512 = 3, NEON = 4 };

const char* level_name(int level);
// Levels this CPU can run, scalar first.
std::vector<std::string> supported_levels();
// The level kernels use: the best supported one, or MTKSEG_SIMD (scalar|sse4.1|avx2|avx512|neon)
// read on first use and capped to what the CPU supports.
int level();
// Test-only: force a level by name ("auto" = best); throws ArgumentError if unsupported.
// Returns the previous level's name.
std::string set_level(const std::string& name);

// Argmax over C classes (channels contiguous) of n pixels at pixel stride `sx` elements,
// numpy's rules: first maximum wins; for float32 the first NaN wins (p may be unaligned).  `avail` is how many
// elements may be read from `p` (to the end of the array), so full-vector loads never pass it;
// pixels too close to the end take the scalar loop.
void argmax_u8(const uint8_t* p, int64_t sx, int n, int C, int64_t avail, uint8_t* out);
void argmax_i8(const int8_t* p, int64_t sx, int n, int C, int64_t avail, uint8_t* out);
void argmax_f32(const void* p, int64_t sx, int n, int C, int64_t avail, uint8_t* out);

// Confusion codes for uint8 labels with C <= 15 classes: code = gt * C + pred, `skip` where
// gt == ignore (ignore outside 0..255: never), `bad` where a label is out of range.
void confusion_codes(const uint8_t* gt, const uint8_t* pred, int n, int C, int ignore, uint8_t skip, uint8_t bad,
                     uint8_t* out);

}  // namespace simd
}  // namespace mtkseg
