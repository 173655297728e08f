// Which vector ISA this translation unit targets, and its intrinsics: MTKSEG_X86 (SSE4.1/AVX2
// through target attributes, chosen at run time) or MTKSEG_NEON (always there on aarch64).
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#define MTKSEG_X86 1
#include <immintrin.h>
#elif defined(__aarch64__)
#define MTKSEG_NEON 1
#include <arm_neon.h>
#endif
