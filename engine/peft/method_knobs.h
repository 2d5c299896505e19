// method_knobs.h — each method's knobs described as data (key, type, range, default, help), so a
// user interface can generate a form for any method and a tool can check a value before a run.
// One table (method_knobs.cpp) drives these descriptions, the parser (parse_method) and the
// experiment schema's method section (method_schema), so they cannot drift apart.
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
// The JSON Schema of an experiment file's "method" object (docs/experiment.schema.json), sweeps
// (a list of values for one knob) included.
nlohmann::ordered_json method_schema();

}  // namespace meft
