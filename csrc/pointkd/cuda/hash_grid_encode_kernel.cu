// CUDA kernels of pointkd::hash_grid_encode: grids over the shared
// per-(point, level) logic, one thread per (point, level).
//
// Thread index = level * N + point: consecutive threads take consecutive
// points of one level, so they read the points coalesced and share one
// level's table in cache. The level table travels by value as a kernel
// argument.
//
// Backward: grad_embeddings rows are shared between points and grad_points
// rows between levels, so both are accumulated with atomicAdd; unlike the CPU
// kernel, the summation order (hence the last bits of both gradients) varies
// from run to run.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/Atomic.cuh>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../../common/cuda_atomic.cuh"
#include "../hash_grid_encode.h"
#include "../hash_grid_encode_common.h"

namespace pointkd {
namespace {

using geokd::AtomicAdd;

template <typename scalar_t>
__global__ void hash_grid_encode_forward_kernel(
    const scalar_t* __restrict__ points,
    const scalar_t* __restrict__ embeddings, HashGridLevels levels,
    int64_t num_points, int64_t features, scalar_t* __restrict__ output) {
  const int64_t columns = levels.num_levels * features;
  KD_CUDA_KERNEL_LOOP(index, levels.num_levels * num_points) {
    const int64_t l = index / num_points;
    const int64_t i = index - l * num_points;
    hash_grid_encode_point_level(levels.level[l], points + 3 * i, embeddings,
                                 features, output + i * columns + l * features);
  }
}

template <typename scalar_t>
__global__ void hash_grid_encode_backward_kernel(
    const scalar_t* __restrict__ points,
    const scalar_t* __restrict__ embeddings,
    const scalar_t* __restrict__ grad_output, HashGridLevels levels,
    int64_t num_points, int64_t features,
    scalar_t* __restrict__ grad_embeddings, scalar_t* __restrict__ grad_points) {
  const int64_t columns = levels.num_levels * features;
  KD_CUDA_KERNEL_LOOP(index, levels.num_levels * num_points) {
    const int64_t l = index / num_points;
    const int64_t i = index - l * num_points;
    scalar_t grad_point[3] = {0, 0, 0};
    hash_grid_backward_point_level(
        levels.level[l], points + 3 * i, embeddings,
        grad_output + i * columns + l * features, features, grad_embeddings,
        grad_points == nullptr ? nullptr : grad_point, AtomicAdd<scalar_t>{});
    if (grad_points != nullptr) {
      for (int a = 0; a < 3; ++a) gpuAtomicAdd(grad_points + 3 * i + a, grad_point[a]);
    }
  }
}

}  // namespace

at::Tensor hash_grid_encode_cuda(const at::Tensor& points_in,
                                 const at::Tensor& embeddings_in,
                                 c10::IntArrayRef resolutions,
                                 int64_t log2_table_size) {
  const auto levels = make_hash_grid_levels(resolutions, log2_table_size);
  check_hash_grid_encode_inputs(points_in, embeddings_in, levels, log2_table_size);
  TORCH_CHECK(points_in.is_cuda(), "points must be a CUDA tensor, got ",
              points_in.device());
  const c10::cuda::CUDAGuard device_guard(points_in.device());
  check_hash_grid_encode_points_finite(points_in);
  const auto points = points_in.contiguous();
  const auto embeddings = embeddings_in.contiguous();
  const int64_t num_points = points.size(0);
  const int64_t features = embeddings.size(1);
  auto output = at::empty({num_points, levels.num_levels * features},
                          embeddings.options());
  const int64_t total = levels.num_levels * num_points;
  if (total > 0) {
    const auto stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "hash_grid_encode_cuda", [&] {
      hash_grid_encode_forward_kernel<scalar_t>
          <<<KD_CUDA_BLOCKS(total), KD_CUDA_THREADS, 0, stream>>>(
              points.data_ptr<scalar_t>(), embeddings.data_ptr<scalar_t>(),
              levels, num_points, features, output.data_ptr<scalar_t>());
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return output;
}

std::tuple<at::Tensor, at::Tensor> hash_grid_encode_backward_cuda(
    const at::Tensor& grad_output_in, const at::Tensor& points_in,
    const at::Tensor& embeddings_in, c10::IntArrayRef resolutions,
    int64_t log2_table_size, std::array<bool, 2> output_mask) {
  const auto levels = make_hash_grid_levels(resolutions, log2_table_size);
  check_hash_grid_encode_inputs(points_in, embeddings_in, levels, log2_table_size);
  check_hash_grid_encode_grad_output(grad_output_in, points_in, embeddings_in,
                                     levels);
  TORCH_CHECK(points_in.is_cuda(), "points must be a CUDA tensor, got ",
              points_in.device());
  const c10::cuda::CUDAGuard device_guard(points_in.device());
  const bool need_embeddings = output_mask[0];
  const bool need_points = output_mask[1];
  const auto options = embeddings_in.options();
  const auto points = points_in.contiguous();
  const auto grad_output = grad_output_in.contiguous();
  const int64_t num_points = points.size(0);
  const int64_t features = embeddings_in.size(1);
  const auto embeddings = need_points ? embeddings_in.contiguous() : at::Tensor();
  auto grad_embeddings = need_embeddings ? at::zeros_like(
                                               embeddings_in, at::MemoryFormat::Contiguous)
                                         : at::empty({0}, options);
  auto grad_points = need_points ? at::zeros({num_points, 3}, options)
                                 : at::empty({0}, options);
  const int64_t total = levels.num_levels * num_points;
  if (total > 0 && (need_embeddings || need_points)) {
    const auto stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "hash_grid_encode_backward_cuda", [&] {
      hash_grid_encode_backward_kernel<scalar_t>
          <<<KD_CUDA_BLOCKS(total), KD_CUDA_THREADS, 0, stream>>>(
              points.data_ptr<scalar_t>(),
              need_points ? embeddings.data_ptr<scalar_t>() : nullptr,
              grad_output.data_ptr<scalar_t>(), levels, num_points, features,
              need_embeddings ? grad_embeddings.data_ptr<scalar_t>() : nullptr,
              need_points ? grad_points.data_ptr<scalar_t>() : nullptr);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {grad_embeddings, grad_points};
}

TORCH_LIBRARY_IMPL(pointkd, CUDA, m) {
  m.impl("hash_grid_encode", &hash_grid_encode_cuda);
  m.impl("hash_grid_encode_backward", &hash_grid_encode_backward_cuda);
}

}  // namespace pointkd
