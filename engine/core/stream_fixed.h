// stream_fixed.h — the arithmetic of MEFT's exact streams, one definition for the CPU backend and
// the CUDA kernels (MEFT_HD), so both produce the same bits and refuse the same values.
//
// A stream element is an int64 X holding value · 2^kStreamFractionBits (40 fraction bits): the
// exact range is |value| < kStreamLimit = 2^23 = 8,388,608 (2^63 / 2^40), the resolution 2^-40.
// Activations of a healthy model stay many orders of magnitude below the limit; a run that
// reaches it has diverged, and the step fails with a StreamRangeError instead of wrapping around.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace meft {

constexpr int kStreamFractionBits = 40;
constexpr double kStreamLimit = 8388608.0;  // 2^(63 - kStreamFractionBits)

// q = round(v · 2^40); false (q untouched) when |v| >= 2^23 or v is NaN.
MEFT_HD inline bool stream_to_fixed(double v, std::int64_t* q) {
    if (!(fabs(v) < kStreamLimit)) return false;
    *q = llround(ldexp(v, kStreamFractionBits));
    return true;
}

// The coupling's forward on one element: x <- floor(x / m) + q, *rem = x - m·floor(x / m) in
// [0, m). False (x untouched) when the sum leaves the int64 range.
MEFT_HD inline bool stream_couple(std::int64_t* x, std::int64_t q, int m, std::int64_t* rem) {
    std::int64_t d = *x / m, r = *x % m;
    if (r < 0) r += m, d -= 1;  // floor division
    if ((q > 0 && d > INT64_MAX - q) || (q < 0 && d < INT64_MIN - q)) return false;
    *x = d + q;
    *rem = r;
    return true;
}

// Its inverse: x <- m·(x − q) + rem, the forward's input bit for bit.
MEFT_HD inline std::int64_t stream_uncouple(std::int64_t x, std::int64_t q, int m, std::int64_t rem) {
    return (x - q) * m + rem;
}

// The value a stream element stands for (a double: exact for |value| < 2^13, else rounded).
MEFT_HD inline double stream_value(std::int64_t x) { return ldexp(double(x), -kStreamFractionBits); }

}  // namespace meft
