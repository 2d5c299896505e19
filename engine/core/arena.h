// arena.h — bump allocators that own the engine's memory, one per role.
//
// Roles (DESIGN.md): frozen weights, trainable weights, gradients, optimizer state, activations
// and scratch. Each allocation carries a (layer, name) tag so the memory report can show what a
// model keeps for backward, layer by layer. reset() forgets every allocation but keeps the chunks,
// so a training step re-uses the same memory without calling malloc.
#pragma once
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace meft {

// Where an arena's bytes come from: host memory for the CPU backend, device memory for CUDA.
struct MemorySource {
    std::function<void*(std::size_t)> allocate;
    std::function<void(void*)> release;
    std::function<void(void*, std::size_t)> zero;
    static MemorySource host();
};

struct AllocationRecord {
    int layer;             // -1 embeddings, 0..L-1 encoder layers, L head; see model code
    std::string name;      // what the tensor is, e.g. "attn.probs"
    std::size_t bytes;
    Tensor tensor;         // the allocation (valid until the arena is reset)
};

// One change of the bytes in use, while a meter traces (a step's memory timeline): an allocation
// (delta > 0) or, when an arena is reset, what it held under one (layer, name) (delta < 0).
struct MeterEvent {
    std::string arena;  // the arena's name: "activations", "backward scratch", "layer temporaries", "recomputed layer"
    int layer = -1;     // the allocation's layer tag
    std::string name;
    std::int64_t delta = 0;
};

// Bytes in use across a group of arenas and their joint peak (the activation memory of a step
// spans the saved-activation, gradient-scratch, temporary and recompute arenas). With `trace`
// set, the arenas append every allocation and every reset's frees to it.
//
// Two peaks: `peak` is the largest since the last reset_peak() (a layer's backward measures its
// transient with it), `high` the largest since the last reset_high() (the whole step: what its
// activation memory is). A layer's reset_peak() must not lose the step's earlier high.
struct MemoryMeter {
    std::size_t current = 0, peak = 0, high = 0;
    std::vector<MeterEvent>* trace = nullptr;
    void add(std::size_t n) {
        current += n;
        if (current > peak) peak = current;
        if (current > high) high = current;
    }
    void sub(std::size_t n) { current -= n; }
    void reset_peak() { peak = current; }
    void reset_high() { high = current; }
};

class Arena {
public:
    Arena(std::string name, MemorySource source = MemorySource::host(), std::size_t chunk_bytes = 64u << 20,
          MemoryMeter* meter = nullptr);
    ~Arena();
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;

    // Uninitialised memory, 64-byte aligned.
    Tensor alloc(DType dtype, Shape shape, int layer = -1, const std::string& name = {});
    // Same, filled with zeros.
    Tensor zeros(DType dtype, Shape shape, int layer = -1, const std::string& name = {});

    // Before the first allocation: take one chunk of exactly `bytes` (each later allocation
    // rounded up to 64 bytes), for an arena whose contents are known in advance (parameters).
    void reserve_exactly(std::size_t bytes);
    static std::size_t rounded_size(DType dtype, const Shape& shape);  // what alloc() takes of a chunk
    void reset();                                 // drop all allocations, keep the memory
    void set_recording(bool on) { recording_ = on; }
    const std::string& name() const { return name_; }
    std::size_t bytes_in_use() const { return in_use_; }
    std::size_t peak_bytes() const { return peak_; }
    void reset_peak() { peak_ = in_use_; }
    std::size_t reserved_bytes() const;
    const std::vector<AllocationRecord>& records() const { return records_; }

private:
    struct Chunk {
        void* base;
        std::size_t size;
        std::size_t used;
    };
    std::string name_;
    MemorySource source_;
    std::size_t chunk_bytes_;
    std::vector<Chunk> chunks_;
    std::size_t current_ = 0;
    std::size_t in_use_ = 0;
    std::size_t peak_ = 0;
    bool recording_ = true;
    std::vector<AllocationRecord> records_;
    std::map<std::pair<int, std::string>, std::size_t> traced_;  // bytes per (layer, name) since the last reset, while traced
    MemoryMeter* meter_ = nullptr;
};

}  // namespace meft
