// backend_select.h — the backend an experiment asks for ("cpu", "cuda" or "auto"), made at run time.
#pragma once
#include <memory>
#include <string>

#include "core/backend.h"

namespace meft {

// The accepted names, for messages and validation.
inline constexpr const char* kBackendNames = "\"cpu\", \"cuda\" or \"auto\"";
bool is_backend_name(const std::string& name);

// Whether a CUDA backend can be made here (the plugin was built, loads, and finds a GPU); when it
// cannot, *why says what is missing.
bool cuda_backend_available(std::string* why = nullptr);

// "cpu": the reference backend; "cuda": the CUDA backend, or an Error saying why it cannot be
// used here; "auto": CUDA when available, else CPU.
std::unique_ptr<Backend> make_backend(const std::string& name);

}  // namespace meft
