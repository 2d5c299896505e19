// shape_backend.h — a backend that computes nothing and allocates nothing: arenas hand out
// addresses that are never touched, and every op returns at once. Running a training step on
// it walks exactly the allocation sequence of the real step, so `meft plan` reports the same
// bytes the CPU backend measures, for any model size, in milliseconds. Its ops' arguments are
// checked as every backend's are (Backend's entry points, backend.cpp), so a plan refuses a
// malformed call with the error a run would give.
//
// Backends also hold their ops' own temporaries (Backend::op_workspace_bytes); the shape backend
// plans those by the rule of the backend it stands for: the CPU backend's per-thread attention
// workspaces (threads x 2 x Tq x Tk), or the CUDA backend's whole-MiB scratch buffers (attention:
// B x heads x Tq x Tk for the dropped probabilities and again for their gradient; reduction
// partials; pointer arrays; embedding indices; BF16 operand copies).
#pragma once
#include <memory>

#include "core/backend.h"

namespace meft {

struct WorkspaceRule {
    bool cuda = false;       // else the CPU backend
    int threads = 1;         // CPU: the pool's threads (ThreadPool::size())
    bool bf16_gemm = false;  // the linear layers' float32 GEMMs copy their operands to BF16
    // The rule of a real backend: CPU with the default pool's threads, or CUDA (its GEMM mode
    // from the backend's name is not known here: pass bf16_gemm yourself).
    static WorkspaceRule cpu(bool bf16_gemm = false);
    static WorkspaceRule cuda_device(bool bf16_gemm = false);
};

std::unique_ptr<Backend> make_shape_backend(const WorkspaceRule& rule = WorkspaceRule::cpu());

}  // namespace meft
