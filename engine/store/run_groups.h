// run_groups.h — runs pooled into groups, and a group's curves as one mean line with a band.
//
// The compare view draws a group of runs (a configuration's seeds, or every run with the same
// value of a chosen config key) as the mean of their curves with ± one sample standard deviation
// (or min..max) around it. A band point exists only at steps that every run of the group
// recorded, so a group never changes size along its curve (a shorter run ends the band).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace meft {

struct RunGroup {
    std::vector<std::size_t> members;  // indices into the configs given, in their order
    std::string label;                 // "method.name=lora, task.name=sst2"
};

// Runs with equal values of every key in `keys` (flattened dotted keys, see flatten_config; a key a
// run lacks has the value "(unset)"), in the order their first run comes. No keys: one group.
std::vector<RunGroup> group_by_keys(const std::vector<nlohmann::json>& configs, const std::vector<std::string>& keys);

// Runs whose configs differ in training.seed alone (seed_groups), labelled with what tells the
// groups apart ("(all)" when nothing does).
std::vector<RunGroup> group_seeds(const std::vector<nlohmann::json>& configs);

// One point of one run's curve: its step, where that step lies on the plot's x axis, its value.
struct CurvePoint {
    int step = 0;
    double x = 0, y = 0;
};

struct BandPoint {
    int step = 0;
    double x = 0;     // the members' mean x at that step (equal for step and epoch axes)
    double mean = 0;  // of the members' values
    double sd = 0;    // sample standard deviation; 0 for a single member
    double min = 0, max = 0;
    int n = 0;        // members pooled: always all of them
};

// Each member's points in increasing step order; the band at every step all members have.
std::vector<BandPoint> curve_band(const std::vector<std::vector<CurvePoint>>& members);

}  // namespace meft
