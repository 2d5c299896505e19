# plugin_abi.cmake — MEFT_CUDA_PLUGIN_ABI, the number the engine and the CUDA plugin
# (libmeft_cuda.so) compare before the engine calls the plugin (engine/core/backend_select.cpp).
#
# It is derived, not bumped by hand: the first 32 bits of a SHA-256 over the headers that define
# the plugin's binary interface (the Backend class and its virtual functions, Tensor, the arenas'
# MemorySource, Philox and the fixed-point streams that both sides compute bit for bit, the
# exceptions thrown across the boundary, and the C entry points). Any change to one of them, even
# a comment, gives another number, so a plugin built from other sources is refused with a message
# instead of being called. CMake re-runs the configure step when one of the headers changes
# (CMAKE_CONFIGURE_DEPENDS), and configure_file rewrites the generated header only when the
# number changes. Included from the top-level CMakeLists.txt (the fuzz-only build too).
#
# Sets MEFT_GENERATED_INCLUDE_DIR: the folder that holds core/plugin_abi.h, for the include path
# of every target that compiles engine/core/cuda_plugin.h.
set(MEFT_PLUGIN_ABI_HEADERS
  core/backend.h
  core/tensor.h
  core/dtype.h
  core/arena.h
  core/error.h
  core/philox.h
  core/stream_fixed.h
  core/host_device.h
  core/cuda_plugin.h)

set(_meft_abi_text "")
set(_meft_abi_paths "")
foreach(_h IN LISTS MEFT_PLUGIN_ABI_HEADERS)
  set(_path ${CMAKE_CURRENT_LIST_DIR}/${_h})
  file(SHA256 ${_path} _h_hash)
  string(APPEND _meft_abi_text "${_h} ${_h_hash}\n")
  list(APPEND _meft_abi_paths ${_path})
endforeach()
string(SHA256 _meft_abi_hash "${_meft_abi_text}")
string(SUBSTRING "${_meft_abi_hash}" 0 8 MEFT_CUDA_PLUGIN_ABI_HEX)
string(REPLACE ";" "\n//   " MEFT_PLUGIN_ABI_HEADER_LIST "${MEFT_PLUGIN_ABI_HEADERS}")

set(MEFT_GENERATED_INCLUDE_DIR ${PROJECT_BINARY_DIR}/generated)
configure_file(${CMAKE_CURRENT_LIST_DIR}/core/plugin_abi.h.in ${MEFT_GENERATED_INCLUDE_DIR}/core/plugin_abi.h @ONLY)
set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_meft_abi_paths})
message(STATUS "MEFT: CUDA plugin ABI 0x${MEFT_CUDA_PLUGIN_ABI_HEX}")
unset(_meft_abi_text)
unset(_meft_abi_paths)
unset(_meft_abi_hash)
