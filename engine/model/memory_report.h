// memory_report.h — what a training step holds, layer by layer, as the engine allocated it.
//
// "held": bytes a layer keeps from its forward until its backward (saved activations, MEFT
// remainders). "transient": the extra bytes in use while that layer's backward runs (gradient
// buffers, recomputed tapes, temporaries) above what was in use when it started. Activation
// memory = the step's peak over all activation arenas (= peak - resident, as the MEFT paper
// measures); resident = weights + gradients + optimizer state.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace meft {

// MEFT's stored output of a reversible segment (the two streams and their merge): saved
// activations that belong to no one layer (MemoryReport::stored_streams).
inline bool is_stored_stream(const std::string& allocation_name) {
    return allocation_name.rfind("meft.stream", 0) == 0 || allocation_name == "meft.segment_output" ||
           allocation_name == "meft.merged";
}

struct LayerMemory {
    int layer = 0;            // -1 embeddings, 0..L-1 encoder layers, L head
    std::string label;        // "embeddings", "layer 3", "head"
    std::size_t held = 0;
    std::size_t transient = 0;
};

struct MemoryReport {
    std::vector<LayerMemory> layers;
    std::size_t stored_streams = 0;        // MEFT: the reversible segment's stored output (two streams, merge)
    std::size_t remainders = 0;            // MEFT exact streams: packed division remainders (also in `held`)
    std::size_t held_total = 0;            // all saved activations after forward
    std::size_t activation_peak = 0;       // peak of saved + scratch + temporaries + recomputed tapes
    std::size_t frozen_weights = 0, trainable_weights = 0, gradients = 0, optimizer_state = 0;
    // What the model takes from its backend beyond the bytes above: every arena's whole chunks
    // (weights, gradients, optimizer state and the activation arenas; reserved >= bytes in use)
    // and the backend's own op workspaces (Backend::op_workspace_bytes: attention, reductions).
    std::size_t reserved = 0;
    std::size_t workspace = 0;
    std::size_t resident() const { return frozen_weights + trainable_weights + gradients + optimizer_state; }
    std::size_t peak() const { return resident() + activation_peak; }
    // Everything the run holds on its device or in host memory: what "fits" is checked against.
    std::size_t footprint() const { return reserved + workspace; }
};

}  // namespace meft
