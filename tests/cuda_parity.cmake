# cuda_parity.cmake — CPU-vs-CUDA parity of every Backend op and of whole models (included by
# tests/CMakeLists.txt). One executable, two ctest entries:
#
#   test_cuda_parity       label cuda: the candidate is make_backend("cuda"); every test skips,
#                          saying why, where cuda_backend_available() is false (no plugin, no GPU)
#   test_parity_selfcheck  label unit: MEFT_PARITY_CANDIDATE=cpu makes the candidate a second CPU
#                          backend, which proves the harness itself on machines without a GPU:
#                          every comparison passes, injected faults (out-of-bounds writes, a
#                          perturbed element, a NaN) are reported, and float32 rounding against
#                          float64 stays inside the float32 tolerance
#
# MEFT_PARITY_FULL=1 runs the large shapes (BERT-base ops, 24-layer reversibility at 1M stream
# elements) in self-check mode too; with a real CUDA candidate they always run.
meft_add_test(test_cuda_parity LABELS cuda SOURCES test_cuda_parity.cpp parity_harness.cpp TIMEOUT 900)
# Every test skips with "no CUDA backend here: <why>" when there is no CUDA backend; ctest then
# reports the suite as skipped, not passed.
set_tests_properties(test_cuda_parity PROPERTIES SKIP_REGULAR_EXPRESSION "no CUDA backend here: ")

add_test(NAME test_parity_selfcheck COMMAND test_cuda_parity)
set_tests_properties(test_parity_selfcheck PROPERTIES LABELS unit ENVIRONMENT MEFT_PARITY_CANDIDATE=cpu TIMEOUT 300)

# test_cuda_emulated (label unit): the same suite with the CUDA backend's own sources — kernels and
# host code — compiled against the host emulation (tests/cuda_emulation/), so every CI machine
# checks the kernels' index arithmetic, reductions and cuBLAS arguments against the CPU.
add_executable(test_cuda_emulated test_cuda_parity.cpp parity_harness.cpp)
target_link_libraries(test_cuda_emulated PRIVATE meft_cuda_emulated meft_engine GTest::gtest_main meft_warnings)
target_include_directories(test_cuda_emulated PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_definitions(test_cuda_emulated PRIVATE MEFT_SHARED_DIR="${PROJECT_SOURCE_DIR}/../shared"
                                                      MEFT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_test(NAME test_cuda_emulated COMMAND test_cuda_emulated)
set_tests_properties(test_cuda_emulated PROPERTIES LABELS unit ENVIRONMENT MEFT_PARITY_CANDIDATE=emulated TIMEOUT 600)
