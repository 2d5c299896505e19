#include "core/build_info.h"

#ifndef MEFT_VERSION
#error "MEFT_VERSION is set by engine/CMakeLists.txt from the project's version"
#endif
#ifndef MEFT_GIT_COMMIT
#define MEFT_GIT_COMMIT "unknown"
#endif

namespace meft {

const char* version() { return MEFT_VERSION; }
const char* git_commit() { return MEFT_GIT_COMMIT; }

}  // namespace meft
