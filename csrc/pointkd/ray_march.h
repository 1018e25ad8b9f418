// ray_march: packed samples along rays through an axis-aligned box, skipping
// empty cells of an optional occupancy grid. The sampling rule is in
// ray_march_common.h.
//
// ray_march(rays_o, rays_d, aabb, near, far, step_size, max_samples,
//           occupancy) -> (ts, deltas, positions, ray_offsets)
//   rays_o:    float32 or float64 [R, 3], finite.
//   rays_d:    rays_o's dtype and device, [R, 3], finite, no zero vector (not
//              normalized: t is in units of |d|).
//   aabb:      rays_o's dtype and device, [6] = (min x, y, z, max x, y, z),
//              finite, min < max on every axis.
//   near, far: clipping of t, near <= far (far may be inf).
//   step_size: > 0, finite.  max_samples: >= 0 candidates per ray.
//   occupancy: optional bool or uint8 [Gx, Gy, Gz] on rays_o's device, cell
//              (i, j, k) covering the box's [i/Gx, (i+1)/Gx) slice along x,
//              etc.; nonzero = occupied.
//   ts [S], deltas [S] (all step_size), positions [S, 3]: contiguous, rays_o's
//   dtype; ray_offsets int64 [R + 1]: ray r owns [ray_offsets[r],
//   ray_offsets[r + 1]).
#pragma once

#include <tuple>

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include "ray_march_common.h"

namespace pointkd {

// Checks every input; returns the box parameters in scalar_t (as doubles,
// converted by the kernels) and the occupancy as contiguous uint8 (or an
// undefined tensor).
struct RayMarchInputs {
  double lo[3], hi[3];
  at::Tensor occupancy;
  int64_t grid[3] = {0, 0, 0};
};

RayMarchInputs check_ray_march_inputs(const at::Tensor& rays_o,
                                      const at::Tensor& rays_d,
                                      const at::Tensor& aabb, double near_plane,
                                      double far_plane, double step_size,
                                      int64_t max_samples,
                                      const c10::optional<at::Tensor>& occupancy);

template <typename scalar_t>
RayMarchBox<scalar_t> make_ray_march_box(const RayMarchInputs& inputs,
                                         double near_plane, double far_plane,
                                         double step_size, int64_t max_samples) {
  RayMarchBox<scalar_t> box;
  for (int axis = 0; axis < 3; ++axis) {
    box.lo[axis] = static_cast<scalar_t>(inputs.lo[axis]);
    box.hi[axis] = static_cast<scalar_t>(inputs.hi[axis]);
    box.grid[axis] = inputs.grid[axis];
  }
  box.near_plane = static_cast<scalar_t>(near_plane);
  box.far_plane = static_cast<scalar_t>(far_plane);
  box.step = static_cast<scalar_t>(step_size);
  box.max_samples = max_samples;
  return box;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> ray_march_cpu(
    const at::Tensor& rays_o, const at::Tensor& rays_d, const at::Tensor& aabb,
    double near_plane, double far_plane, double step_size, int64_t max_samples,
    const c10::optional<at::Tensor>& occupancy);
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> ray_march_cuda(
    const at::Tensor& rays_o, const at::Tensor& rays_d, const at::Tensor& aabb,
    double near_plane, double far_plane, double step_size, int64_t max_samples,
    const c10::optional<at::Tensor>& occupancy);

}  // namespace pointkd
