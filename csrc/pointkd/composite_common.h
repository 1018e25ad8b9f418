// Per-ray logic of pointkd::composite (NeRF volume rendering of packed
// samples), shared by the CPU and CUDA kernels.
//
// With s_i = sigma_i * delta_i, alpha_i = 1 - exp(-s_i),
// T_i = prod_{j<i} exp(-s_j) and w_i = T_i * alpha_i = T_i - T_{i+1}, a ray
// returns color = sum_i w_i c_i, opacity = sum_i w_i, depth = sum_i w_i t_i.
//
// Early termination: compositing stops at the first sample K whose T_K is
// below the threshold; samples K.. get weight 0 and zero gradient.
//
// Backward. Every output is linear in the weights, so with
//   v_i = <grad_color, c_i> + grad_opacity + grad_depth * t_i + grad_weights_i
// the loss reads L = sum_{i<K} w_i v_i (plus terms free of sigma). Since
// dw_j/ds_i = T_{i+1} for j = i, -w_j for j > i and 0 for j < i,
//   dL/ds_i = v_i T_{i+1} - sum_{i<j<K} w_j v_j,
// where the suffix sum is the ray total minus the running prefix: two O(n)
// passes over the ray, no extra memory. dL/dsigma_i = delta_i dL/ds_i and
// dL/dc_i = w_i grad_color. The cut index K is recomputed in the same order
// of operations as the forward, so both agree on it.
#pragma once

#include <cmath>
#include <cstdint>

#include "../common/macros.h"

namespace pointkd {

// exp and expm1 in scalar_t's own precision: the CUDA math overloads on the
// device, <cmath>'s on the host.
template <typename scalar_t>
KD_HD scalar_t composite_exp(scalar_t x) {
#ifdef __CUDA_ARCH__
  return ::exp(x);
#else
  return std::exp(x);
#endif
}

template <typename scalar_t>
KD_HD scalar_t composite_expm1(scalar_t x) {
#ifdef __CUDA_ARCH__
  return ::expm1(x);
#else
  return std::expm1(x);
#endif
}

// One ray, samples [begin, end). Writes color[0, channels), *opacity, *depth
// and weights[begin, end).
template <typename scalar_t>
KD_HD void composite_ray_forward(const scalar_t* sigmas, const scalar_t* rgbs,
                                 const scalar_t* deltas, const scalar_t* ts,
                                 int64_t begin, int64_t end, int64_t channels,
                                 scalar_t threshold, scalar_t* color,
                                 scalar_t* opacity, scalar_t* depth,
                                 scalar_t* weights) {
  for (int64_t c = 0; c < channels; ++c) color[c] = scalar_t(0);
  scalar_t transmittance(1), opacity_sum(0), depth_sum(0);
  int64_t i = begin;
  for (; i < end; ++i) {
    if (transmittance < threshold) break;
    const scalar_t optical = sigmas[i] * deltas[i];
    const scalar_t alpha = -composite_expm1(-optical);
    const scalar_t weight = transmittance * alpha;
    weights[i] = weight;
    for (int64_t c = 0; c < channels; ++c) {
      color[c] += weight * rgbs[i * channels + c];
    }
    opacity_sum += weight;
    depth_sum += weight * ts[i];
    transmittance *= composite_exp(-optical);
  }
  for (; i < end; ++i) weights[i] = scalar_t(0);
  *opacity = opacity_sum;
  *depth = depth_sum;
}

// v_i of the header comment. grad_color points at the ray's C values.
template <typename scalar_t>
KD_HD scalar_t composite_sample_value(const scalar_t* rgbs,
                                      const scalar_t* ts,
                                      const scalar_t* grad_color,
                                      scalar_t grad_opacity,
                                      scalar_t grad_depth,
                                      const scalar_t* grad_weights, int64_t i,
                                      int64_t channels) {
  scalar_t value = grad_opacity + grad_depth * ts[i] + grad_weights[i];
  for (int64_t c = 0; c < channels; ++c) {
    value += grad_color[c] * rgbs[i * channels + c];
  }
  return value;
}

// One ray, samples [begin, end). Writes grad_sigmas[begin, end) and, when
// grad_rgbs is not null, grad_rgbs[begin * C, end * C).
template <typename scalar_t>
KD_HD void composite_ray_backward(
    const scalar_t* sigmas, const scalar_t* rgbs, const scalar_t* deltas,
    const scalar_t* ts, int64_t begin, int64_t end, int64_t channels,
    scalar_t threshold, const scalar_t* grad_color, scalar_t grad_opacity,
    scalar_t grad_depth, const scalar_t* grad_weights, scalar_t* grad_sigmas,
    scalar_t* grad_rgbs) {
  // Pass 1: the cut index and the ray total sum_{i<K} w_i v_i.
  scalar_t transmittance(1), total(0);
  int64_t cut = begin;
  for (; cut < end; ++cut) {
    if (transmittance < threshold) break;
    const scalar_t optical = sigmas[cut] * deltas[cut];
    const scalar_t weight = transmittance * -composite_expm1(-optical);
    total += weight * composite_sample_value(rgbs, ts, grad_color,
                                             grad_opacity, grad_depth,
                                             grad_weights, cut, channels);
    transmittance *= composite_exp(-optical);
  }
  // Pass 2: gradients, with the suffix sum as total minus prefix.
  transmittance = scalar_t(1);
  scalar_t prefix(0);
  for (int64_t i = begin; i < cut; ++i) {
    const scalar_t optical = sigmas[i] * deltas[i];
    const scalar_t weight = transmittance * -composite_expm1(-optical);
    const scalar_t next = transmittance * composite_exp(-optical);
    const scalar_t value = composite_sample_value(
        rgbs, ts, grad_color, grad_opacity, grad_depth, grad_weights, i,
        channels);
    prefix += weight * value;
    grad_sigmas[i] = deltas[i] * (value * next - (total - prefix));
    if (grad_rgbs != nullptr) {
      for (int64_t c = 0; c < channels; ++c) {
        grad_rgbs[i * channels + c] = weight * grad_color[c];
      }
    }
    transmittance = next;
  }
  for (int64_t i = cut; i < end; ++i) {
    grad_sigmas[i] = scalar_t(0);
    if (grad_rgbs != nullptr) {
      for (int64_t c = 0; c < channels; ++c) grad_rgbs[i * channels + c] = scalar_t(0);
    }
  }
}

}  // namespace pointkd
