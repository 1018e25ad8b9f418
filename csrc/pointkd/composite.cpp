// Schema and input checks of pointkd::composite and its backward.
#include "composite.h"

#include <cmath>

#include <ATen/ATen.h>
#include <torch/library.h>

#include "../common/macros.h"

namespace pointkd {
namespace {

void check_samples_vector(const at::Tensor& tensor, const at::Tensor& sigmas,
                          const char* name) {
  TORCH_CHECK(tensor.dim() == 1 && tensor.size(0) == sigmas.size(0), name,
              " must be of shape [S] with S = ", sigmas.size(0),
              " (the length of sigmas), got ", ::geokd::describe(tensor));
  TORCH_CHECK(tensor.scalar_type() == sigmas.scalar_type() &&
                  tensor.device() == sigmas.device(),
              name, " must have the dtype and device of sigmas (",
              c10::toString(sigmas.scalar_type()), " on ", sigmas.device(),
              "), got ", ::geokd::describe(tensor));
}

void check_finite(const at::Tensor& tensor, const char* name,
                  bool non_negative) {
  if (tensor.numel() == 0) return;
  TORCH_CHECK(at::isfinite(tensor).all().item<bool>(), name,
              " must be finite, got NaN or inf");
  if (non_negative) {
    TORCH_CHECK((tensor >= 0).all().item<bool>(), name,
                " must be >= 0, got min ", tensor.min().item<double>());
  }
}

}  // namespace

CompositeShape check_composite_inputs(const at::Tensor& sigmas,
                                      const at::Tensor& rgbs,
                                      const at::Tensor& deltas,
                                      const at::Tensor& ts,
                                      const at::Tensor& ray_offsets,
                                      double transmittance_threshold,
                                      bool check_values) {
  KD_CHECK_ARG(sigmas.dim() == 1 && (sigmas.scalar_type() == at::kFloat ||
                                     sigmas.scalar_type() == at::kDouble),
               sigmas, "sigmas", "a float32 or float64 tensor of shape [S]");
  KD_CHECK_ARG(rgbs.dim() == 2 && rgbs.size(0) == sigmas.size(0), rgbs,
               "rgbs", "of shape [S, C] with S the length of sigmas");
  TORCH_CHECK(rgbs.scalar_type() == sigmas.scalar_type() &&
                  rgbs.device() == sigmas.device(),
              "rgbs must have the dtype and device of sigmas (",
              c10::toString(sigmas.scalar_type()), " on ", sigmas.device(),
              "), got ", ::geokd::describe(rgbs));
  check_samples_vector(deltas, sigmas, "deltas");
  check_samples_vector(ts, sigmas, "ts");
  KD_CHECK_ARG(ray_offsets.dim() == 1 && ray_offsets.size(0) >= 1 &&
                   ray_offsets.scalar_type() == at::kLong,
               ray_offsets, "ray_offsets", "an int64 tensor of shape [R + 1]");
  TORCH_CHECK(ray_offsets.device() == sigmas.device(),
              "ray_offsets must be on the device of sigmas (", sigmas.device(),
              "), got ", ::geokd::describe(ray_offsets));
  TORCH_CHECK(std::isfinite(transmittance_threshold) &&
                  transmittance_threshold >= 0,
              "transmittance_threshold must be finite and >= 0, got ",
              transmittance_threshold);
  CompositeShape shape;
  shape.num_samples = sigmas.size(0);
  shape.num_rays = ray_offsets.size(0) - 1;
  shape.channels = rgbs.size(1);
  // The layout decides every read: checked on every call, backward included.
  const int64_t first = ray_offsets[0].item<int64_t>();
  const int64_t last = ray_offsets[shape.num_rays].item<int64_t>();
  TORCH_CHECK(first == 0, "ray_offsets must start at 0, got ray_offsets[0] = ",
              first);
  TORCH_CHECK(last == shape.num_samples,
              "ray_offsets must end at the number of samples S = ",
              shape.num_samples, ", got ray_offsets[", shape.num_rays,
              "] = ", last);
  if (shape.num_rays > 1) {
    const auto steps = ray_offsets.slice(0, 1) - ray_offsets.slice(0, 0, -1);
    TORCH_CHECK((steps >= 0).all().item<bool>(),
                "ray_offsets must be non-decreasing, but it decreases after "
                "ray_offsets[",
                (steps < 0).nonzero()[0][0].item<int64_t>(), "]");
  }
  if (check_values) {
    check_finite(sigmas, "sigmas", /*non_negative=*/true);
    check_finite(rgbs, "rgbs", /*non_negative=*/false);
    check_finite(deltas, "deltas", /*non_negative=*/true);
    check_finite(ts, "ts", /*non_negative=*/false);
  }
  return shape;
}

void check_composite_grads(const at::Tensor& grad_color,
                           const at::Tensor& grad_opacity,
                           const at::Tensor& grad_depth,
                           const at::Tensor& grad_weights,
                           const at::Tensor& sigmas,
                           const CompositeShape& shape) {
  const auto check = [&](const at::Tensor& grad, at::IntArrayRef expected,
                         const char* name) {
    TORCH_CHECK(grad.sizes() == expected, name, " must be of shape ",
                expected, ", got ", ::geokd::describe(grad));
    TORCH_CHECK(grad.scalar_type() == sigmas.scalar_type() &&
                    grad.device() == sigmas.device(),
                name, " must have the dtype and device of sigmas, got ",
                ::geokd::describe(grad));
  };
  check(grad_color, {shape.num_rays, shape.channels}, "grad_color");
  check(grad_opacity, {shape.num_rays}, "grad_opacity");
  check(grad_depth, {shape.num_rays}, "grad_depth");
  check(grad_weights, {shape.num_samples}, "grad_weights");
}

TORCH_LIBRARY_FRAGMENT(pointkd, m) {
  m.def(
      "composite(Tensor sigmas, Tensor rgbs, Tensor deltas, Tensor ts, "
      "Tensor ray_offsets, float transmittance_threshold=1e-4) -> "
      "(Tensor color, Tensor opacity, Tensor depth, Tensor weights)");
  m.def(
      "composite_backward(Tensor grad_color, Tensor grad_opacity, "
      "Tensor grad_depth, Tensor grad_weights, Tensor sigmas, Tensor rgbs, "
      "Tensor deltas, Tensor ts, Tensor ray_offsets, "
      "float transmittance_threshold, bool need_rgbs) -> "
      "(Tensor grad_sigmas, Tensor grad_rgbs)");
}

}  // namespace pointkd
