// Schema and input checks of pointkd::ray_march.
#include "ray_march.h"

#include <cmath>

#include <ATen/ATen.h>
#include <torch/library.h>

#include "../common/macros.h"

namespace pointkd {

RayMarchInputs check_ray_march_inputs(const at::Tensor& rays_o,
                                      const at::Tensor& rays_d,
                                      const at::Tensor& aabb, double near_plane,
                                      double far_plane, double step_size,
                                      int64_t max_samples,
                                      const c10::optional<at::Tensor>& occupancy) {
  KD_CHECK_ARG(rays_o.dim() == 2 && rays_o.size(1) == 3 &&
                   (rays_o.scalar_type() == at::kFloat ||
                    rays_o.scalar_type() == at::kDouble),
               rays_o, "rays_o", "a float32 or float64 tensor of shape [R, 3]");
  TORCH_CHECK(rays_d.sizes() == rays_o.sizes(),
              "rays_d must have the shape of rays_o ([R, 3] with R = ",
              rays_o.size(0), "), got ", ::geokd::describe(rays_d));
  TORCH_CHECK(rays_d.scalar_type() == rays_o.scalar_type() &&
                  rays_d.device() == rays_o.device(),
              "rays_d must have the dtype and device of rays_o, got ",
              ::geokd::describe(rays_d));
  TORCH_CHECK(aabb.dim() == 1 && aabb.size(0) == 6 &&
                  aabb.scalar_type() == rays_o.scalar_type() &&
                  aabb.device() == rays_o.device(),
              "aabb must be a tensor of shape [6] (min x, y, z, max x, y, z) "
              "with the dtype and device of rays_o, got ",
              ::geokd::describe(aabb));
  TORCH_CHECK(!std::isnan(near_plane) && !std::isnan(far_plane) &&
                  near_plane <= far_plane && std::isfinite(near_plane),
              "near and far must satisfy near <= far with near finite, got "
              "near = ", near_plane, ", far = ", far_plane);
  TORCH_CHECK(std::isfinite(step_size) && step_size > 0,
              "step_size must be finite and > 0, got ", step_size);
  TORCH_CHECK(max_samples >= 0, "max_samples must be >= 0, got ", max_samples);
  if (rays_o.size(0) > 0) {
    TORCH_CHECK(at::isfinite(rays_o).all().item<bool>(),
                "rays_o must be finite, got NaN or inf");
    TORCH_CHECK(at::isfinite(rays_d).all().item<bool>(),
                "rays_d must be finite, got NaN or inf");
    const auto zero = (rays_d == 0).all(1);
    TORCH_CHECK(!zero.any().item<bool>(),
                "rays_d must have no zero-length direction, got one at rays_d[",
                zero.nonzero()[0][0].item<int64_t>(), "]");
  }
  RayMarchInputs inputs;
  const auto box = aabb.to(at::kCPU, at::kDouble);
  const double* values = box.data_ptr<double>();
  for (int axis = 0; axis < 3; ++axis) {
    inputs.lo[axis] = values[axis];
    inputs.hi[axis] = values[axis + 3];
    TORCH_CHECK(std::isfinite(values[axis]) && std::isfinite(values[axis + 3]) &&
                    values[axis] < values[axis + 3],
                "aabb must be finite with min < max on every axis, got axis ",
                axis, ": [", values[axis], ", ", values[axis + 3], "]");
  }
  if (occupancy.has_value() && occupancy->defined()) {
    const auto& grid = *occupancy;
    KD_CHECK_ARG(grid.dim() == 3 && grid.numel() > 0 &&
                     (grid.scalar_type() == at::kBool ||
                      grid.scalar_type() == at::kByte),
                 grid, "occupancy",
                 "a non-empty bool or uint8 tensor of shape [Gx, Gy, Gz]");
    TORCH_CHECK(grid.device() == rays_o.device(),
                "occupancy must be on the device of rays_o (", rays_o.device(),
                "), got ", ::geokd::describe(grid));
    // bool and uint8 share their bytes (0 or 1 for bool).
    inputs.occupancy = grid.contiguous();
    if (grid.scalar_type() == at::kBool) {
      inputs.occupancy = inputs.occupancy.view(at::kByte);
    }
    for (int axis = 0; axis < 3; ++axis) inputs.grid[axis] = grid.size(axis);
  }
  return inputs;
}

TORCH_LIBRARY_FRAGMENT(pointkd, m) {
  m.def(
      "ray_march(Tensor rays_o, Tensor rays_d, Tensor aabb, float near, "
      "float far, float step_size, int max_samples, Tensor? occupancy=None) "
      "-> (Tensor ts, Tensor deltas, Tensor positions, Tensor ray_offsets)");
}

}  // namespace pointkd
