// CUDA kernels of pointkd::resample_volume: grids over the shared
// per-element logic, on a contiguous (channels-first) copy of the volume.
//
// Forward: one thread per output element (b, c, k, j, i); consecutive
// threads take consecutive i, so writes are coalesced and reads of
// neighbouring samples fall on neighbouring voxels. Backward: one thread per
// element of grad_output, with atomicAdd into grad_volume, whose voxels are
// shared between samples; unlike the CPU kernel, its summation order (hence
// the last bits of grad_volume) varies from run to run.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include "../../common/cuda_atomic.cuh"
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../resample_volume.h"
#include "../resample_volume_common.h"

namespace pointkd {
namespace {

using geokd::AtomicAdd;

// Splits a flat index of a [B * C, D', H', W'] tensor.
struct OutputIndex {
  int64_t channel, k, j, i;
};

__device__ inline OutputIndex split_output_index(int64_t index,
                                                 const ResampleVolumeParams& p) {
  OutputIndex out;
  out.i = index % p.out_width;
  int64_t rest = index / p.out_width;
  out.j = rest % p.out_height;
  rest /= p.out_height;
  out.k = rest % p.out_depth;
  out.channel = rest / p.out_depth;
  return out;
}

template <typename scalar_t>
__global__ void resample_volume_forward_kernel(const scalar_t* __restrict__ volume,
                                               ResampleVolumeParams p, int64_t total,
                                               scalar_t* __restrict__ output) {
  const int64_t channel_stride = p.depth * p.height * p.width;
  KD_CUDA_KERNEL_LOOP(index, total) {
    const auto where = split_output_index(index, p);
    const auto cell = resample_cell<scalar_t>(p, where.k, where.j, where.i);
    output[index] = resample_volume_sample(cell, volume + where.channel * channel_stride, p);
  }
}

template <typename scalar_t>
__global__ void resample_volume_backward_kernel(const scalar_t* __restrict__ grad_output,
                                                ResampleVolumeParams p, int64_t total,
                                                scalar_t* __restrict__ grad_volume) {
  const int64_t channel_stride = p.depth * p.height * p.width;
  KD_CUDA_KERNEL_LOOP(index, total) {
    const auto where = split_output_index(index, p);
    const auto cell = resample_cell<scalar_t>(p, where.k, where.j, where.i);
    if (grid_cell_empty(cell)) continue;  // reads zeros, scatters nothing
    resample_volume_scatter(cell, grad_output[index],
                            grad_volume + where.channel * channel_stride, p,
                            AtomicAdd<scalar_t>{});
  }
}

}  // namespace

at::Tensor resample_volume_cuda(const at::Tensor& volume_in, c10::IntArrayRef size,
                                c10::ArrayRef<double> src_box,
                                c10::ArrayRef<double> dst_box,
                                bool align_corners,
                                c10::string_view padding_mode) {
  const auto call = check_resample_volume_inputs(volume_in, size, src_box, dst_box,
                                                 align_corners, padding_mode);
  TORCH_CHECK(volume_in.is_cuda(), "volume must be a CUDA tensor, got ",
              volume_in.device());
  const c10::cuda::CUDAGuard device_guard(volume_in.device());
  const auto& p = call.params;
  const auto volume = volume_in.contiguous();
  auto output = at::empty({call.batch, call.channels, p.out_depth, p.out_height,
                           p.out_width},
                          volume.options());
  const int64_t total = output.numel();
  if (total > 0) {
    const auto stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES(volume.scalar_type(), "resample_volume_cuda", [&] {
      resample_volume_forward_kernel<scalar_t>
          <<<KD_CUDA_BLOCKS(total), KD_CUDA_THREADS, 0, stream>>>(
              volume.data_ptr<scalar_t>(), p, total, output.data_ptr<scalar_t>());
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return call.batched ? output : output.squeeze(0);
}

at::Tensor resample_volume_backward_cuda(const at::Tensor& grad_output_in,
                                         c10::IntArrayRef volume_size,
                                         c10::ArrayRef<double> src_box,
                                         c10::ArrayRef<double> dst_box,
                                         bool align_corners,
                                         c10::string_view padding_mode) {
  const auto call = check_resample_volume_backward_inputs(
      grad_output_in, volume_size, src_box, dst_box, align_corners, padding_mode);
  TORCH_CHECK(grad_output_in.is_cuda(), "grad_output must be a CUDA tensor, got ",
              grad_output_in.device());
  const c10::cuda::CUDAGuard device_guard(grad_output_in.device());
  const auto& p = call.params;
  const auto grad_output = grad_output_in.contiguous();
  auto grad_volume = at::zeros({call.batch, call.channels, p.depth, p.height, p.width},
                               grad_output.options());
  const int64_t total = grad_output.numel();
  if (total > 0) {
    const auto stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES(grad_output.scalar_type(), "resample_volume_backward_cuda", [&] {
      resample_volume_backward_kernel<scalar_t>
          <<<KD_CUDA_BLOCKS(total), KD_CUDA_THREADS, 0, stream>>>(
              grad_output.data_ptr<scalar_t>(), p, total,
              grad_volume.data_ptr<scalar_t>());
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return call.batched ? grad_volume : grad_volume.squeeze(0);
}

TORCH_LIBRARY_IMPL(pointkd, CUDA, m) {
  m.impl("resample_volume", &resample_volume_cuda);
  m.impl("resample_volume_backward", &resample_volume_backward_cuda);
}

}  // namespace pointkd
