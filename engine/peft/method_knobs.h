// method_knobs.h — each method's knobs described as data (key, type, range, default, help), so a
// user interface can generate a form for any method and a tool can check a value before a run.
// The defaults are the parser's own (parse_method), so the description cannot drift from them;
// test_methods checks every range against the parser.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "peft/method.h"

namespace meft {

struct MethodKnob {
    enum class Type { Integer, Real, Boolean, Choice, Names };
    std::string key;                   // path under "method", e.g. "lora.r"
    Type type = Type::Real;
    double min = 0, max = 0;           // Integer, Real: the accepted closed range
    std::vector<std::string> choices;  // Choice: one of them; Names: a non-empty subset
    nlohmann::json default_value;      // for this method
    std::string label;                 // short, for a form: "rank r"
    std::string help;                  // a sentence or two, for a tooltip
};

// One line on what the method trains, for a picker.
std::string method_summary(MethodKind kind);
// The method's knobs, in the order a form should show them.
std::vector<MethodKnob> method_knobs(MethodKind kind);
// Throws Error listing the names when `name` is not a method.
MethodKind method_kind(const std::string& name);

}  // namespace meft
