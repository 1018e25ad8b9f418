// Atomic accumulation for CUDA kernels that scatter through the shared
// per-element headers (which take the accumulation as a functor).
#pragma once

#include <ATen/cuda/Atomic.cuh>

#include "macros.h"

namespace geokd {

template <typename scalar_t>
struct AtomicAdd {
  KD_HD void operator()(scalar_t* address, scalar_t value) const {
#ifdef __CUDA_ARCH__
    gpuAtomicAdd(address, value);
#else
    *address += value;  // never called: the kernels run on the device
#endif
  }
};

}  // namespace geokd
