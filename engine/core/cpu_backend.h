// cpu_backend.h — the reference backend: every op, in float32 and float64, on the host.
// GEMMs go to OpenBLAS (sgemm/dgemm); row-wise and element-wise loops run on a ThreadPool.
#pragma once
#include <memory>
#include <vector>

#include "core/backend.h"
#include "core/thread_pool.h"

namespace meft {

std::unique_ptr<Backend> make_cpu_backend(ThreadPool& pool = default_thread_pool());

}  // namespace meft
