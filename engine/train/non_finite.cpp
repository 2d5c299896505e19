#include "train/non_finite.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <span>

#include "data/batching.h"

namespace meft {

namespace {
template <typename T> bool finite_host(const std::vector<unsigned char>& bytes) {
    const std::size_t n = bytes.size() / sizeof(T);
    for (std::size_t i = 0; i < n; ++i) {
        T v;
        std::memcpy(&v, bytes.data() + i * sizeof(T), sizeof(T));
        if (!std::isfinite(v)) return false;
    }
    return true;
}

std::string layer_label(int layer, const ModelConfig& c) {
    const bool whole = layer < 0 || layer >= c.total_layers();  // "the embeddings", "the head"
    return (whole ? "the " : "") + c.layer_label(layer);
}
}  // namespace

bool all_finite(Backend& backend, Tensor t) {
    if (!t || (t.dtype != DType::F32 && t.dtype != DType::F64)) return true;
    std::vector<unsigned char> host(t.bytes());
    backend.download(host.data(), t);
    return t.dtype == DType::F32 ? finite_host<float>(host) : finite_host<double>(host);
}

std::string locate_non_finite(Model& model, const std::vector<Example>& examples,
                              const std::vector<std::size_t>& indices, int micro_batches, int max_seq_length,
                              std::uint64_t seed, std::uint32_t step) {
    Backend& be = model.backend();
    for (const Parameter& p : model.params().all())
        if (!all_finite(be, p.value)) return "parameter '" + p.name + "' (its values)";

    const ForwardOptions o{true, seed, step};
    for (const auto& [b, e] : micro_batch_ranges(examples, indices, micro_batches)) {
        HostBatch batch = make_batch(examples, std::span<const std::size_t>(indices.data() + b, e - b),
                                     model.config().pad_token_id, max_seq_length);
        batch.example_offset = static_cast<int>(b);
        const Tensor logits = model.forward(batch, o);
        for (const AllocationRecord& rec : model.activations().records())
            if (!all_finite(be, rec.tensor))
                return "activation '" + rec.name + "' of " + layer_label(rec.layer, model.config()) + " (forward)";
        if (!all_finite(be, logits)) return "the logits (forward)";
    }
    for (const Parameter& p : model.params().all())
        if (p.trainable && !all_finite(be, p.grad)) return "the gradient of '" + p.name + "' (backward)";
    return "";
}

}  // namespace meft
