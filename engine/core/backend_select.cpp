#include "core/backend_select.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "core/cpu_backend.h"
#include "core/cpu_bf16_gemm.h"
#include "core/cuda_plugin.h"
#include "core/error.h"

namespace meft {

namespace {

namespace fs = std::filesystem;

constexpr const char* kPluginFile = "libmeft_cuda.so";

struct Plugin {
    CudaPluginStatus status;
    MeftCudaCreateFn create = nullptr;
};

std::string joined(const std::vector<fs::path>& paths) {
    std::string s;
    for (const fs::path& p : paths) s += (s.empty() ? "" : ", ") + p.string();
    return s;
}

// Where the plugin may be when $MEFT_CUDA_PLUGIN is not set, in search order.
std::vector<fs::path> default_plugin_paths() {
    std::vector<fs::path> paths;
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec && !exe.empty()) {
        const fs::path dir = exe.parent_path();
        paths.push_back(dir / kPluginFile);
        paths.push_back((dir / ".." / "lib" / "meft" / kPluginFile).lexically_normal());
    }
#ifdef MEFT_CUDA_PLUGIN_BUILD_PATH
    paths.push_back(fs::path(MEFT_CUDA_PLUGIN_BUILD_PATH));
#endif
    return paths;
}

std::string dl_error(const std::string& fallback) {
    const char* e = dlerror();
    return e ? std::string(e) : fallback;
}

// Finds, loads and checks the plugin. Every failure leaves status.why saying what is missing.
Plugin load_plugin() {
    Plugin p;
    CudaPluginStatus& s = p.status;
    const char* env = std::getenv("MEFT_CUDA_PLUGIN");
    if (env && *env) {
        // An explicit choice: never fall back to another copy the user did not ask for.
        std::error_code ec;
        if (!fs::is_regular_file(env, ec)) {
            s.why = std::string("MEFT_CUDA_PLUGIN is set to ") + env + ", which is not a file; point it at " +
                    kPluginFile + ", or unset it to search the default places";
            return p;
        }
        const fs::path absolute = fs::absolute(env, ec);  // dlopen() would search the library path for a bare name
        s.path = ec ? std::string(env) : absolute.string();
    } else {
        const std::vector<fs::path> candidates = default_plugin_paths();
        for (const fs::path& c : candidates) {
            std::error_code ec;
            if (fs::is_regular_file(c, ec)) {
                s.path = c.string();
                break;
            }
        }
        if (s.path.empty()) {
            s.why = std::string("the CUDA plugin ") + kPluginFile + " was not found (searched: " + joined(candidates) +
                    "); this meft was built without CUDA (nvcc not found, or MEFT_ENABLE_CUDA=OFF) or the plugin "
                    "was not installed; set MEFT_CUDA_PLUGIN to the plugin's path";
            return p;
        }
    }
    s.found = true;

    dlerror();  // clear any earlier error
    void* handle = dlopen(s.path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const std::string err = dl_error("unknown dlopen error");
        s.why = "the CUDA plugin " + s.path + " could not be loaded: " + err;
        if (err.find("cannot open shared object file") != std::string::npos)
            s.why += " (the CUDA runtime and cuBLAS libraries must be findable: install the CUDA toolkit's "
                     "libraries, or add their folder, e.g. /usr/local/cuda/lib64, to LD_LIBRARY_PATH or ld.so.conf)";
        return p;
    }
    // The handle is never closed: backends made by the plugin may live until the process exits.
    const auto symbol = [&](const char* name) -> void* {
        dlerror();
        void* f = dlsym(handle, name);
        if (!f)
            s.why = "the CUDA plugin " + s.path + " has no entry point " + name + " (" + dl_error("symbol not found") +
                    "): it is not a MEFT CUDA plugin, or an incomplete one; rebuild it with this meft";
        return f;
    };
    const auto abi = reinterpret_cast<MeftCudaAbiVersionFn>(symbol(MEFT_CUDA_ABI_SYMBOL));
    if (!abi) return p;
    const auto probe = reinterpret_cast<MeftCudaProbeFn>(symbol(MEFT_CUDA_PROBE_SYMBOL));
    if (!probe) return p;
    const auto create = reinterpret_cast<MeftCudaCreateFn>(symbol(MEFT_CUDA_CREATE_SYMBOL));
    if (!create) return p;
    const unsigned version = abi();
    if (version != MEFT_CUDA_PLUGIN_ABI) {
        s.why = "the CUDA plugin " + s.path + " was built for plugin ABI " + plugin_abi_text(version) +
                " but this meft needs ABI " + plugin_abi_text(MEFT_CUDA_PLUGIN_ABI) +
                "; rebuild the plugin from the same sources as meft";
        return p;
    }
    char reason[1024] = {};
    s.devices = probe(reason, sizeof reason);
    reason[sizeof reason - 1] = '\0';
    if (s.devices < 1) {
        s.devices = 0;
        s.why = std::string("no CUDA device: ") + (reason[0] ? reason : "the plugin found none") + " (plugin " + s.path + ")";
        return p;
    }
    s.available = true;
    p.create = create;
    return p;
}

// Loaded on first use; a function-local static is initialised exactly once, even when several
// threads (the GUI's form and its run worker) ask at the same time.
const Plugin& plugin() {
    static const Plugin p = load_plugin();
    return p;
}

std::string cannot_use_cuda(const std::string& why) {
    return "backend \"cuda\" cannot be used: " + why + "; use \"cpu\" or \"auto\"";
}

}  // namespace

bool is_backend_name(const std::string& name) { return name == "cpu" || name == "cuda" || name == "auto"; }

const CudaPluginStatus& cuda_plugin_status() { return plugin().status; }

std::string plugin_abi_text(unsigned abi) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", abi);
    return buf;
}

bool cuda_backend_available(std::string* why) {
    const CudaPluginStatus& s = cuda_plugin_status();
    if (why) *why = s.available ? std::string() : s.why;
    return s.available;
}

std::string resolve_backend(const std::string& name, const BackendOptions& o) {
    if (!is_backend_name(name)) throw Error("unknown backend \"" + name + "\" (expected " + kBackendNames + ")");
    // "cpu" never touches the plugin: a CPU run does not pay for loading CUDA.
    std::string why;
    const bool cuda = name != "cpu" && cuda_backend_available(&why);
    if (name == "cuda" && !cuda) throw Error(cannot_use_cuda(why));
    if (cuda) {
        const int n = cuda_plugin_status().devices;
        if (o.device < 0 || o.device >= n)
            throw Error("CUDA device " + std::to_string(o.device) + " does not exist: the plugin found " +
                        std::to_string(n) + " device" + (n == 1 ? "" : "s") + " (ordinals 0 to " + std::to_string(n - 1) + ")");
        return "cuda";
    }
    if (o.bf16_gemm) {  // the CPU backend's bf16 GEMMs need oneDNN and AVX512_BF16
        std::string cpu_why;
        if (!cpu_bf16_gemm_available(&cpu_why))
            throw Error(name == "auto"
                            ? "bf16 GEMMs (gemm precision \"bf16\") need the CUDA backend or a CPU with AVX512_BF16; "
                              "backend \"auto\" found no CUDA backend (" + why + ") and " + cpu_why +
                                  "; use gemm precision \"float32\""
                            : "bf16 GEMMs (gemm precision \"bf16\") on the CPU backend: " + cpu_why +
                                  "; use gemm precision \"float32\", or backend \"cuda\"");
    }
    return "cpu";
}

std::unique_ptr<Backend> make_backend(const std::string& name, const BackendOptions& o) {
    if (resolve_backend(name, o) == "cpu") return make_cpu_backend(CpuBackendOptions{o.bf16_gemm});  // tf32: ignored
    const MeftCudaOptions options{o.device, o.tf32 ? 1 : 0, o.bf16_gemm ? 1 : 0};
    char error[1024] = {};
    Backend* b = plugin().create(&options, error, sizeof error);
    error[sizeof error - 1] = '\0';
    if (!b)
        throw Error("the CUDA backend could not be created on device " + std::to_string(o.device) + ": " +
                    (error[0] ? error : "the plugin gave no reason") + " (plugin " + cuda_plugin_status().path + ")");
    return std::unique_ptr<Backend>(b);
}

}  // namespace meft
