# fuzz_ctest.cmake — ctest entries (label fuzz) for the libFuzzer targets, included by
# tests/CMakeLists.txt. The targets live in a clang build of their own (MEFT_FUZZ_BUILD_DIR,
# default build/fuzz; installer/setup.sh makes it); each entry runs one of them for 3 seconds
# through run_fuzzers.sh, which fails on any finding and exits 77 (reported as skipped) when that
# build does not exist.
include(${CMAKE_CURRENT_LIST_DIR}/targets.cmake)
set(MEFT_FUZZ_BUILD_DIR "${PROJECT_SOURCE_DIR}/build/fuzz" CACHE PATH
    "The fuzz build (cmake -DCMAKE_CXX_COMPILER=clang++ -DMEFT_FUZZ=ON) whose targets ctest -L fuzz runs")
foreach(t IN LISTS MEFT_FUZZ_TARGETS)
  add_test(NAME ${t} COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run_fuzzers.sh ${MEFT_FUZZ_BUILD_DIR} 3 ${t})
  set_tests_properties(${t} PROPERTIES LABELS fuzz SKIP_RETURN_CODE 77 TIMEOUT 120)
endforeach()
