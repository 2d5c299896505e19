# meft_cuda_emulated: the CUDA backend's own sources (kernels/*.cu and its host code) compiled by
# g++ against the host emulation in this folder, so the kernels' logic runs in the parity suite on
# machines without a GPU (see cuda_runtime.h here for what that does and does not verify).
set(MEFT_EMU_DIR ${CMAKE_CURRENT_LIST_DIR})
set(MEFT_EMU_SOURCES)
foreach(cu blas scratch elementwise dropout reduce layernorm attention attention_tiled embedding
           coupling weight_norm)
  set(wrapper ${CMAKE_CURRENT_BINARY_DIR}/cuda_emulation/${cu}.cpp)
  file(CONFIGURE OUTPUT ${wrapper} CONTENT "#include \"${PROJECT_SOURCE_DIR}/kernels/${cu}.cu\"\n")
  list(APPEND MEFT_EMU_SOURCES ${wrapper})
endforeach()
add_library(meft_cuda_emulated STATIC ${MEFT_EMU_SOURCES}
  ${PROJECT_SOURCE_DIR}/kernels/cuda_backend.cpp
  ${PROJECT_SOURCE_DIR}/kernels/plugin_entry.cpp)
target_include_directories(meft_cuda_emulated BEFORE PUBLIC ${MEFT_EMU_DIR})
target_include_directories(meft_cuda_emulated PUBLIC ${PROJECT_SOURCE_DIR}/kernels ${PROJECT_SOURCE_DIR}/engine
                                                  ${MEFT_GENERATED_INCLUDE_DIR})
target_compile_definitions(meft_cuda_emulated PUBLIC MEFT_CUDA_HOST_EMULATION=1)
target_link_libraries(meft_cuda_emulated PUBLIC BLAS::BLAS)
