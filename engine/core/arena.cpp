#include "core/arena.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace meft {

namespace {
constexpr std::size_t kAlign = 64;
std::size_t round_up(std::size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
}  // namespace

MemorySource MemorySource::host() {
    MemorySource s;
    s.allocate = [](std::size_t n) -> void* {
        void* p = std::aligned_alloc(kAlign, round_up(n));
        if (!p) throw Error("out of host memory allocating " + std::to_string(n >> 20) + " MiB");
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
        chunks_.push_back(Chunk{source_.allocate(size), size, 0});
    }
    Chunk& c = chunks_[current_];
    void* p = static_cast<char*>(c.base) + c.used;
    c.used += need;
    in_use_ += bytes;
    if (in_use_ > peak_) peak_ = in_use_;
    if (meter_) meter_->add(bytes);
    const Tensor t{dtype, shape, p};
    if (recording_) records_.push_back(AllocationRecord{layer, name, bytes, t});
    return t;
}

Tensor Arena::zeros(DType dtype, Shape shape, int layer, const std::string& name) {
    Tensor t = alloc(dtype, shape, layer, name);
    source_.zero(t.data, t.bytes());
    return t;
}

void Arena::reset() {
    for (Chunk& c : chunks_) c.used = 0;
    current_ = 0;
    if (meter_) meter_->sub(in_use_);
    in_use_ = 0;
    records_.clear();
}

std::size_t Arena::reserved_bytes() const {
    std::size_t n = 0;
    for (const Chunk& c : chunks_) n += c.size;
    return n;
}

}  // namespace meft
