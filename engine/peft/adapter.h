// adapter.h — the bottleneck adapter A(x) = W_up · Dropout(act(W_down · x + b_down)) + b_up
// (act: the backbone's activation, GELU or ReLU)
// (Houlsby et al. 2019; MEFT spec §3), used sequentially (x + A(x)), in parallel to a FFN, and as
// MEFT's reversible F or G.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "model/edits.h"
#include "model/params.h"
#include "peft/call.h"
#include "peft/method.h"

namespace meft {

struct AdapterWeights {
    int down_w = -1, down_b = -1, up_w = -1, up_b = -1;
    bool relu = false;  // the backbone's activation: GELU (BERT, RoBERTa) or ReLU (OPT)
    explicit operator bool() const { return down_w >= 0; }
};

// Declares `<prefix>.down.{weight,bias}` [r,C]/[r] and `<prefix>.up.{weight,bias}` [C,r]/[C].
AdapterWeights declare_adapter(ParameterStore& ps, const std::string& prefix, int C, const AdapterSettings& s,
                               bool relu = false);

// inp [N,C] (owned by the caller); pre [N,r] W_down x + b_down; act [N,r] act(pre) (dropout is
// regenerated in backward).
using AdapterActs = BranchActs;


// Allocates acts.pre and acts.act [N,r] in `saved` (kept for backward).
// out[N,C] = scale * A(inp), or out += scale * A(inp) when `accumulate`.
void adapter_forward(const PeftCall& c, const AdapterWeights& w, AdapterActs& a, Arena& saved, int layer,
                     const std::string& tag, Tensor out, double scale, bool accumulate);
// dinp[N,C] += (d(scale * A)/d(inp))^T dout; parameter gradients accumulate. dinp may be dout
// (dout is read in full before dinp is written).
void adapter_backward(const PeftCall& c, const AdapterWeights& w, const AdapterActs& a, Tensor dinp, Tensor dout,
                      double scale);

// An adapter as the branch edit at `site` (named site.module), its output multiplied by `scale`
// (parallel adapters: He et al.'s s; sequential ones: 1).
std::unique_ptr<BranchEdit> adapter_branch(const SiteSpec& site, ParameterStore& ps, const AdapterSettings& s,
                                           double scale);
// The adapter methods: an adapter at each of `sites` (Houlsby: after attention and after the FFN;
// Pfeiffer: after the FFN; parallel: beside the FFN, scaled by s.scaling).
std::unique_ptr<StackEdit> adapter_stack(const AdapterSettings& s, std::vector<Site> sites);

}  // namespace meft
