// run_filter.h — `meft runs list --filter EXPR`: conditions on a run's fields, joined by "and".
//
//   EXPR    := COND ( "and" COND )*
//   COND    := KEY OP VALUE          OP: = != < <= > >= ~ (contains)
//   KEY     := id | experiment | status | tags | notes | steps | created_at
//            | config.<dotted path> | metrics.<key of the final metrics> | env.<key>
//   VALUE   := a number, or text (optionally in single or double quotes)
//
// Numbers compare as numbers when both sides are numbers, else as text. A key a run lacks fails
// every condition except "!=". e.g.  metrics.accuracy >= 0.9 and config.method.name = lora
#pragma once
#include <string>
#include <vector>

#include "store/database.h"

namespace meft {

class RunFilter {
public:
    // Throws Error naming the condition and what was expected.
    explicit RunFilter(const std::string& expr);
    bool matches(const RunInfo& run) const;

private:
    struct Cond {
        std::string key, op, value;
    };
    std::vector<Cond> conds_;
};

}  // namespace meft
