// CUDA kernel of graphkd::index_to_ptr: a grid over the shared per-element
// logic.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../index_to_ptr.h"
#include "../index_to_ptr_common.h"

namespace graphkd {
namespace {

__global__ void index_to_ptr_kernel(const int64_t* __restrict__ index,
                                    int64_t numel, int64_t size,
                                    int64_t* __restrict__ ptr,
                                    int* __restrict__ status) {
  KD_CUDA_KERNEL_LOOP(i, numel) {
    const int element_status = index_to_ptr_element(i, index, numel, size, ptr);
    if (element_status != kIndexToPtrOk) atomicMax(status, element_status);
  }
}

}  // namespace

at::Tensor index_to_ptr_cuda(const at::Tensor& index_in, int64_t size) {
  check_index_to_ptr_inputs(index_in, size);
  TORCH_CHECK(index_in.is_cuda(), "index must be a CUDA tensor, got ",
              index_in.device());
  const c10::cuda::CUDAGuard device_guard(index_in.device());
  const auto index = index_in.contiguous();
  const int64_t numel = index.numel();
  if (numel == 0) return at::zeros({size + 1}, index.options());
  auto ptr = at::empty({size + 1}, index.options());
  auto status = at::zeros({1}, index.options().dtype(at::kInt));
  const auto stream = at::cuda::getCurrentCUDAStream();
  index_to_ptr_kernel<<<KD_CUDA_BLOCKS(numel), KD_CUDA_THREADS, 0, stream>>>(
      index.data_ptr<int64_t>(), numel, size, ptr.data_ptr<int64_t>(),
      status.data_ptr<int>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  // One device-to-host copy: bad input must raise, not return garbage.
  raise_index_to_ptr_status(status.item<int>(), index, size);
  return ptr;
}

TORCH_LIBRARY_IMPL(graphkd, CUDA, m) {
  m.impl("index_to_ptr", &index_to_ptr_cuda);
}

}  // namespace graphkd
