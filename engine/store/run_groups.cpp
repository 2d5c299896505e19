#include "store/run_groups.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "store/run_table.h"

namespace meft {

std::vector<RunGroup> group_by_keys(const std::vector<nlohmann::json>& configs, const std::vector<std::string>& keys) {
    std::vector<RunGroup> groups;
    std::map<std::vector<std::string>, std::size_t> index;
    for (std::size_t i = 0; i < configs.size(); ++i) {
        const auto flat = flatten_config(configs[i]);
        std::vector<std::string> values;
        for (const std::string& k : keys) {
            const auto it = flat.find(k);
            values.push_back(it == flat.end() ? "(unset)" : it->second);
        }
        const auto [it, added] = index.emplace(values, groups.size());
        if (added) {
            RunGroup g;
            for (std::size_t k = 0; k < keys.size(); ++k) g.label += (k ? ", " : "") + keys[k] + "=" + values[k];
            if (keys.empty()) g.label = "(all)";
            groups.push_back(std::move(g));
        }
        groups[it->second].members.push_back(i);
    }
    return groups;
}

std::vector<RunGroup> group_seeds(const std::vector<nlohmann::json>& configs) {
    std::vector<RunGroup> out;
    for (SeedGroup& g : seed_groups(configs)) out.push_back({std::move(g.members), g.label.empty() ? "(all)" : g.label});
    return out;
}

std::vector<BandPoint> curve_band(const std::vector<std::vector<CurvePoint>>& members) {
    std::vector<BandPoint> out;
    if (members.empty()) return out;
    std::vector<std::size_t> at(members.size(), 0);  // each member's cursor
    for (const CurvePoint& p : members.front()) {
        // The step must be in every member: advance each cursor to it.
        bool everywhere = true;
        for (std::size_t m = 1; m < members.size() && everywhere; ++m) {
            const auto& pts = members[m];
            while (at[m] < pts.size() && pts[at[m]].step < p.step) ++at[m];
            everywhere = at[m] < pts.size() && pts[at[m]].step == p.step;
        }
        if (!everywhere) continue;
        BandPoint b;
        b.step = p.step;
        b.n = int(members.size());
        b.min = b.max = p.y;
        for (std::size_t m = 0; m < members.size(); ++m) {
            const CurvePoint& q = m == 0 ? p : members[m][at[m]];
            b.x += q.x;
            b.mean += q.y;
            b.min = std::min(b.min, q.y);
            b.max = std::max(b.max, q.y);
        }
        b.x /= b.n;
        b.mean /= b.n;
        if (b.n > 1) {
            double ss = 0;
            for (std::size_t m = 0; m < members.size(); ++m) {
                const double y = m == 0 ? p.y : members[m][at[m]].y;
                ss += (y - b.mean) * (y - b.mean);
            }
            b.sd = std::sqrt(ss / (b.n - 1));
        }
        out.push_back(b);
    }
    return out;
}

}  // namespace meft
