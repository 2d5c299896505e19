#include "store/step_memory.h"

#include <cstdio>
#include <map>

namespace meft {

StepMemory StepMemory::from_report(const MemoryReport& r, int step, int rows, int seq) {
    StepMemory m;
    std::int64_t layers = 0;
    for (const LayerMemory& l : r.layers) layers += static_cast<std::int64_t>(l.held);
    m.remainders = static_cast<std::int64_t>(r.remainders);
    m.held_layers = layers - m.remainders;  // the layers' held bytes include their remainders
    m.streams = static_cast<std::int64_t>(r.stored_streams);
    m.activation_peak = static_cast<std::int64_t>(r.activation_peak);
    m.transient = m.activation_peak - static_cast<std::int64_t>(r.held_total);
    m.parameter_gradients = static_cast<std::int64_t>(r.gradients);
    m.step = step;
    m.rows = rows;
    m.seq = seq;
    return m;
}

std::vector<StepMemoryRow> step_memory_rows(const std::string& kind, const StepMemory& m) {
    return {{kind, "held_layers", m.held_layers},         {kind, "remainders", m.remainders},
            {kind, "streams", m.streams},                 {kind, "transient", m.transient},
            {kind, "activation_peak", m.activation_peak}, {kind, "parameter_gradients", m.parameter_gradients},
            {kind, "step", m.step},                       {kind, "rows", m.rows},
            {kind, "seq", m.seq}};
}

std::optional<StepMemory> step_memory_of(const std::vector<StepMemoryRow>& rows, const std::string& kind) {
    std::map<std::string, std::int64_t> v;
    for (const StepMemoryRow& r : rows)
        if (r.kind == kind) v[r.part] = r.value;
    if (v.empty()) return std::nullopt;
    const auto get = [&](const char* k) { return v.count(k) ? v[k] : 0; };
    StepMemory m;
    m.held_layers = get("held_layers");
    m.remainders = get("remainders");
    m.streams = get("streams");
    m.transient = get("transient");
    m.activation_peak = get("activation_peak");
    m.parameter_gradients = get("parameter_gradients");
    m.step = static_cast<int>(get("step"));
    m.rows = static_cast<int>(get("rows"));
    m.seq = static_cast<int>(get("seq"));
    return m;
}

namespace {
std::string mib(std::int64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
    return buf;
}
std::string shape(const StepMemory& m) { return std::to_string(m.rows) + " x " + std::to_string(m.seq); }
}  // namespace

std::string explain_step_memory(const StepMemory& p, const StepMemory& m) {
    std::string s = "measured at step " + std::to_string(m.step) + " (the run's largest) on a " + shape(m) +
                    " batch: " + mib(m.activation_peak) + "; planned for a full-length " + shape(p) + " batch: " +
                    mib(p.activation_peak) + ".";
    if (m.rows == p.rows && m.seq == p.seq) {
        s += m.activation_peak == p.activation_peak ? " Same shape, same bytes: the plan is exact."
                                                    : " Same shape, " + mib(m.activation_peak - p.activation_peak) +
                                                          " apart: the backends differ in what they allocate.";
    } else {
        if (m.seq < p.seq)
            s += " Batches are padded to their longest example (dynamic padding): that batch's " + std::to_string(m.seq) +
                 " tokens against the plan's " + std::to_string(p.seq) + ".";
        if (m.rows < p.rows)
            s += " Its micro-batch had " + std::to_string(m.rows) + " rows against the plan's " + std::to_string(p.rows) +
                 " (gradient accumulation, or a short last batch).";
        if (m.seq <= p.seq && m.rows <= p.rows) s += " So the measured step is below the plan's worst case.";
    }
    return s;
}

}  // namespace meft
