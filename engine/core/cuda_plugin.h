// cuda_plugin.h — the C entry points of the CUDA backend plugin (kernels/, libmeft_cuda.so).
//
// The engine never links CUDA: backend_select.cpp dlopen()s the plugin when a run asks for
// "cuda" or "auto", checks its ABI version, asks it for devices and then for a Backend. A machine
// without the plugin, without CUDA libraries or without a GPU gets a clear reason instead.
#pragma once
#include <cstddef>

// MEFT_CUDA_PLUGIN_ABI: generated at configure time (engine/plugin_abi.cmake), an unsigned 32-bit
// hash of the headers that define the plugin's binary interface (this one, backend.h and what it
// includes). A plugin built against other headers is refused with a message, never called.
#include "core/plugin_abi.h"

namespace meft {
class Backend;
}

extern "C" {

struct MeftCudaOptions {
    int device;     // CUDA device ordinal
    int tf32;       // 1: float32 GEMMs may use TF32 tensor cores (off: exact float32)
    int bf16_gemm;  // 1: float32 GEMMs round their operands to bf16 and accumulate in float32
};

// Symbol names, for dlsym.
#define MEFT_CUDA_ABI_SYMBOL "meft_cuda_abi_version"
#define MEFT_CUDA_PROBE_SYMBOL "meft_cuda_probe"
#define MEFT_CUDA_CREATE_SYMBOL "meft_cuda_create_backend"

// The MEFT_CUDA_PLUGIN_ABI the plugin was built with.
typedef unsigned (*MeftCudaAbiVersionFn)(void);
// Number of usable CUDA devices; when 0, `why` (if not null) receives the reason, NUL-terminated.
typedef int (*MeftCudaProbeFn)(char* why, std::size_t why_len);
// A new CUDA backend (delete it with `delete`; it frees its device memory), or null with the
// reason in `error`. Never throws.
typedef meft::Backend* (*MeftCudaCreateFn)(const MeftCudaOptions* options, char* error, std::size_t error_len);

}  // extern "C"
