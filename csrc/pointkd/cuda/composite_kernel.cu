// CUDA kernels of pointkd::composite: one thread per ray over the shared
// per-ray logic (the samples of a ray form a running product).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../composite.h"
#include "../composite_common.h"

namespace pointkd {
namespace {

template <typename scalar_t>
__global__ void composite_forward_kernel(
    const scalar_t* __restrict__ sigmas, const scalar_t* __restrict__ rgbs,
    const scalar_t* __restrict__ deltas, const scalar_t* __restrict__ ts,
    const int64_t* __restrict__ offsets, int64_t num_rays, int64_t channels,
    scalar_t threshold, scalar_t* __restrict__ color,
    scalar_t* __restrict__ opacity, scalar_t* __restrict__ depth,
    scalar_t* __restrict__ weights) {
  KD_CUDA_KERNEL_LOOP(r, num_rays) {
    composite_ray_forward(sigmas, rgbs, deltas, ts, offsets[r], offsets[r + 1],
                          channels, threshold, color + r * channels,
                          opacity + r, depth + r, weights);
  }
}

template <typename scalar_t>
__global__ void composite_backward_kernel(
    const scalar_t* __restrict__ sigmas, const scalar_t* __restrict__ rgbs,
    const scalar_t* __restrict__ deltas, const scalar_t* __restrict__ ts,
    const int64_t* __restrict__ offsets, int64_t num_rays, int64_t channels,
    scalar_t threshold, const scalar_t* __restrict__ grad_color,
    const scalar_t* __restrict__ grad_opacity,
    const scalar_t* __restrict__ grad_depth,
    const scalar_t* __restrict__ grad_weights,
    scalar_t* __restrict__ grad_sigmas, scalar_t* __restrict__ grad_rgbs) {
  KD_CUDA_KERNEL_LOOP(r, num_rays) {
    composite_ray_backward(sigmas, rgbs, deltas, ts, offsets[r], offsets[r + 1],
                           channels, threshold, grad_color + r * channels,
                           grad_opacity[r], grad_depth[r], grad_weights,
                           grad_sigmas, grad_rgbs);
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> composite_cuda(
    const at::Tensor& sigmas_in, const at::Tensor& rgbs_in,
    const at::Tensor& deltas_in, const at::Tensor& ts_in,
    const at::Tensor& ray_offsets_in, double transmittance_threshold) {
  const auto shape = check_composite_inputs(sigmas_in, rgbs_in, deltas_in, ts_in,
                                            ray_offsets_in,
                                            transmittance_threshold, true);
  TORCH_CHECK(sigmas_in.is_cuda(), "sigmas must be a CUDA tensor, got ",
              sigmas_in.device());
  const c10::cuda::CUDAGuard device_guard(sigmas_in.device());
  const auto sigmas = sigmas_in.contiguous();
  const auto rgbs = rgbs_in.contiguous();
  const auto deltas = deltas_in.contiguous();
  const auto ts = ts_in.contiguous();
  const auto ray_offsets = ray_offsets_in.contiguous();
  const auto options = sigmas.options();
  auto color = at::empty({shape.num_rays, shape.channels}, options);
  auto opacity = at::empty({shape.num_rays}, options);
  auto depth = at::empty({shape.num_rays}, options);
  auto weights = at::empty({shape.num_samples}, options);
  if (shape.num_rays > 0) {
    const auto stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES(sigmas.scalar_type(), "composite_cuda", [&] {
      composite_forward_kernel<scalar_t>
          <<<KD_CUDA_BLOCKS(shape.num_rays), KD_CUDA_THREADS, 0, stream>>>(
              sigmas.data_ptr<scalar_t>(), rgbs.data_ptr<scalar_t>(),
              deltas.data_ptr<scalar_t>(), ts.data_ptr<scalar_t>(),
              ray_offsets.data_ptr<int64_t>(), shape.num_rays, shape.channels,
              static_cast<scalar_t>(transmittance_threshold),
              color.data_ptr<scalar_t>(), opacity.data_ptr<scalar_t>(),
              depth.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>());
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {color, opacity, depth, weights};
}

std::tuple<at::Tensor, at::Tensor> composite_backward_cuda(
    const at::Tensor& grad_color_in, const at::Tensor& grad_opacity_in,
    const at::Tensor& grad_depth_in, const at::Tensor& grad_weights_in,
    const at::Tensor& sigmas_in, const at::Tensor& rgbs_in,
    const at::Tensor& deltas_in, const at::Tensor& ts_in,
    const at::Tensor& ray_offsets_in, double transmittance_threshold,
    bool need_rgbs) {
  const auto shape = check_composite_inputs(sigmas_in, rgbs_in, deltas_in, ts_in,
                                            ray_offsets_in,
                                            transmittance_threshold, false);
  check_composite_grads(grad_color_in, grad_opacity_in, grad_depth_in,
                        grad_weights_in, sigmas_in, shape);
  TORCH_CHECK(sigmas_in.is_cuda(), "sigmas must be a CUDA tensor, got ",
              sigmas_in.device());
  const c10::cuda::CUDAGuard device_guard(sigmas_in.device());
  const auto sigmas = sigmas_in.contiguous();
  const auto rgbs = rgbs_in.contiguous();
  const auto deltas = deltas_in.contiguous();
  const auto ts = ts_in.contiguous();
  const auto ray_offsets = ray_offsets_in.contiguous();
  const auto grad_color = grad_color_in.contiguous();
  const auto grad_opacity = grad_opacity_in.contiguous();
  const auto grad_depth = grad_depth_in.contiguous();
  const auto grad_weights = grad_weights_in.contiguous();
  const auto options = sigmas.options();
  auto grad_sigmas = at::empty({shape.num_samples}, options);
  auto grad_rgbs = need_rgbs ? at::empty({shape.num_samples, shape.channels}, options)
                             : at::empty({0}, options);
  if (shape.num_rays > 0) {
    const auto stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES(sigmas.scalar_type(), "composite_backward_cuda", [&] {
      composite_backward_kernel<scalar_t>
          <<<KD_CUDA_BLOCKS(shape.num_rays), KD_CUDA_THREADS, 0, stream>>>(
              sigmas.data_ptr<scalar_t>(), rgbs.data_ptr<scalar_t>(),
              deltas.data_ptr<scalar_t>(), ts.data_ptr<scalar_t>(),
              ray_offsets.data_ptr<int64_t>(), shape.num_rays, shape.channels,
              static_cast<scalar_t>(transmittance_threshold),
              grad_color.data_ptr<scalar_t>(), grad_opacity.data_ptr<scalar_t>(),
              grad_depth.data_ptr<scalar_t>(), grad_weights.data_ptr<scalar_t>(),
              grad_sigmas.data_ptr<scalar_t>(),
              need_rgbs ? grad_rgbs.data_ptr<scalar_t>() : nullptr);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {grad_sigmas, grad_rgbs};
}

TORCH_LIBRARY_IMPL(pointkd, CUDA, m) {
  m.impl("composite", &composite_cuda);
  m.impl("composite_backward", &composite_backward_cuda);
}

}  // namespace pointkd
