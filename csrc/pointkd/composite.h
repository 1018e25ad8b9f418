// composite: NeRF volume rendering of packed samples (one run of samples per
// ray, CSR layout). The math and its derivation are in composite_common.h.
//
// composite(sigmas, rgbs, deltas, ts, ray_offsets, transmittance_threshold)
//     -> (color, opacity, depth, weights)
//   sigmas:  float32 or float64 [S], finite and >= 0 (densities).
//   rgbs:    sigmas' dtype and device, [S, C], finite.
//   deltas:  sigmas' dtype and device, [S], finite and >= 0 (step lengths).
//   ts:      sigmas' dtype and device, [S], finite (sample distances).
//   ray_offsets: int64 [R + 1] on sigmas' device, ray_offsets[0] = 0,
//           non-decreasing, ray_offsets[R] = S: ray r owns samples
//           [ray_offsets[r], ray_offsets[r + 1]).
//   transmittance_threshold: >= 0; a ray stops at its first sample whose
//           transmittance is below it (0: never).
//   color [R, C], opacity [R], depth [R], weights [S]: contiguous.
//
// composite_backward(grad_color, grad_opacity, grad_depth, grad_weights,
//                    sigmas, rgbs, deltas, ts, ray_offsets,
//                    transmittance_threshold, need_rgbs)
//     -> (grad_sigmas, grad_rgbs)
//   grad_*: the shapes of the outputs, sigmas' dtype and device.
//   grad_sigmas [S]; grad_rgbs [S, C] if need_rgbs, else an empty [0] tensor.
//   The values of the inputs are not re-checked (the forward did); their
//   shapes and ray_offsets are, so that nothing is read out of bounds.
#pragma once

#include <tuple>

#include <ATen/core/Tensor.h>

#include "composite_common.h"

namespace pointkd {

struct CompositeShape {
  int64_t num_samples, num_rays, channels;
};

// Shapes, dtypes, devices and the layout of ray_offsets (always); the values
// of sigmas, rgbs, deltas and ts when check_values.
CompositeShape check_composite_inputs(const at::Tensor& sigmas,
                                      const at::Tensor& rgbs,
                                      const at::Tensor& deltas,
                                      const at::Tensor& ts,
                                      const at::Tensor& ray_offsets,
                                      double transmittance_threshold,
                                      bool check_values);
void check_composite_grads(const at::Tensor& grad_color,
                           const at::Tensor& grad_opacity,
                           const at::Tensor& grad_depth,
                           const at::Tensor& grad_weights,
                           const at::Tensor& sigmas,
                           const CompositeShape& shape);

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> composite_cpu(
    const at::Tensor& sigmas, const at::Tensor& rgbs, const at::Tensor& deltas,
    const at::Tensor& ts, const at::Tensor& ray_offsets,
    double transmittance_threshold);
std::tuple<at::Tensor, at::Tensor> composite_backward_cpu(
    const at::Tensor& grad_color, const at::Tensor& grad_opacity,
    const at::Tensor& grad_depth, const at::Tensor& grad_weights,
    const at::Tensor& sigmas, const at::Tensor& rgbs, const at::Tensor& deltas,
    const at::Tensor& ts, const at::Tensor& ray_offsets,
    double transmittance_threshold, bool need_rgbs);

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> composite_cuda(
    const at::Tensor& sigmas, const at::Tensor& rgbs, const at::Tensor& deltas,
    const at::Tensor& ts, const at::Tensor& ray_offsets,
    double transmittance_threshold);
std::tuple<at::Tensor, at::Tensor> composite_backward_cuda(
    const at::Tensor& grad_color, const at::Tensor& grad_opacity,
    const at::Tensor& grad_depth, const at::Tensor& grad_weights,
    const at::Tensor& sigmas, const at::Tensor& rgbs, const at::Tensor& deltas,
    const at::Tensor& ts, const at::Tensor& ray_offsets,
    double transmittance_threshold, bool need_rgbs);

}  // namespace pointkd
