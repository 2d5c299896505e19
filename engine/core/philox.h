// philox.h — Philox4x32-10, the counter-based generator (Salmon et al., SC'11).
//
// A random number is a pure function of (key, counter), so dropout masks are never stored:
// backward and reversible recomputation regenerate them bit for bit from the same key. The
// engine keys every dropout site by (seed, step, layer, site) and counts by (example, element),
// so a mask does not depend on how a batch is split into micro-batches.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace meft {

struct PhiloxKey {
    std::uint32_t k0 = 0, k1 = 0;  // from the run's seed
    std::uint32_t step = 0;        // optimizer step (or a caller-chosen stream id)
    std::uint32_t site = 0;        // which dropout site: (layer, position in the layer)
};

// Four 32-bit words: a Philox counter or its output. A plain aggregate (not std::array) so the
// same code compiles for CUDA devices.
struct PhiloxWords {
    std::uint32_t w[4];
    MEFT_HD std::uint32_t operator[](int i) const { return w[i]; }
};

MEFT_HD inline PhiloxWords philox4x32(PhiloxWords ctr, std::uint32_t k0, std::uint32_t k1) {
    constexpr std::uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
    constexpr std::uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
    for (int round = 0; round < 10; ++round) {
        const std::uint64_t p0 = static_cast<std::uint64_t>(M0) * ctr.w[0];
        const std::uint64_t p1 = static_cast<std::uint64_t>(M1) * ctr.w[2];
        ctr = {static_cast<std::uint32_t>(p1 >> 32) ^ ctr.w[1] ^ k0, static_cast<std::uint32_t>(p1),
               static_cast<std::uint32_t>(p0 >> 32) ^ ctr.w[3] ^ k1, static_cast<std::uint32_t>(p0)};
        k0 += W0;
        k1 += W1;
    }
    return ctr;
}

// Four uniform 32-bit words for block `block` (4 consecutive elements) of example `example`.
MEFT_HD inline PhiloxWords philox_block(const PhiloxKey& key, std::uint32_t example, std::uint32_t block) {
    return philox4x32({block, example, key.site, key.step}, key.k0, key.k1);
}

// Dropout keeps an element iff its 32-bit draw is at least `threshold` = floor(p * 2^32)
// (drop_threshold); every backend applies this exact rule to the same draws.
inline std::uint64_t drop_threshold(double p) { return static_cast<std::uint64_t>(std::ldexp(p, 32)); }
MEFT_HD inline bool dropout_keeps(std::uint32_t draw, std::uint64_t threshold) { return draw >= threshold; }

inline PhiloxKey philox_key(std::uint64_t seed, std::uint32_t step, std::uint32_t site) {
    return PhiloxKey{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32), step, site};
}

// Site ids: layer in the high bits, the dropout's position inside the layer in the low byte.
inline std::uint32_t dropout_site(int layer, int position) {
    return (static_cast<std::uint32_t>(layer + 1) << 8) | static_cast<std::uint32_t>(position);
}

// The site of masked-LM pre-training's token masks (data/text_corpus.h), above every layer's
// dropout sites. Training masks use the optimizer step as the key's step (new masks every step,
// as Hugging Face's collator draws them per batch); the evaluation split's use kEvalMaskStep, once.
inline constexpr std::uint32_t kMaskingSite = 0xFFFFFF00u;
inline constexpr std::uint32_t kEvalMaskStep = 0xFFFFFFFFu;

}  // namespace meft
