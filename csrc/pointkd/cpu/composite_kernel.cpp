// CPU kernels of pointkd::composite: at::parallel_for over rays, each ray
// handled whole by one thread (its samples form a running product).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../composite.h"
#include "../composite_common.h"

namespace pointkd {
namespace {
constexpr int64_t kRayGrain = 64;
}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> composite_cpu(
    const at::Tensor& sigmas_in, const at::Tensor& rgbs_in,
    const at::Tensor& deltas_in, const at::Tensor& ts_in,
    const at::Tensor& ray_offsets_in, double transmittance_threshold) {
  const auto shape = check_composite_inputs(sigmas_in, rgbs_in, deltas_in, ts_in,
                                            ray_offsets_in,
                                            transmittance_threshold, true);
  TORCH_CHECK(sigmas_in.device().is_cpu(), "sigmas must be a CPU tensor, got ",
              sigmas_in.device());
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
  AT_DISPATCH_FLOATING_TYPES(sigmas.scalar_type(), "composite_cpu", [&] {
    const scalar_t* sigma_data = sigmas.data_ptr<scalar_t>();
    const scalar_t* rgb_data = rgbs.data_ptr<scalar_t>();
    const scalar_t* delta_data = deltas.data_ptr<scalar_t>();
    const scalar_t* t_data = ts.data_ptr<scalar_t>();
    const int64_t* offsets = ray_offsets.data_ptr<int64_t>();
    scalar_t* color_data = color.data_ptr<scalar_t>();
    scalar_t* opacity_data = opacity.data_ptr<scalar_t>();
    scalar_t* depth_data = depth.data_ptr<scalar_t>();
    scalar_t* weight_data = weights.data_ptr<scalar_t>();
    const auto threshold = static_cast<scalar_t>(transmittance_threshold);
    at::parallel_for(0, shape.num_rays, kRayGrain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        composite_ray_forward(sigma_data, rgb_data, delta_data, t_data,
                              offsets[r], offsets[r + 1], shape.channels,
                              threshold, color_data + r * shape.channels,
                              opacity_data + r, depth_data + r, weight_data);
      }
    });
  });
  return {color, opacity, depth, weights};
}

std::tuple<at::Tensor, at::Tensor> composite_backward_cpu(
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
  TORCH_CHECK(sigmas_in.device().is_cpu(), "sigmas must be a CPU tensor, got ",
              sigmas_in.device());
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
  AT_DISPATCH_FLOATING_TYPES(sigmas.scalar_type(), "composite_backward_cpu", [&] {
    const scalar_t* sigma_data = sigmas.data_ptr<scalar_t>();
    const scalar_t* rgb_data = rgbs.data_ptr<scalar_t>();
    const scalar_t* delta_data = deltas.data_ptr<scalar_t>();
    const scalar_t* t_data = ts.data_ptr<scalar_t>();
    const int64_t* offsets = ray_offsets.data_ptr<int64_t>();
    const scalar_t* grad_color_data = grad_color.data_ptr<scalar_t>();
    const scalar_t* grad_opacity_data = grad_opacity.data_ptr<scalar_t>();
    const scalar_t* grad_depth_data = grad_depth.data_ptr<scalar_t>();
    const scalar_t* grad_weight_data = grad_weights.data_ptr<scalar_t>();
    scalar_t* grad_sigma_data = grad_sigmas.data_ptr<scalar_t>();
    scalar_t* grad_rgb_data = need_rgbs ? grad_rgbs.data_ptr<scalar_t>() : nullptr;
    const auto threshold = static_cast<scalar_t>(transmittance_threshold);
    at::parallel_for(0, shape.num_rays, kRayGrain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        composite_ray_backward(
            sigma_data, rgb_data, delta_data, t_data, offsets[r],
            offsets[r + 1], shape.channels, threshold,
            grad_color_data + r * shape.channels, grad_opacity_data[r],
            grad_depth_data[r], grad_weight_data, grad_sigma_data,
            grad_rgb_data);
      }
    });
  });
  return {grad_sigmas, grad_rgbs};
}

TORCH_LIBRARY_IMPL(pointkd, CPU, m) {
  m.impl("composite", &composite_cpu);
  m.impl("composite_backward", &composite_backward_cpu);
}

}  // namespace pointkd
