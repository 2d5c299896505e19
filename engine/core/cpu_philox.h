// cpu_philox.h — Philox draws for many consecutive blocks at once, vectorised: the CPU backend's
// dropout masks (the same draws as philox_block, so every backend keeps the same elements).
#pragma once
#include <cstdint>

#include "core/philox.h"

namespace meft {

// out[4 i + lane] = philox_block(key, example, first_block + i)[lane] for i < blocks (block
// numbers wrap at 2^32, as philox_block's do). AVX-512 where the CPU has it.
void philox_draws(const PhiloxKey& key, std::uint32_t example, std::uint32_t first_block, int blocks,
                  std::uint32_t* out);

}  // namespace meft
