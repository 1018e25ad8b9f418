// CPU kernel of pointkd::ray_march: two at::parallel_for passes over rays
// (count, then fill at the prefix-summed offsets), so the outputs are
// allocated at their exact size.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../ray_march.h"
#include "../ray_march_common.h"

namespace pointkd {
namespace {
constexpr int64_t kRayGrain = 256;
}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> ray_march_cpu(
    const at::Tensor& rays_o_in, const at::Tensor& rays_d_in,
    const at::Tensor& aabb, double near_plane, double far_plane,
    double step_size, int64_t max_samples,
    const c10::optional<at::Tensor>& occupancy) {
  const auto inputs = check_ray_march_inputs(rays_o_in, rays_d_in, aabb,
                                             near_plane, far_plane, step_size,
                                             max_samples, occupancy);
  TORCH_CHECK(rays_o_in.device().is_cpu(), "rays_o must be a CPU tensor, got ",
              rays_o_in.device());
  const auto rays_o = rays_o_in.contiguous();
  const auto rays_d = rays_d_in.contiguous();
  const int64_t num_rays = rays_o.size(0);
  const auto options = rays_o.options();
  auto ray_offsets = at::zeros({num_rays + 1}, options.dtype(at::kLong));
  at::Tensor ts, deltas, positions;
  AT_DISPATCH_FLOATING_TYPES(rays_o.scalar_type(), "ray_march_cpu", [&] {
    const auto box = make_ray_march_box<scalar_t>(inputs, near_plane, far_plane,
                                                  step_size, max_samples);
    const scalar_t* origins = rays_o.data_ptr<scalar_t>();
    const scalar_t* directions = rays_d.data_ptr<scalar_t>();
    const uint8_t* grid = inputs.occupancy.defined()
                              ? inputs.occupancy.data_ptr<uint8_t>()
                              : nullptr;
    int64_t* offsets = ray_offsets.data_ptr<int64_t>();
    at::parallel_for(0, num_rays, kRayGrain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        offsets[r + 1] = ray_march_ray<scalar_t>(
            origins + 3 * r, directions + 3 * r, box, grid, nullptr, nullptr,
            nullptr);
      }
    });
    for (int64_t r = 0; r < num_rays; ++r) offsets[r + 1] += offsets[r];
    const int64_t num_samples = offsets[num_rays];
    ts = at::empty({num_samples}, options);
    deltas = at::empty({num_samples}, options);
    positions = at::empty({num_samples, 3}, options);
    scalar_t* t_data = ts.data_ptr<scalar_t>();
    scalar_t* delta_data = deltas.data_ptr<scalar_t>();
    scalar_t* position_data = positions.data_ptr<scalar_t>();
    at::parallel_for(0, num_rays, kRayGrain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t first = offsets[r];
        ray_march_ray<scalar_t>(origins + 3 * r, directions + 3 * r, box, grid,
                                t_data + first, delta_data + first,
                                position_data + 3 * first);
      }
    });
  });
  return {ts, deltas, positions, ray_offsets};
}

TORCH_LIBRARY_IMPL(pointkd, CPU, m) { m.impl("ray_march", &ray_march_cpu); }

}  // namespace pointkd
