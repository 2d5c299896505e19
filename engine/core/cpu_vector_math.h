// cpu_vector_math.h — float32 loops over transcendental functions (erf, exp) that the CPU
// backend runs most often. They live in their own file, compiled with -ffast-math and one clone
// per instruction set (AVX-512, AVX2, baseline), so GCC turns each call into glibc's vector
// math library (libmvec, <= 4 ulp). float64 keeps the exact scalar libm path for gradient checks.
#pragma once
#include <cstdint>

namespace meft::vecmath {

// out[i] = 0.5 x (1 + erf(x / sqrt 2))
void gelu_forward(float* out, const float* x, std::int64_t n);
// dx[i] = g[i] * (Phi(x) + x phi(x))
void gelu_backward(float* dx, const float* g, const float* x, std::int64_t n);
// x[i] = exp(x[i] - shift); returns the sum of the results
float exp_shifted_sum(float* x, float shift, std::int64_t n);

}  // namespace meft::vecmath
