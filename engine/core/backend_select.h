// backend_select.h — the backend an experiment asks for ("cpu", "cuda" or "auto"), made at run time.
//
// The CUDA backend is a plugin (libmeft_cuda.so, kernels/) that this file dlopen()s on first use,
// so the engine and the apps never link CUDA. Where the plugin is looked for, in order:
//   1. $MEFT_CUDA_PLUGIN, a file path — when set, nothing else is tried;
//   2. beside the running executable: <exe dir>/libmeft_cuda.so;
//   3. the installed layout: <exe dir>/../lib/meft/libmeft_cuda.so;
//   4. the build tree's plugin (compiled in as MEFT_CUDA_PLUGIN_BUILD_PATH when CUDA is built).
// The first file that exists is the one used. It is loaded once per process (RTLD_NOW |
// RTLD_LOCAL), checked (ABI version, at least one device) and never unloaded; the outcome,
// success or the reason for failure, is kept for the life of the process.
#pragma once
#include <memory>
#include <string>

#include "core/backend.h"

namespace meft {

// The accepted names, for messages and validation.
inline constexpr const char* kBackendNames = "\"cpu\", \"cuda\" or \"auto\"";
bool is_backend_name(const std::string& name);

// How GEMMs may compute, and on which device. The CPU backend ignores tf32 (a permission: its
// float32 GEMMs are exact); bf16_gemm runs there on oneDNN where the CPU has AVX512_BF16 (an
// error otherwise, cpu_bf16_gemm.h).
struct BackendOptions {
    bool tf32 = false;       // float32 GEMMs may use TF32 tensor cores
    bool bf16_gemm = false;  // float32 GEMMs round their operands to bf16, accumulate in float32
    int device = 0;          // CUDA device ordinal
};

// What loading the CUDA plugin found, kept for the process.
struct CudaPluginStatus {
    bool found = false;      // a plugin file was found (whether or not it loaded)
    bool available = false;  // loaded, ABI matches, and at least one device
    std::string path;        // the plugin file used ("" when none was found)
    int devices = 0;         // the probe's device count (0 unless the probe ran)
    std::string why;         // when !available: what is missing, for the user
};
const CudaPluginStatus& cuda_plugin_status();

// A plugin ABI version (a 32-bit hash, core/cuda_plugin.h) as messages show it: "0x" and 8 hex digits.
std::string plugin_abi_text(unsigned abi);

// Whether a CUDA backend can be made here (the plugin loads, has this engine's ABI, and finds a
// GPU); when it cannot, *why says what is missing.
bool cuda_backend_available(std::string* why = nullptr);

// "cpu": the reference backend; "cuda": the CUDA backend, or an Error saying why it cannot be
// used here; "auto": CUDA when available, else CPU (backend->name() tells which was made).
std::unique_ptr<Backend> make_backend(const std::string& name, const BackendOptions& options = {});

// Which backend make_backend(name, options) would make, "cpu" or "cuda", without making it; or
// the Error it would throw. Cheap after the first call: callers check before recording anything.
std::string resolve_backend(const std::string& name, const BackendOptions& options = {});

}  // namespace meft
