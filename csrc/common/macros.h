// Macros shared by every compiled op of geokd.
//
// KD_HD marks a function that runs on the host and, under nvcc, on the device.
// The per-element logic of every kernel is written once as KD_HD functions on
// plain values (in `<op>_common.h`), then driven by `at::parallel_for` on the
// CPU and by a grid on CUDA. Since the CPU tests exercise exactly those
// functions, they vouch for the CUDA kernels too.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define KD_HD __host__ __device__ inline
#define KD_DEVICE_COMPILE 1
#else
#define KD_HD inline
#endif

#include <algorithm>
#include <sstream>
#include <string>

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace geokd {

// "int64 [2, 10]" for error messages.
inline std::string describe(const at::Tensor& tensor) {
  std::ostringstream out;
  out << c10::toString(tensor.scalar_type()) << " " << tensor.sizes() << " on "
      << tensor.device();
  return out.str();
}

}  // namespace geokd

// TORCH_CHECK with the argument's name and a description of what came in.
#define KD_CHECK_ARG(cond, tensor, name, expected)                          \
  TORCH_CHECK((cond), name " must be " expected ", got ",                   \
              ::geokd::describe(tensor))

// Grid-stride loop over [0, n) inside a CUDA kernel, with 64-bit indices.
#define KD_CUDA_KERNEL_LOOP(i, n)                                             \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; \
       i < (n); i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// Launch bounds for KD_CUDA_KERNEL_LOOP.
#define KD_CUDA_THREADS 256
#define KD_CUDA_BLOCKS(n) \
  static_cast<unsigned int>(std::min<int64_t>(((n) + KD_CUDA_THREADS - 1) / KD_CUDA_THREADS, 65535 * 32))
