#include "store/run_filter.h"

#include <cctype>
#include <charconv>
#include <optional>

#include "core/error.h"

namespace meft {

namespace {

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t");
    const auto e = s.find_last_not_of(" \t");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::optional<double> number(const std::string& s) {
    double v = 0;
    const char* end = s.data() + s.size();
    const auto r = std::from_chars(s.data(), end, v);
    if (s.empty() || r.ec != std::errc() || r.ptr != end) return std::nullopt;
    return v;
}

// The run's value at `key` as text ("" with found=false when absent).
std::optional<std::string> lookup(const RunInfo& r, const std::string& key) {
    if (key == "id") return std::to_string(r.id);
    if (key == "experiment") return r.experiment;
    if (key == "status") return r.status;
    if (key == "tags") return r.tags;
    if (key == "notes") return r.notes;
    if (key == "steps") return std::to_string(r.steps);
    if (key == "created_at") return r.created_at;
    const auto dot = key.find('.');
    const std::string head = key.substr(0, dot);
    const nlohmann::json* j = head == "config" ? &r.config : head == "metrics" ? &r.final_metrics
                              : head == "env"  ? &r.environment : nullptr;
    if (!j || dot == std::string::npos) return std::nullopt;
    std::size_t start = dot + 1;
    while (true) {
        const auto next = key.find('.', start);
        const std::string part = key.substr(start, next == std::string::npos ? std::string::npos : next - start);
        if (!j->is_object() || !j->contains(part)) return std::nullopt;
        j = &(*j)[part];
        if (next == std::string::npos) break;
        start = next + 1;
    }
    if (j->is_null()) return std::nullopt;
    return j->is_string() ? j->get<std::string>() : j->dump();
}

}  // namespace

RunFilter::RunFilter(const std::string& expr) {
    // Split on the word "and" (case-insensitive, surrounded by spaces).
    std::vector<std::string> parts;
    std::string lower = expr;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::size_t start = 0;
    for (std::size_t p = lower.find(" and "); p != std::string::npos; p = lower.find(" and ", start)) {
        parts.push_back(expr.substr(start, p - start));
        start = p + 5;
    }
    parts.push_back(expr.substr(start));
    static const char* kOps[] = {"!=", "<=", ">=", "=", "<", ">", "~"};
    for (const std::string& raw : parts) {
        const std::string c = trim(raw);
        std::size_t at = std::string::npos;
        std::string op;
        for (const char* o : kOps) {
            const auto p = c.find(o);
            if (p != std::string::npos && (at == std::string::npos || p < at || (p == at && std::string(o).size() > op.size()))) {
                at = p;
                op = o;
            }
        }
        Cond k{trim(at == std::string::npos ? c : c.substr(0, at)), op, at == std::string::npos ? "" : trim(c.substr(at + op.size()))};
        if (op.empty() || k.key.empty() || k.value.empty())
            throw Error("--filter: condition '" + c + "' must read KEY OP VALUE with OP one of = != < <= > >= ~ "
                        "(e.g. metrics.accuracy >= 0.9)");
        if (k.value.size() >= 2 && (k.value.front() == '\'' || k.value.front() == '"') && k.value.back() == k.value.front())
            k.value = k.value.substr(1, k.value.size() - 2);
        const std::string head = k.key.substr(0, k.key.find('.'));
        static const char* kPlain[] = {"id", "experiment", "status", "tags", "notes", "steps", "created_at"};
        bool known = (head == "config" || head == "metrics" || head == "env") && k.key.size() > head.size() + 1;
        for (const char* p : kPlain) known = known || k.key == p;
        if (!known)
            throw Error("--filter: unknown key '" + k.key + "' (expected id, experiment, status, tags, notes, steps, "
                        "created_at, config.<path>, metrics.<name> or env.<name>)");
        conds_.push_back(std::move(k));
    }
}

bool RunFilter::matches(const RunInfo& r) const {
    for (const Cond& c : conds_) {
        const std::optional<std::string> have = lookup(r, c.key);
        if (!have) {
            if (c.op != "!=") return false;
            continue;
        }
        if (c.op == "~") {
            if (have->find(c.value) == std::string::npos) return false;
            continue;
        }
        const auto a = number(*have), b = number(c.value);
        int cmp;
        if (a && b) cmp = *a < *b ? -1 : *a > *b ? 1 : 0;
        else cmp = have->compare(c.value) < 0 ? -1 : have->compare(c.value) > 0 ? 1 : 0;
        const bool ok = c.op == "=" ? cmp == 0 : c.op == "!=" ? cmp != 0 : c.op == "<" ? cmp < 0
                        : c.op == "<=" ? cmp <= 0 : c.op == ">" ? cmp > 0 : cmp >= 0;
        if (!ok) return false;
    }
    return true;
}

}  // namespace meft
