# SPDX-License-Identifier: GPL-3.0-or-later
# package.cmake — the Debian package (CPack, DEB generator), included from the top-level
# CMakeLists.txt. `bash installer/package.sh` builds it as build/package/meft-workbench_<version>_amd64.deb;
# tests/test_package.sh unpacks and checks it (ctest -L package).
#
# It holds what the install() rules install under /usr: meft and meft-workbench (app/), the CUDA
# plugin in /usr/lib/meft when nvcc was found (kernels/), the desktop entry, icons, AppStream
# metainfo, experiment files and documentation (resources/). Tests and benchmarks have no install()
# rules and are not in it.

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME meft-workbench)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})   # the one version number (project() in CMakeLists.txt)
set(CPACK_PACKAGE_VENDOR "MEFT Workbench contributors")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Workbench for memory-efficient fine-tuning of language models")
# The long description, as Debian wants it: lines of at most 80 columns (CPack indents them).
string(JOIN "\n" CPACK_PACKAGE_DESCRIPTION
  "MEFT Workbench configures, runs, watches and compares fine-tuning experiments"
  "on BERT, RoBERTa, BART and OPT backbones: full fine-tuning, BitFit, LoRA,"
  "adapters, prefix-tuning, (IA)3, gradient checkpointing and the reversible MEFT"
  "methods. Its C++ engine records losses, scores and per-layer activation memory"
  "in an SQLite experiment database."
  ""
  "The package holds the Qt workbench (meft-workbench), the headless command line"
  "(meft), example experiment files and the documentation. The optional CUDA"
  "backend is a plugin that needs the CUDA runtime and cuBLAS libraries.")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)   # Release binaries without their symbol tables, as Debian ships them

set(MEFT_PACKAGE_MAINTAINER "MEFT Workbench maintainers <maintainers@meft-workbench.invalid>"
    CACHE STRING "Maintainer field of the Debian package (name <email>)")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${MEFT_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)        # meft-workbench_<version>_<arch>.deb

# Depends: dpkg-shlibdeps reads the libraries the binaries link and names their Debian packages
# (Qt 6 Widgets/Gui/Core/Svg, QCustomPlot for Qt 6, OpenBLAS, SQLite, utf8proc, the
# C and C++ runtimes) with the versions this build needs.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
if(TARGET meft_cuda)
  # The CUDA plugin links libcudart and libcublas from the CUDA toolkit (/usr/local/cuda), which
  # no Debian package of this system provides: dpkg-shlibdeps gets the toolkit's library folder
  # to find them in, and CPack's --ignore-missing-info makes them no dependency. The plugin is
  # dlopen()ed and optional (the engine runs on the CPU without it), so the toolkit's libraries
  # are a suggestion, named as NVIDIA's packages of the version it was built with.
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${CUDAToolkit_LIBRARY_DIR})
  set(_cuda "${CUDAToolkit_VERSION_MAJOR}-${CUDAToolkit_VERSION_MINOR}")
  set(CPACK_DEBIAN_PACKAGE_SUGGESTS "cuda-cudart-${_cuda}, libcublas-${_cuda}")
endif()

include(CPack)
