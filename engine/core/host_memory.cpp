#include "core/host_memory.h"

#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>
#include <sstream>

namespace meft {

namespace {

std::atomic<std::size_t> g_last_failed{0};

// "MemAvailable:   123456 kB" -> bytes
std::size_t meminfo_bytes(const std::string& key) {
    std::ifstream in("/proc/meminfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(key + ":", 0) != 0) continue;
        std::istringstream s(line.substr(key.size() + 1));
        std::size_t kb = 0;
        s >> kb;
        return kb * 1024;
    }
    return 0;
}

// Virtual size of this process (for an address-space limit).
std::size_t virtual_size() {
    std::ifstream in("/proc/self/statm");
    std::size_t pages = 0;
    in >> pages;
    return pages * 4096;
}

// cgroup v2 memory.max minus memory.current (0, 0 when unlimited or unknown).
bool cgroup_room(std::size_t* limit, std::size_t* room) {
    std::ifstream max_in("/sys/fs/cgroup/memory.max"), cur_in("/sys/fs/cgroup/memory.current");
    std::string max_s;
    std::size_t cur = 0;
    if (!(max_in >> max_s) || max_s == "max" || !(cur_in >> cur)) return false;
    try {
        *limit = std::stoull(max_s);
    } catch (const std::exception&) {
        return false;
    }
    *room = *limit > cur ? *limit - cur : 0;
    return true;
}

}  // namespace

HostMemory host_memory() {
    HostMemory m;
    m.total = meminfo_bytes("MemTotal");
    m.available = meminfo_bytes("MemAvailable");
    rlimit rl{};
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        const std::size_t used = virtual_size();
        const std::size_t room = rl.rlim_cur > used ? rl.rlim_cur - used : 0;
        if (room < m.available) {
            m.available = room;
            m.limited_by = "ulimit -v " + size_text(rl.rlim_cur) + ", " + size_text(used) + " of it in use";
        }
    }
    std::size_t limit = 0, room = 0;
    if (cgroup_room(&limit, &room) && room < m.available) {
        m.available = room;
        m.limited_by = "cgroup memory.max " + size_text(limit);
    }
    return m;
}

std::size_t last_failed_allocation_bytes() { return g_last_failed.load(); }

std::string size_text(std::size_t bytes) {
    char buf[48];
    const double mib = double(bytes) / (1024.0 * 1024.0);
    if (mib >= 1024.0) std::snprintf(buf, sizeof buf, "%.1f GiB", mib / 1024.0);
    else std::snprintf(buf, sizeof buf, "%.1f MiB", mib);
    return buf;
}

std::string out_of_memory_message(const std::string& doing) {
    const HostMemory m = host_memory();
    const std::size_t asked = last_failed_allocation_bytes();
    std::string s = "out of host memory while " + doing + ": ";
    s += asked > 0 ? "a request for " + size_text(asked) + " failed" : "an allocation failed";
    s += "; " + size_text(m.available) + " of " + size_text(m.total) + " is available";
    if (!m.limited_by.empty()) s += " (" + m.limited_by + ")";
    s += ". Lower training.batch_size or training.max_seq_length, raise training.gradient_accumulation_steps, "
         "or pick a method that keeps fewer activations (meft plan --all-methods compares them)";
    return s;
}

}  // namespace meft

// The replaceable global allocation functions: malloc's memory, as the default ones, but a
// failure first records its size (last_failed_allocation_bytes). The nothrow forms are replaced
// as well: libstdc++'s call the throwing ones, but a sanitizer runtime brings its own, whose
// memory our operator delete would then free() (std::stable_sort's buffer is new(nothrow)). The
// deallocation functions are replaced too, so every pair is malloc/free (also under
// AddressSanitizer, which checks that new and delete match).
namespace {
[[noreturn]] void allocation_failed(std::size_t n) {
    meft::g_last_failed.store(n);
    throw std::bad_alloc();
}
void* allocate(std::size_t n) {
    for (;;) {
        if (void* p = std::malloc(n ? n : 1)) return p;
        std::new_handler h = std::get_new_handler();
        if (!h) allocation_failed(n);
        h();
    }
}
void* allocate_aligned(std::size_t n, std::align_val_t al) {
    const std::size_t a = static_cast<std::size_t>(al) < sizeof(void*) ? sizeof(void*) : static_cast<std::size_t>(al);
    const std::size_t rounded = (n ? n : 1) + (a - (n ? n : 1) % a) % a;  // aligned_alloc wants a multiple
    for (;;) {
        if (rounded >= n)
            if (void* p = std::aligned_alloc(a, rounded)) return p;
        std::new_handler h = std::get_new_handler();
        if (!h) allocation_failed(n);
        h();
    }
}
}  // namespace

void* operator new(std::size_t n) { return allocate(n); }
void* operator new[](std::size_t n) { return allocate(n); }
void* operator new(std::size_t n, std::align_val_t al) { return allocate_aligned(n, al); }
void* operator new[](std::size_t n, std::align_val_t al) { return allocate_aligned(n, al); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return allocate(n);
    } catch (const std::bad_alloc&) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void* operator new(std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
    try {
        return allocate_aligned(n, al);
    } catch (const std::bad_alloc&) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, std::align_val_t al, const std::nothrow_t& t) noexcept { return operator new(n, al, t); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
