// The trade-off front over score (higher is better), activation memory and step time (lower is
// better), and a run's median step time from its recorded elapsed times.
#include <gtest/gtest.h>

#include <cmath>

#include "store/pareto.h"

using namespace meft;

namespace {

TEST(Pareto, FrontOverThreeObjectives) {
    const std::vector<bool> higher = {true, false, false};  // score, memory, step time
    const std::vector<std::vector<double>> runs = {
        {0.90, 100, 10},  // full fine-tuning: best score
        {0.88, 20, 12},   // MEFT: least memory
        {0.85, 60, 5},    // LoRA: fastest
        {0.84, 70, 11},   // dominated by LoRA (worse on all three)
        {0.88, 20, 12},   // the same as MEFT: both stay
        {NAN, 10, 1},     // no score: never on the front, dominates nothing
    };
    EXPECT_EQ(pareto_front(runs, higher), (std::vector<bool>{true, true, true, false, true, false}));
    EXPECT_EQ(pareto_front({}, higher), std::vector<bool>{});
    // Two objectives: LoRA's speed no longer counts, so it is dominated by MEFT.
    EXPECT_EQ(pareto_front({{0.90, 100}, {0.88, 20}, {0.85, 60}}, {true, false}), (std::vector<bool>{true, true, false}));
}

StepRow at(int step, double elapsed) {
    StepRow r;
    r.step = step;
    r.elapsed_s = elapsed;
    return r;
}

TEST(Pareto, MedianStepTimeSkipsEvaluationsAndRestarts) {
    // 0.1 s steps; step 4 ran an evaluation (+2 s); the run resumed at step 6 (elapsed from 0).
    const std::vector<StepRow> steps = {at(1, 0.1), at(2, 0.2), at(3, 0.3), at(4, 2.4), at(5, 2.5),
                                        at(6, 0.1), at(7, 0.2), at(9, 0.4)};
    const auto s = median_step_seconds(steps);
    ASSERT_TRUE(s);
    EXPECT_NEAR(*s, 0.1, 1e-12);  // differences 0.1, 0.1, 2.1, 0.1, 0.1: the median is a plain step
    EXPECT_FALSE(median_step_seconds({at(1, 0.5)}));
    EXPECT_FALSE(median_step_seconds({}));
    const auto even = median_step_seconds({at(1, 1), at(2, 2), at(3, 5)});  // differences 1 and 3
    ASSERT_TRUE(even);
    EXPECT_DOUBLE_EQ(*even, 2.0);
}

}  // namespace
