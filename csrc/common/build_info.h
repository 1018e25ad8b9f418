// Build facts compiled into each library: the torch and CUDA versions it was
// built against. Registered as ops so that Python reads them through the same
// dispatcher that serves the real kernels.
#pragma once

#include <string>

#include <torch/library.h>
#if __has_include(<torch/headeronly/version.h>)
#include <torch/headeronly/version.h>
#else
#include <torch/version.h>
#endif

#ifdef WITH_CUDA
#include <cuda.h>
#endif

namespace geokd {

// CUDA toolkit version the library was compiled with (e.g. 13000), -1 if the
// CUDA kernels were not compiled.
inline int64_t cuda_version() {
#ifdef WITH_CUDA
  return CUDA_VERSION;
#else
  return -1;
#endif
}

inline std::string torch_version() { return TORCH_VERSION; }

}  // namespace geokd

#define KD_REGISTER_BUILD_INFO(m)                                            \
  m.def("cuda_version() -> int", &::geokd::cuda_version);                   \
  m.def("torch_version() -> str", &::geokd::torch_version)
