// coupling.cu — MEFT's reversible coupling on the two streams, and stream conversions.
//
// I64 streams are fixed point (value * 2^kStreamFractionBits): forward x <- floor(x/m) + q with
// the remainder packed into `rem`, inverse x <- m*(x - q) + rem, so the inverse is exact. The
// arithmetic is core/stream_fixed.h, the CPU's own, so both backends produce the same bits; a
// value outside the exact range sets the out-of-range flag instead of wrapping.
#include "common.cuh"
#include "core/backend.h"
#include "ops.h"

namespace meft::cuda {
namespace {

template <typename T> __global__ void coupling_f64_kernel(double* x, const T* f, i64 n, double m, bool inverse) {
    MEFT_FOR(i, n) x[i] = inverse ? (x[i] - double(f[i])) * m : x[i] / m + double(f[i]);
}

// One thread per byte of packed remainders (per_byte elements), so no two threads write a byte.
// Without remainders (m = 1, or a layer that discards them) per_byte is 1 and rem is null.
template <typename T>
__global__ void coupling_i64_kernel(std::int64_t* x, std::uint8_t* rem, const T* f, i64 n, int m, bool inverse,
                                    int bits, int per_byte, int* out_of_range) {
    const std::uint8_t mask = static_cast<std::uint8_t>((1u << bits) - 1u);
    const i64 units = (n + per_byte - 1) / per_byte;
    MEFT_FOR(u, units) {
        std::uint8_t byte = rem ? rem[u] : 0;
        for (int k = 0; k < per_byte; ++k) {
            const i64 i = u * per_byte + k;
            if (i >= n) break;
            std::int64_t q;
            if (!stream_to_fixed(double(f[i]), &q)) {
                *out_of_range = 1;
                continue;
            }
            const int shift = k * bits;
            if (!inverse) {
                std::int64_t rr = 0;
                if (!stream_couple(&x[i], q, m, &rr)) {
                    *out_of_range = 1;
                    continue;
                }
                if (rem) byte = static_cast<std::uint8_t>((byte & ~(mask << shift)) | (rr << shift));
            } else {
                const std::int64_t rr = rem ? (byte >> shift) & mask : 0;
                x[i] = stream_uncouple(x[i], q, m, rr);
            }
        }
        if (rem && !inverse) rem[u] = byte;
    }
}

template <typename T> __global__ void stream_read_kernel(T* out, const double* xf, const std::int64_t* xi, i64 n) {
    const double s = ldexp(1.0, -kStreamFractionBits);
    MEFT_FOR(i, n) out[i] = xf ? T(xf[i]) : T(double(xi[i]) * s);
}

template <typename T>
__global__ void stream_write_kernel(double* xf, std::int64_t* xi, const T* v, i64 n, int* out_of_range) {
    MEFT_FOR(i, n) {
        if (xf) {
            xf[i] = double(v[i]);
        } else {
            std::int64_t q;
            if (stream_to_fixed(double(v[i]), &q)) xi[i] = q;
            else *out_of_range = 1;
        }
    }
}

}  // namespace

template <typename T> void coupling_f64(double* x, const T* f, i64 n, int m, bool inverse) {
    if (n == 0) return;
    MEFT_LAUNCH(coupling_f64_kernel, grid_for(n), kThreads, x, f, n, double(m), inverse);
    MEFT_LAUNCHED("coupling");
}

template <typename T>
void coupling_i64(std::int64_t* x, std::uint8_t* rem, const T* f, i64 n, int m, bool inverse, int* out_of_range) {
    if (n == 0) return;
    const bool packed = m > 1 && rem;
    const int bits = packed ? remainder_bits(m) : 8, per_byte = packed ? 8 / bits : 1;
    const i64 units = (n + per_byte - 1) / per_byte;
    MEFT_LAUNCH(coupling_i64_kernel, grid_for(units), kThreads, x, packed ? rem : nullptr, f, n, m, inverse, bits, per_byte,
                                                      out_of_range);
    MEFT_LAUNCHED("coupling");
}

template <typename T> void stream_read(T* out, const double* x_f64, const std::int64_t* x_i64, i64 n) {
    if (n == 0) return;
    MEFT_LAUNCH(stream_read_kernel, grid_for(n), kThreads, out, x_f64, x_i64, n);
    MEFT_LAUNCHED("stream_read");
}

template <typename T> void stream_write(double* x_f64, std::int64_t* x_i64, const T* v, i64 n, int* out_of_range) {
    if (n == 0) return;
    MEFT_LAUNCH(stream_write_kernel, grid_for(n), kThreads, x_f64, x_i64, v, n, out_of_range);
    MEFT_LAUNCHED("stream_write");
}

#define MEFT_INSTANTIATE(T)                                                                        \
    template void coupling_f64<T>(double*, const T*, i64, int, bool);                              \
    template void coupling_i64<T>(std::int64_t*, std::uint8_t*, const T*, i64, int, bool, int*);   \
    template void stream_read<T>(T*, const double*, const std::int64_t*, i64);                     \
    template void stream_write<T>(double*, std::int64_t*, const T*, i64, int*);
MEFT_INSTANTIATE(float)
MEFT_INSTANTIATE(double)

}  // namespace meft::cuda
