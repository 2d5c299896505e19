#include "core/cpu_philox.h"

#include <algorithm>

namespace meft {

namespace {

constexpr int kLanes = 64;  // blocks per pass: the four counter words of each in its own array

// philox4x32 (philox.h) on up to kLanes counters at once, word arrays side by side so the
// 32 x 32 -> 64-bit products vectorise; the same rounds, constants and output order.
inline void draws(const PhiloxKey& key, std::uint32_t example, std::uint32_t first, int blocks, std::uint32_t* out) {
    constexpr std::uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
    constexpr std::uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
    for (int b0 = 0; b0 < blocks; b0 += kLanes) {
        const int n = std::min(kLanes, blocks - b0);
        std::uint32_t c0[kLanes], c1[kLanes], c2[kLanes], c3[kLanes];
        for (int i = 0; i < n; ++i) {
            c0[i] = first + static_cast<std::uint32_t>(b0 + i);
            c1[i] = example;
            c2[i] = key.site;
            c3[i] = key.step;
        }
        std::uint32_t k0 = key.k0, k1 = key.k1;
        for (int round = 0; round < 10; ++round) {
            for (int i = 0; i < n; ++i) {
                const std::uint64_t p0 = static_cast<std::uint64_t>(M0) * c0[i];
                const std::uint64_t p1 = static_cast<std::uint64_t>(M1) * c2[i];
                const std::uint32_t n0 = static_cast<std::uint32_t>(p1 >> 32) ^ c1[i] ^ k0;
                const std::uint32_t n2 = static_cast<std::uint32_t>(p0 >> 32) ^ c3[i] ^ k1;
                c0[i] = n0;
                c1[i] = static_cast<std::uint32_t>(p1);
                c2[i] = n2;
                c3[i] = static_cast<std::uint32_t>(p0);
            }
            k0 += W0;
            k1 += W1;
        }
        std::uint32_t* o = out + 4 * std::int64_t(b0);
        for (int i = 0; i < n; ++i) {
            o[4 * i] = c0[i];
            o[4 * i + 1] = c1[i];
            o[4 * i + 2] = c2[i];
            o[4 * i + 3] = c3[i];
        }
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"))) void draws_avx512(const PhiloxKey& key,
                                                                                std::uint32_t example,
                                                                                std::uint32_t first, int blocks,
                                                                                std::uint32_t* out) {
    draws(key, example, first, blocks, out);
}

void draws_generic(const PhiloxKey& key, std::uint32_t example, std::uint32_t first, int blocks, std::uint32_t* out) {
    draws(key, example, first, blocks, out);
}

}  // namespace

void philox_draws(const PhiloxKey& key, std::uint32_t example, std::uint32_t first_block, int blocks,
                  std::uint32_t* out) {
    static const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    if (avx512) draws_avx512(key, example, first_block, blocks, out);
    else draws_generic(key, example, first_block, blocks, out);
}

}  // namespace meft
