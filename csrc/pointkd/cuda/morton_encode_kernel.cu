// CUDA kernel of pointkd::morton_encode: a grid over the shared per-element
// logic.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../morton_encode.h"
#include "../morton_encode_common.h"

namespace pointkd {
namespace {

template <typename index_t>
__global__ void morton_encode_kernel(const index_t* __restrict__ coords,
                                     int64_t num_points,
                                     int64_t* __restrict__ codes) {
  KD_CUDA_KERNEL_LOOP(i, num_points) {
    codes[i] = morton_encode_element(i, coords);
  }
}

}  // namespace

at::Tensor morton_encode_cuda(const at::Tensor& coords_in) {
  check_morton_encode_inputs(coords_in);
  TORCH_CHECK(coords_in.is_cuda(), "coords must be a CUDA tensor, got ",
              coords_in.device());
  const c10::cuda::CUDAGuard device_guard(coords_in.device());
  const auto coords = coords_in.contiguous();
  const int64_t num_points = coords.size(0);
  auto codes = at::empty({num_points}, coords.options().dtype(at::kLong));
  if (num_points == 0) return codes;
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_INDEX_TYPES(coords.scalar_type(), "morton_encode_cuda", [&] {
    morton_encode_kernel<index_t>
        <<<KD_CUDA_BLOCKS(num_points), KD_CUDA_THREADS, 0, stream>>>(
            coords.data_ptr<index_t>(), num_points, codes.data_ptr<int64_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return codes;
}

TORCH_LIBRARY_IMPL(pointkd, CUDA, m) {
  m.impl("morton_encode", &morton_encode_cuda);
}

}  // namespace pointkd
