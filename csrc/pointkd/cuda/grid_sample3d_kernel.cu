// CUDA kernels of pointkd::grid_sample3d: grids over the shared per-point
// logic, on a channels-last copy of the volume.
//
// Forward: one thread per (point, channel); consecutive threads take
// consecutive channels of a point, so each corner's C values are read
// coalesced. Backward: one thread per point (grad_points sums over all
// channels), with atomicAdd for grad_volume, whose voxels are shared between
// points; unlike the CPU kernel, its summation order (hence the last bits of
// grad_volume) varies from run to run.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include "../../common/cuda_atomic.cuh"
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../grid_sample3d.h"
#include "../grid_sample3d_common.h"

namespace pointkd {
namespace {

using geokd::AtomicAdd;

template <typename scalar_t>
__global__ void grid_sample3d_forward_kernel(
    const scalar_t* __restrict__ volume, const scalar_t* __restrict__ points,
    GridSample3dShape s, bool align_corners, GridPadding padding,
    scalar_t* __restrict__ output) {
  const int64_t batch_stride = s.depth * s.height * s.width * s.channels;
  const int64_t total = s.batch * s.num_points * s.channels;
  KD_CUDA_KERNEL_LOOP(index, total) {
    const int64_t i = index / s.channels;
    const int64_t c = index - i * s.channels;
    const auto cell = grid_cell(points + 3 * i, s.depth, s.height, s.width,
                                align_corners, padding);
    scalar_t value;
    grid_sample3d_point(cell, volume + (i / s.num_points) * batch_stride,
                        s.height, s.width, s.channels, c, c + 1, &value);
    output[index] = value;
  }
}

template <typename scalar_t>
__global__ void grid_sample3d_backward_kernel(
    const scalar_t* __restrict__ volume, const scalar_t* __restrict__ points,
    const scalar_t* __restrict__ grad_output, GridSample3dShape s,
    bool align_corners, GridPadding padding, scalar_t* __restrict__ grad_volume,
    scalar_t* __restrict__ grad_points) {
  const int64_t batch_stride = s.depth * s.height * s.width * s.channels;
  const int64_t total = s.batch * s.num_points;
  KD_CUDA_KERNEL_LOOP(i, total) {
    const int64_t b = i / s.num_points;
    const auto cell = grid_cell(points + 3 * i, s.depth, s.height, s.width,
                                align_corners, padding);
    if (grid_cell_empty(cell)) continue;  // reads zeros; grad_points stays 0
    grid_sample3d_backward_point(
        cell, volume == nullptr ? nullptr : volume + b * batch_stride,
        grad_output + i * s.channels, s.height, s.width, s.channels,
        grad_volume == nullptr ? nullptr : grad_volume + b * batch_stride,
        grad_points == nullptr ? nullptr : grad_points + 3 * i,
        AtomicAdd<scalar_t>{});
  }
}

}  // namespace

at::Tensor grid_sample3d_cuda(const at::Tensor& volume_in,
                              const at::Tensor& points_in, bool align_corners,
                              c10::string_view padding_mode) {
  const auto padding = parse_grid_padding(padding_mode);
  const auto shape = check_grid_sample3d_inputs(volume_in, points_in);
  TORCH_CHECK(volume_in.is_cuda(), "volume must be a CUDA tensor, got ",
              volume_in.device());
  const c10::cuda::CUDAGuard device_guard(volume_in.device());
  check_grid_sample3d_points_finite(points_in);
  const auto volume = grid_sample3d_channels_last(volume_in, shape);
  const auto points =
      points_in.reshape({shape.batch, shape.num_points, 3}).contiguous();
  auto output = at::empty({shape.batch, shape.num_points, shape.channels},
                          volume.options());
  const int64_t total = output.numel();
  if (total > 0) {
    const auto stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES(volume.scalar_type(), "grid_sample3d_cuda", [&] {
      grid_sample3d_forward_kernel<scalar_t>
          <<<KD_CUDA_BLOCKS(total), KD_CUDA_THREADS, 0, stream>>>(
              volume.data_ptr<scalar_t>(), points.data_ptr<scalar_t>(), shape,
              align_corners, padding, output.data_ptr<scalar_t>());
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return shape.batched ? output : output.squeeze(0);
}

std::tuple<at::Tensor, at::Tensor> grid_sample3d_backward_cuda(
    const at::Tensor& grad_output_in, const at::Tensor& volume_in,
    const at::Tensor& points_in, bool align_corners,
    c10::string_view padding_mode, std::array<bool, 2> output_mask) {
  const auto padding = parse_grid_padding(padding_mode);
  const auto shape = check_grid_sample3d_inputs(volume_in, points_in);
  check_grid_sample3d_grad_output(grad_output_in, volume_in, shape);
  TORCH_CHECK(volume_in.is_cuda(), "volume must be a CUDA tensor, got ",
              volume_in.device());
  const c10::cuda::CUDAGuard device_guard(volume_in.device());
  const bool need_volume = output_mask[0];
  const bool need_points = output_mask[1];
  const auto options = volume_in.options();
  const auto points =
      points_in.reshape({shape.batch, shape.num_points, 3}).contiguous();
  const auto grad_output =
      grad_output_in
          .reshape({shape.batch, shape.num_points, shape.channels})
          .contiguous();
  const auto volume = need_points ? grid_sample3d_channels_last(volume_in, shape)
                                  : at::Tensor();
  auto grad_volume =
      need_volume ? at::zeros({shape.batch, shape.depth, shape.height,
                               shape.width, shape.channels},
                              options)
                  : at::Tensor();
  auto grad_points = need_points ? at::zeros({shape.batch, shape.num_points, 3},
                                             options)
                                 : at::Tensor();
  const int64_t total = shape.batch * shape.num_points;
  if (total > 0 && shape.channels > 0 && (need_volume || need_points)) {
    const auto stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES(volume_in.scalar_type(), "grid_sample3d_backward_cuda", [&] {
      grid_sample3d_backward_kernel<scalar_t>
          <<<KD_CUDA_BLOCKS(total), KD_CUDA_THREADS, 0, stream>>>(
              need_points ? volume.data_ptr<scalar_t>() : nullptr,
              points.data_ptr<scalar_t>(), grad_output.data_ptr<scalar_t>(),
              shape, align_corners, padding,
              need_volume ? grad_volume.data_ptr<scalar_t>() : nullptr,
              need_points ? grad_points.data_ptr<scalar_t>() : nullptr);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {need_volume ? grid_sample3d_volume_from_channels_last(grad_volume, shape)
                      : at::empty({0}, options),
          need_points ? (shape.batched ? grad_points : grad_points.squeeze(0))
                      : at::empty({0}, options)};
}

TORCH_LIBRARY_IMPL(pointkd, CUDA, m) {
  m.impl("grid_sample3d", &grid_sample3d_cuda);
  m.impl("grid_sample3d_backward", &grid_sample3d_backward_cuda);
}

}  // namespace pointkd
