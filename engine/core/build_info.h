// build_info.h — what this build is: the product version (one number, set in the top-level
// CMakeLists.txt) and the git commit it was built from (read at every build; "+modified" when
// tracked files differed from it). Only build_info.cpp sees the values, so a new commit
// recompiles one file.
#pragma once

namespace meft {

const char* version();     // "0.1.0"
const char* git_commit();  // short hash [+modified], or "unknown" outside a git checkout

}  // namespace meft
