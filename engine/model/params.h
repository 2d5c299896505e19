// params.h — a model's named parameters and the arenas that hold them.
//
// A model first declares its parameters (name, shape); the caller may then freeze some; finally
// materialize() allocates values in the frozen or the trainable arena, and gradients and AdamW
// state (m, v) only for trainable ones. Names are the Hugging Face tensor names, so they are
// also the checkpoint keys.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/backend.h"

namespace meft {

// How a parameter is drawn when it is not loaded from a checkpoint.
struct Init {
    enum Kind { Zeros, Ones, Normal, Uniform, RowNorms, Constant } kind = Zeros;
    double scale = 0;      // Normal: standard deviation; Uniform: bound b of U(-b, b); Constant: the value
    int zero_row = -1;     // Normal: a row left at zero (nn.Embedding's padding_idx)
    int source = -1;       // RowNorms: the parameter [R, C] whose row norms ||w[r,:]|| it takes
    static Init zeros() { return {Zeros, 0, -1}; }
    static Init ones() { return {Ones, 0, -1}; }
    static Init normal(double std, int zero_row = -1) { return {Normal, std, zero_row}; }
    static Init uniform(double bound) { return {Uniform, bound, -1}; }
    static Init constant(double value) { return {Constant, value, -1}; }
    // DoRA's magnitude: the row norms of a parameter declared (and so initialised or loaded) before it.
    static Init row_norms(int source) { return {RowNorms, 0, -1, source}; }
    // How a notice says it: "zeros", "ones", "N(0, 0.02)", "U(-0.1, 0.1)", "row norms".
    std::string describe() const;
};

struct Parameter {
    std::string name;
    Shape shape;
    Init init;
    bool added = false;       // added by a fine-tuning method: never in a backbone checkpoint
    bool fixed = false;       // added but never trained (LoRA-FA's A: frozen at its random draw)
    bool trainable = true;
    bool decay = true;        // AdamW weight decay applies (not to biases and LayerNorm)
    Tensor value, grad, m, v;  // grad, m, v empty when frozen
};

class ParameterStore {
public:
    ParameterStore(Backend& backend, DType dtype);

    // Returns the index. `fixed` (only with `added`): the method keeps it at its initial value.
    int declare(const std::string& name, Shape shape, Init init = {}, bool added = false, bool fixed = false);
    void set_trainable(const std::function<bool(const Parameter&)>& pred);
    void materialize();                                   // allocate; values are zero
    // Draws the parameter from its Init with a deterministic stream keyed by (seed, index).
    void initialize(int index, std::uint64_t seed);
    bool materialized() const { return materialized_; }

    Parameter& at(int i) { return params_[static_cast<std::size_t>(i)]; }
    const Parameter& at(int i) const { return params_[static_cast<std::size_t>(i)]; }
    Parameter* find(const std::string& name);
    int index_of(const std::string& name) const;  // -1 when not declared
    // A value tensor's elements as doubles (from F32 or F64), through the backend.
    std::vector<double> download_values(Tensor t) const;
    int size() const { return static_cast<int>(params_.size()); }
    std::vector<Parameter>& all() { return params_; }
    const std::vector<Parameter>& all() const { return params_; }

    Tensor value(int i) const { return at(i).value; }
    Tensor grad(int i) const { return at(i).grad; }   // empty when frozen

    void zero_grads();
    std::int64_t count(bool trainable_only) const;
    DType dtype() const { return dtype_; }
    Backend& backend() { return backend_; }

    Arena& frozen_arena() { return *frozen_; }
    Arena& trainable_arena() { return *trainable_; }
    Arena& grad_arena() { return *grads_; }
    Arena& optimizer_arena() { return *optim_; }
    const Arena& frozen_arena() const { return *frozen_; }
    const Arena& trainable_arena() const { return *trainable_; }
    const Arena& grad_arena() const { return *grads_; }
    const Arena& optimizer_arena() const { return *optim_; }

private:
    Backend& backend_;
    DType dtype_;
    std::vector<Parameter> params_;
    std::map<std::string, int> index_;
    bool materialized_ = false;
    std::unique_ptr<Arena> frozen_, trainable_, grads_, optim_;
};

}  // namespace meft
