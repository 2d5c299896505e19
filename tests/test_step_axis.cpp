// Where recorded steps lie on the step, epoch, wall-clock and tokens axes, including a run that
// was resumed (its second attempt's time and tokens restart at 0 in the database).
#include <gtest/gtest.h>

#include "core/error.h"
#include "store/step_axis.h"

using namespace meft;

namespace {

StepRow row(int step, double elapsed_s, double tokens_per_s) {
    StepRow r;
    r.step = step;
    r.elapsed_s = elapsed_s;
    r.tokens_per_s = tokens_per_s;
    return r;
}

TEST(StepAxis, NamesRoundTripAndUnknownNamesAreRefused) {
    for (StepAxis a : all_step_axes()) EXPECT_EQ(parse_step_axis(step_axis_name(a)), a);
    try {
        parse_step_axis("time");
        FAIL() << "accepted an unknown axis";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("expected one of step, epoch, wall-clock, tokens"), std::string::npos) << e.what();
    }
    EXPECT_EQ(step_axis_label(StepAxis::tokens), "tokens seen (padded)");
}

TEST(StepAxis, OneAttemptUsesTheRecordedTimeAndTokens) {
    StepClock clock(4);  // four steps per epoch
    clock.add(row(1, 0.5, 2048));  // 1,024 tokens in 0.5 s
    clock.add(row(2, 1.0, 2048));
    const StepPoint p = clock.add(row(3, 1.5, 2048));
    EXPECT_EQ(p.step, 3);
    EXPECT_DOUBLE_EQ(p.epoch, 0.75);
    EXPECT_DOUBLE_EQ(p.seconds, 1.5);
    EXPECT_DOUBLE_EQ(p.tokens, 3072);
    EXPECT_DOUBLE_EQ(p.on(StepAxis::step), 3);
    EXPECT_DOUBLE_EQ(clock.points()[0].on(StepAxis::tokens), 1024);
}

TEST(StepAxis, AResumedAttemptCarriesTheEarlierTimeAndTokens) {
    StepClock clock;  // epoch length unknown: epochs are steps
    clock.add(row(1, 1.0, 100));
    clock.add(row(2, 2.0, 100));  // attempt 1: 2 s, 200 tokens
    const StepPoint first = clock.add(row(3, 0.5, 100));  // attempt 2 restarts at 0
    EXPECT_DOUBLE_EQ(first.seconds, 2.5);
    EXPECT_DOUBLE_EQ(first.tokens, 250);
    EXPECT_DOUBLE_EQ(first.epoch, 3);
    const StepPoint second = clock.add(row(4, 1.0, 100));
    EXPECT_DOUBLE_EQ(second.seconds, 3.0);
    EXPECT_DOUBLE_EQ(second.tokens, 300);
    for (std::size_t i = 1; i < clock.points().size(); ++i) {  // both keep rising
        EXPECT_GT(clock.points()[i].seconds, clock.points()[i - 1].seconds);
        EXPECT_GT(clock.points()[i].tokens, clock.points()[i - 1].tokens);
    }
}

TEST(StepAxis, EvaluationsArePlacedAtTheirStep) {
    StepClock clock(10);
    EXPECT_DOUBLE_EQ(clock.at(0, StepAxis::seconds), 0);  // before any step: the start
    EXPECT_DOUBLE_EQ(clock.at(5, StepAxis::epoch), 0.5);
    clock.add(row(10, 4.0, 50));
    clock.add(row(20, 8.0, 50));
    EXPECT_DOUBLE_EQ(clock.at(20, StepAxis::seconds), 8.0);
    EXPECT_DOUBLE_EQ(clock.at(20, StepAxis::tokens), 400);
    EXPECT_DOUBLE_EQ(clock.at(15, StepAxis::seconds), 4.0);  // between rows: the last one before
    EXPECT_DOUBLE_EQ(clock.at(15, StepAxis::step), 15);
    EXPECT_DOUBLE_EQ(clock.at(15, StepAxis::epoch), 1.5);
}

}  // namespace
