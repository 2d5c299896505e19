#include "model/model.h"

#include <algorithm>

#include "core/error.h"
#include "core/philox.h"
#include "model/arch/arch.h"
#include "model/backbone.h"

namespace meft {

Model::Model(ModelConfig config, Backend& backend, DType dtype, std::shared_ptr<const ModelEdit> edit)
    : config_(std::move(config)), edit_(std::move(edit)), backend_(backend), params_(backend, dtype) {
    config_.validate("model config");
    acts_ = std::make_unique<Arena>("activations", backend.memory(), 64u << 20, &meter_);
    scratch_ = std::make_unique<Arena>("backward scratch", backend.memory(), 64u << 20, &meter_);
    tmp_ = std::make_unique<Arena>("layer temporaries", backend.memory(), 16u << 20, &meter_);
    recompute_ = std::make_unique<Arena>("recomputed layer", backend.memory(), 16u << 20, &meter_);
}

Model::~Model() = default;

std::string Model::prefix() const { return arch_spec(config_.arch).prefix(); }

const StackRunner* Model::stack_runner() const { return backbone_ ? backbone_->stacks().front()->runner() : nullptr; }

std::vector<double> Model::reconstruction_error() const {
    std::vector<double> out;
    for (const LayerStack* s : backbone_->stacks()) {
        if (!s->runner() || s->runner()->reconstruction_error().empty()) continue;
        const std::vector<double>& e = s->runner()->reconstruction_error();
        out.insert(out.end(), e.begin(), e.end());
    }
    return out;
}

ModelArenas Model::arenas() {
    return ModelArenas{backend_, params_, *acts_, *scratch_, *tmp_, *recompute_, meter_, transient_};
}

void Model::apply_method_trainability() {
    // The task's classifier (not BERT's pooler, a part of BertModel under the backbone's prefix)
    // trains with every method, as Hugging Face PEFT's modules_to_save has it.
    const std::string pre = prefix();
    params_.set_trainable([&](const Parameter& prm) {
        const bool classifier = is_head_parameter(prm.name) && prm.name.rfind(pre, 0) != 0;
        if (prm.added) return !prm.fixed;
        return !edit_ || edit_->backbone_trainable(prm.name, classifier);
    });
}

void Model::init_parameters(const std::vector<std::string>& names, std::uint64_t seed) {
    MEFT_CHECK(params_.materialized(), "init before materialize");
    for (const std::string& name : names) {
        int idx = -1;
        for (int i = 0; i < params_.size() && idx < 0; ++i)
            if (params_.at(i).name == name) idx = i;
        MEFT_CHECK(idx >= 0, "unknown parameter " + name);
        params_.initialize(idx, seed);
    }
}

void Model::init_weights(std::uint64_t seed) {
    if (!params_.materialized()) params_.materialize();
    for (int i = 0; i < params_.size(); ++i) params_.initialize(i, seed);
}

void Model::begin_forward() {
    MEFT_CHECK(params_.materialized(), "forward before the parameters were materialized");
    acts_->reset();
    scratch_->reset();
    tmp_->reset();
    recompute_->reset();
    meter_.reset_peak();
    meter_.reset_high();
    transient_.assign(static_cast<std::size_t>(config_.total_layers() + 2), 0);
}

PhiloxKey Model::key(const ForwardOptions& o, int layer, int position) const {
    return philox_key(o.seed, o.step, dropout_site(layer, position));
}

Tensor Model::upload_i32(const std::vector<std::int32_t>& v, Shape s, const char* name) {
    Tensor t = acts_->alloc(DType::I32, s, -1, name);
    backend_.upload(t, v.data());
    return t;
}

void Model::from_host(Tensor t, const std::vector<double>& v) {
    MEFT_CHECK(v.size() == static_cast<std::size_t>(t.numel()), "from_host: one value per element");
    if (t.dtype == DType::F64) {
        backend_.upload(t, v.data());
    } else {
        const std::vector<float> f(v.begin(), v.end());
        backend_.upload(t, f.data());
    }
}

std::vector<double> Model::to_host(Tensor t) {
    std::vector<double> out(static_cast<std::size_t>(t.numel()));
    if (t.dtype == DType::F64) {
        backend_.download(out.data(), t);
    } else {
        std::vector<float> f(out.size());
        backend_.download(f.data(), t);
        std::copy(f.begin(), f.end(), out.begin());
    }
    return out;
}

MemoryReport Model::memory_report() const {
    MemoryReport r;
    const int L = config_.total_layers();
    for (int l = -1; l <= L; ++l) {
        LayerMemory m;
        m.layer = l;
        m.label = config_.layer_label(l);
        m.transient = l + 1 < static_cast<int>(transient_.size()) ? transient_[static_cast<std::size_t>(l + 1)] : 0;
        r.layers.push_back(m);
    }
    for (const AllocationRecord& rec : acts_->records()) {
        r.held_total += rec.bytes;
        if (is_stored_stream(rec.name)) {
            r.stored_streams += rec.bytes;
            continue;
        }
        if (rec.name == "meft.remainder") r.remainders += rec.bytes;
        const int idx = std::clamp(rec.layer, -1, L) + 1;
        r.layers[static_cast<std::size_t>(idx)].held += rec.bytes;
    }
    r.activation_peak = meter_.high;  // the whole step's, not the last layer's reset_peak() span
    r.frozen_weights = params_.frozen_arena().bytes_in_use();
    r.trainable_weights = params_.trainable_arena().bytes_in_use();
    r.gradients = params_.grad_arena().bytes_in_use();
    r.optimizer_state = params_.optimizer_arena().bytes_in_use();
    const Arena* arenas[] = {&params_.frozen_arena(), &params_.trainable_arena(), &params_.grad_arena(),
                             &params_.optimizer_arena(), acts_.get(), scratch_.get(), tmp_.get(), recompute_.get()};
    for (const Arena* a : arenas) r.reserved += a->reserved_bytes();
    r.workspace = backend_.op_workspace_bytes();
    return r;
}

}  // namespace meft
