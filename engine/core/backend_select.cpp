#include "core/backend_select.h"

#include "core/cpu_backend.h"
#include "core/error.h"

namespace meft {

bool is_backend_name(const std::string& name) { return name == "cpu" || name == "cuda" || name == "auto"; }

bool cuda_backend_available(std::string* why) {
    // The CUDA kernels are not part of this build yet: the plugin under kernels/ holds only the
    // device probe, so no CUDA backend can be made.
    if (why) *why = "this build of meft has no CUDA backend yet (the kernels/ plugin provides only a device probe)";
    return false;
}

std::unique_ptr<Backend> make_backend(const std::string& name) {
    std::string why;
    if (name == "cuda" && !cuda_backend_available(&why))
        throw Error("backend \"cuda\" cannot be used: " + why + "; use \"cpu\" or \"auto\"");
    // "auto" takes CUDA first once cuda_backend_available() can say yes.
    if (name == "cpu" || name == "auto") return make_cpu_backend();
    throw Error("unknown backend \"" + name + "\" (expected " + kBackendNames + ")");
}

}  // namespace meft
