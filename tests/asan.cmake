# asan.cmake — malformed model files and experiment files (included by tests/CMakeLists.txt).
#
#   test_malformed_checkpoints  malformed/truncated safetensors, shard indexes, config.json and
#                               experiment files through the engine's loaders: each a meft::Error
#                               naming the file; plus seeded random mutations (labels unit;store)
#   test_bad_checkpoint_cli     meft run on a truncated model.safetensors: exit 1, the file named,
#                               no run row in the database (labels cli;store)
#   test_parsers_asan           the same source as test_malformed_checkpoints, built with
#                               AddressSanitizer + UndefinedBehaviorSanitizer against a sanitized
#                               copy of only the parser sources (label asan)
#
# The sanitized library holds the sources that reading a checkpoint and an experiment file needs
# (safetensors, config.json, load_classifier on the shape-only backend, the experiment parser and
# what it links to), not the whole engine: no SQLite, no tokenizers, no trainer.
option(MEFT_ASAN_TESTS "Build test_parsers_asan: the file parsers under AddressSanitizer and UBSan" ON)

meft_add_test(test_malformed_checkpoints LABELS "unit;store" SOURCES test_malformed_checkpoints.cpp)

add_test(NAME test_bad_checkpoint_cli
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_bad_checkpoint_cli.sh $<TARGET_FILE:meft>)
set_tests_properties(test_bad_checkpoint_cli PROPERTIES LABELS "cli;store" SKIP_RETURN_CODE 77 TIMEOUT 300)

if(MEFT_ASAN_TESTS)
  set(MEFT_SANITIZE_FLAGS -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer
                          -fno-sanitize-recover=all)
  include(CheckCXXSourceCompiles)
  set(CMAKE_REQUIRED_FLAGS "-fsanitize=address,undefined")
  set(CMAKE_REQUIRED_LINK_OPTIONS "-fsanitize=address,undefined")
  check_cxx_source_compiles("int main() { return 0; }" MEFT_HAVE_ASAN_UBSAN)
  unset(CMAKE_REQUIRED_FLAGS)
  unset(CMAKE_REQUIRED_LINK_OPTIONS)
  if(NOT MEFT_HAVE_ASAN_UBSAN)
    message(STATUS "MEFT: the compiler cannot build with -fsanitize=address,undefined; test_parsers_asan skipped")
  else()
    include(${PROJECT_SOURCE_DIR}/engine/sources.cmake)
    meft_engine_sources(_parsers core_ops model peft data/glue.cpp data/qa.cpp data/text_encoding.cpp
                        data/jsonl_examples.cpp store/experiment.cpp)
    set(_engine ${PROJECT_SOURCE_DIR}/engine)
    add_library(meft_parsers_asan STATIC ${_parsers})
    target_include_directories(meft_parsers_asan PUBLIC ${_engine} ${MEFT_GENERATED_INCLUDE_DIR})
    # BLAS only because the experiment parser validates training.backend through backend_select,
    # which can make a CPU backend; the tests never do.
    target_link_libraries(meft_parsers_asan PUBLIC nlohmann_json::nlohmann_json Threads::Threads
                                            PRIVATE BLAS::BLAS PkgConfig::UTF8PROC meft_warnings)
    # -O0 -g after the build type's flags (the last -O wins): twice as fast to compile as -O1, and
    # the inputs are small. -UNDEBUG keeps assertions (nlohmann_json's included) live.
    target_compile_options(meft_parsers_asan PUBLIC ${MEFT_SANITIZE_FLAGS} -O0 -g -UNDEBUG)
    target_link_options(meft_parsers_asan PUBLIC -fsanitize=address,undefined,float-cast-overflow)

    add_executable(test_parsers_asan test_malformed_checkpoints.cpp)
    target_link_libraries(test_parsers_asan PRIVATE meft_parsers_asan GTest::gtest_main meft_warnings)
    target_include_directories(test_parsers_asan PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
    add_test(NAME test_parsers_asan COMMAND test_parsers_asan)
    # Leak checking needs ptrace, which containers often deny; the point here is memory errors and UB.
    set_tests_properties(test_parsers_asan PROPERTIES LABELS asan TIMEOUT 600 ENVIRONMENT
      "ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=0:allocator_may_return_null=0;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
  endif()
endif()
