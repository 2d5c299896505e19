#include "core/arena.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "core/error.h"
#include "core/host_memory.h"

namespace meft {

namespace {
constexpr std::size_t kAlign = 64;
std::size_t round_up(std::size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
}  // namespace

MemorySource MemorySource::host() {
    MemorySource s;
    s.allocate = [](std::size_t n) -> void* {
        void* p = std::aligned_alloc(kAlign, round_up(n));
        if (!p) {
            const HostMemory m = host_memory();
            throw OutOfMemoryError("out of host memory: " + size_text(n) + " requested, " + size_text(m.available) +
                                   " of " + size_text(m.total) + " available" +
                                   (m.limited_by.empty() ? "" : " (" + m.limited_by + ")"));
        }
        return p;
    };
    s.release = [](void* p) { std::free(p); };
    s.zero = [](void* p, std::size_t n) { std::memset(p, 0, n); };
    return s;
}

Arena::Arena(std::string name, MemorySource source, std::size_t chunk_bytes, MemoryMeter* meter)
    : name_(std::move(name)), source_(std::move(source)), chunk_bytes_(chunk_bytes), meter_(meter) {}

Arena::~Arena() {
    for (Chunk& c : chunks_) source_.release(c.base);
}

Tensor Arena::alloc(DType dtype, Shape shape, int layer, const std::string& name) {
    const std::size_t bytes = static_cast<std::size_t>(shape.numel()) * dtype_size(dtype);
    const std::size_t need = round_up(bytes == 0 ? 1 : bytes);
    while (current_ < chunks_.size() && chunks_[current_].size - chunks_[current_].used < need) ++current_;
    if (current_ == chunks_.size()) {
        const std::size_t size = need > chunk_bytes_ ? need : chunk_bytes_;
        void* base = nullptr;
        try {
            base = source_.allocate(size);
        } catch (const Error& e) {
            // Say which tensor needed the memory, and what this arena already holds.
            throw OutOfMemoryError("the " + name_ + " arena cannot grow by " + size_text(size) + " for '" +
                                   (name.empty() ? std::string("a tensor") : name) + "' " + shape.str() + " (" +
                                   size_text(bytes) + (layer >= 0 ? ", layer tag " + std::to_string(layer) : "") +
                                   "; the arena holds " + size_text(reserved_bytes()) + "): " + e.what());
        }
        chunks_.push_back(Chunk{base, size, 0});
    }
    Chunk& c = chunks_[current_];
    void* p = static_cast<char*>(c.base) + c.used;
    c.used += need;
    in_use_ += bytes;
    if (in_use_ > peak_) peak_ = in_use_;
    if (meter_) {
        meter_->add(bytes);
        if (meter_->trace) {
            meter_->trace->push_back(MeterEvent{name_, layer, name, static_cast<std::int64_t>(bytes)});
            traced_[{layer, name}] += bytes;
        }
    }
    const Tensor t{dtype, shape, p};
    if (recording_) records_.push_back(AllocationRecord{layer, name, bytes, t});
    return t;
}

std::size_t Arena::rounded_size(DType dtype, const Shape& shape) {
    const std::size_t bytes = static_cast<std::size_t>(shape.numel()) * dtype_size(dtype);
    return round_up(bytes == 0 ? 1 : bytes);
}

void Arena::reserve_exactly(std::size_t bytes) {
    MEFT_CHECK(chunks_.empty(), "reserve_exactly on an arena that already holds memory");
    if (bytes == 0) return;
    try {
        chunks_.push_back(Chunk{source_.allocate(bytes), bytes, 0});
    } catch (const Error& e) {
        throw OutOfMemoryError("the " + name_ + " arena cannot take its " + size_text(bytes) + ": " + e.what());
    }
}

Tensor Arena::zeros(DType dtype, Shape shape, int layer, const std::string& name) {
    Tensor t = alloc(dtype, shape, layer, name);
    source_.zero(t.data, t.bytes());
    return t;
}

void Arena::reset() {
    for (Chunk& c : chunks_) c.used = 0;
    current_ = 0;
    if (meter_) {
        meter_->sub(in_use_);
        if (meter_->trace)
            for (const auto& [tag, bytes] : traced_)
                meter_->trace->push_back(MeterEvent{name_, tag.first, tag.second, -static_cast<std::int64_t>(bytes)});
    }
    traced_.clear();
    in_use_ = 0;
    records_.clear();
}

std::size_t Arena::reserved_bytes() const {
    std::size_t n = 0;
    for (const Chunk& c : chunks_) n += c.size;
    return n;
}

}  // namespace meft
