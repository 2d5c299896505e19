// Philox4x32-10 against the known-answer vectors published with Random123 (Salmon et al. 2011),
// so our dropout streams are the standard generator, reproducible by any backend; and the CPU's
// vectorised draws against it.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/cpu_philox.h"
#include "core/philox.h"

using meft::philox4x32;

TEST(Philox, KnownAnswerZero) {
    const auto r = philox4x32({0, 0, 0, 0}, 0, 0);
    EXPECT_EQ(r[0], 0x6627e8d5u);
    EXPECT_EQ(r[1], 0xe169c58du);
    EXPECT_EQ(r[2], 0xbc57ac4cu);
    EXPECT_EQ(r[3], 0x9b00dbd8u);
}

TEST(Philox, KnownAnswerOnes) {
    const auto r = philox4x32({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, 0xffffffffu, 0xffffffffu);
    EXPECT_EQ(r[0], 0x408f276du);
    EXPECT_EQ(r[1], 0x41c83b0eu);
    EXPECT_EQ(r[2], 0xa20bc7c6u);
    EXPECT_EQ(r[3], 0x6d5451fdu);
}

TEST(Philox, KnownAnswerPi) {
    const auto r = philox4x32({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, 0xa4093822u, 0x299f31d0u);
    EXPECT_EQ(r[0], 0xd16cfe09u);
    EXPECT_EQ(r[1], 0x94fdccebu);
    EXPECT_EQ(r[2], 0x5001e420u);
    EXPECT_EQ(r[3], 0x24126ea1u);
}

// The CPU's vectorised draws (cpu_philox.h) are philox_block's, block for block and lane for
// lane: across the 64-block passes, at block numbers that wrap past 2^32, and for every count.
TEST(Philox, VectorisedDrawsEqualTheBlockFunction) {
    const meft::PhiloxKey keys[] = {{0, 0, 0, 0}, {0xdeadbeefu, 0x12345678u, 77, 0x10203u}, {~0u, ~0u, ~0u, ~0u}};
    for (const meft::PhiloxKey& key : keys)
        for (std::uint32_t first : {0u, 5u, 0xffffffc0u})
            for (int blocks : {0, 1, 3, 63, 64, 65, 200}) {
                std::vector<std::uint32_t> out(4 * blocks + 1, 0xabababab);
                meft::philox_draws(key, 12345u, first, blocks, out.data());
                for (int b = 0; b < blocks; ++b) {
                    const auto r = meft::philox_block(key, 12345u, first + std::uint32_t(b));
                    for (int lane = 0; lane < 4; ++lane)
                        ASSERT_EQ(out[4 * b + lane], r[lane]) << "first " << first << " block " << b << " lane " << lane;
                }
                EXPECT_EQ(out[4 * blocks], 0xababababu) << "wrote past the end, blocks=" << blocks;
            }
}
