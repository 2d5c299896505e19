// host_memory.h — how much host memory a run can still take, and what a failed allocation asked
// for, so that running out of memory is reported as "what, how many bytes, how much is there",
// never as a bare std::bad_alloc.
#pragma once
#include <cstddef>
#include <string>

namespace meft {

struct HostMemory {
    std::size_t total = 0;      // physical memory (MemTotal)
    std::size_t available = 0;  // what new allocations can take: MemAvailable, or less under an
                                // address-space limit (ulimit -v) or a cgroup memory limit
    std::string limited_by;     // "" or which limit made `available` smaller, e.g. "ulimit -v 2.0 GiB"
};
HostMemory host_memory();

// Bytes the last failed ::operator new of this process asked for (0: none failed). The engine
// replaces the global operator new only to remember this number; allocation is malloc's.
std::size_t last_failed_allocation_bytes();

// "1.5 GiB", "12.0 MiB" (binary units, one decimal)
std::string size_text(std::size_t bytes);

// The message for a std::bad_alloc caught while `doing`: "out of host memory while loading the
// model: a request for 1.2 GiB failed; 0.8 GiB of 24.0 GiB is available (...)".
std::string out_of_memory_message(const std::string& doing);

}  // namespace meft
