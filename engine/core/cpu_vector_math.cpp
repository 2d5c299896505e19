// Compiled with -ffast-math (see engine/CMakeLists.txt): nothing else belongs in this file.
#include "core/cpu_vector_math.h"

#include <cmath>

namespace meft::vecmath {

// target_clones picks a clone in an ifunc resolver that the dynamic loader runs while it relocates
// the program, before ThreadSanitizer's runtime is up; instrumented, that resolver crashes. A
// ThreadSanitizer build (the tsan preset) keeps the default code only.
#if defined(__SANITIZE_THREAD__)
#define MEFT_CLONES
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MEFT_CLONES
#endif
#endif
#ifndef MEFT_CLONES
#define MEFT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif

MEFT_CLONES void gelu_forward(float* out, const float* x, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
}

MEFT_CLONES void gelu_backward(float* dx, const float* g, const float* x, std::int64_t n) {
    constexpr float inv_sqrt_2pi = 0.39894228040143268f;
    for (std::int64_t i = 0; i < n; ++i) {
        const float cdf = 0.5f * (1.0f + std::erf(x[i] * 0.70710678118654752f));
        dx[i] = g[i] * (cdf + x[i] * inv_sqrt_2pi * std::exp(-0.5f * x[i] * x[i]));
    }
}

MEFT_CLONES float exp_shifted_sum(float* x, float shift, std::int64_t n) {
    float sum = 0.0f;
    for (std::int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - shift);
        sum += x[i];
    }
    return sum;
}

}  // namespace meft::vecmath
