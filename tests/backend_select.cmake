# Backend selection and the CUDA plugin loader, included from tests/CMakeLists.txt (label unit;
# the command-line check also cli). No GPU needed: fake_cuda_plugin.cpp stands in for
# libmeft_cuda.so, wrapping the CPU backend as "fake-cuda"; a second build of it lacks an entry point.
foreach(variant fake_cuda_plugin fake_cuda_plugin_no_create)
  add_library(${variant} MODULE fake_cuda_plugin.cpp)
  target_link_libraries(${variant} PRIVATE meft_engine meft_warnings)
endforeach()
target_compile_definitions(fake_cuda_plugin_no_create PRIVATE MEFT_FAKE_CUDA_NO_CREATE)
set(MEFT_NOT_A_PLUGIN ${CMAKE_CURRENT_BINARY_DIR}/not_a_plugin.so)
file(WRITE ${MEFT_NOT_A_PLUGIN} "this text file is not a shared library\n")

# The loader keeps its first outcome for the whole process, so every plugin scenario is its own
# ctest entry (one executable; the scenario's tests skip in any other entry). test_backend_select
# itself is scenario "none": no MEFT_CUDA_PLUGIN, whatever the caller's environment holds.
meft_add_test(test_backend_select LABELS unit SOURCES test_backend_select.cpp)
target_link_libraries(test_backend_select PRIVATE ${CMAKE_DL_LIBS})
add_dependencies(test_backend_select fake_cuda_plugin fake_cuda_plugin_no_create)
set_tests_properties(test_backend_select PROPERTIES ENVIRONMENT_MODIFICATION
                     "MEFT_CUDA_PLUGIN=unset:;MEFT_BACKEND_TEST_SCENARIO=unset:;MEFT_FAKE_CUDA_MODE=unset:")

# meft_backend_scenario(NAME FIXTURE PLUGIN [MODE]): test_backend_select_NAME runs FIXTURE.* with
# MEFT_CUDA_PLUGIN=PLUGIN and MEFT_FAKE_CUDA_MODE=MODE.
function(meft_backend_scenario name fixture plugin)
  set(mode "${ARGN}")
  add_test(NAME test_backend_select_${name} COMMAND test_backend_select --gtest_filter=${fixture}.*)
  set_tests_properties(test_backend_select_${name} PROPERTIES LABELS unit TIMEOUT 120
    ENVIRONMENT "MEFT_BACKEND_TEST_SCENARIO=${name};MEFT_CUDA_PLUGIN=${plugin};MEFT_FAKE_CUDA_MODE=${mode};MEFT_FAKE_CUDA_DEVICES=2")
endfunction()
meft_backend_scenario(missing MissingFile ${CMAKE_CURRENT_BINARY_DIR}/no-such-folder/libmeft_cuda.so)
meft_backend_scenario(notalib NotALibrary ${MEFT_NOT_A_PLUGIN})
meft_backend_scenario(nosymbol MissingSymbol $<TARGET_FILE:fake_cuda_plugin_no_create>)
meft_backend_scenario(abi AbiMismatch $<TARGET_FILE:fake_cuda_plugin> abi)
meft_backend_scenario(nodevice NoDevice $<TARGET_FILE:fake_cuda_plugin> nodevice)
meft_backend_scenario(createfail CreateFails $<TARGET_FILE:fake_cuda_plugin> createfail)
meft_backend_scenario(fake FakeCuda* $<TARGET_FILE:fake_cuda_plugin>)
if(TARGET meft_cuda)  # the plugin CI compiles with nvcc must load here, GPU or not
  meft_backend_scenario(realplugin RealPlugin $<TARGET_FILE:meft_cuda>)
endif()

# The command line end to end: meft run/resume/predict/plan --backend, with the fake plugin and without one.
add_test(NAME test_backend_cli
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_backend_cli.sh $<TARGET_FILE:meft>
                 $<TARGET_FILE:fake_cuda_plugin> ${PROJECT_SOURCE_DIR}/experiments/quickstart.json)
set_tests_properties(test_backend_cli PROPERTIES LABELS "unit;cli" TIMEOUT 300
                     ENVIRONMENT_MODIFICATION "MEFT_CUDA_PLUGIN=unset:;MEFT_FAKE_CUDA_MODE=unset:;MEFT_DB=unset:")
