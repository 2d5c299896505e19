#include "core/build_info.h"

#include "git_commit.h"  // generated at build time (engine/core/git_commit.cmake)

#ifndef MEFT_VERSION
#error "MEFT_VERSION is set by engine/CMakeLists.txt from the project's version"
#endif

namespace meft {

const char* version() { return MEFT_VERSION; }
const char* git_commit() { return MEFT_GIT_COMMIT; }

}  // namespace meft
