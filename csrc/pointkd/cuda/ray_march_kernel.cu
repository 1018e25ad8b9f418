// CUDA kernel of pointkd::ray_march: one thread per ray, twice (count, then
// fill at the offsets from an inclusive cumsum of the counts), so the outputs
// are allocated at their exact size. The total is read back to the host once
// to size them.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../ray_march.h"
#include "../ray_march_common.h"

namespace pointkd {
namespace {

template <typename scalar_t>
__global__ void ray_march_count_kernel(const scalar_t* __restrict__ origins,
                                       const scalar_t* __restrict__ directions,
                                       RayMarchBox<scalar_t> box,
                                       const uint8_t* __restrict__ grid,
                                       int64_t num_rays,
                                       int64_t* __restrict__ counts) {
  KD_CUDA_KERNEL_LOOP(r, num_rays) {
    counts[r] = ray_march_ray<scalar_t>(origins + 3 * r, directions + 3 * r,
                                        box, grid, nullptr, nullptr, nullptr);
  }
}

template <typename scalar_t>
__global__ void ray_march_fill_kernel(const scalar_t* __restrict__ origins,
                                      const scalar_t* __restrict__ directions,
                                      RayMarchBox<scalar_t> box,
                                      const uint8_t* __restrict__ grid,
                                      int64_t num_rays,
                                      const int64_t* __restrict__ offsets,
                                      scalar_t* __restrict__ ts,
                                      scalar_t* __restrict__ deltas,
                                      scalar_t* __restrict__ positions) {
  KD_CUDA_KERNEL_LOOP(r, num_rays) {
    const int64_t first = offsets[r];
    ray_march_ray<scalar_t>(origins + 3 * r, directions + 3 * r, box, grid,
                            ts + first, deltas + first, positions + 3 * first);
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> ray_march_cuda(
    const at::Tensor& rays_o_in, const at::Tensor& rays_d_in,
    const at::Tensor& aabb, double near_plane, double far_plane,
    double step_size, int64_t max_samples,
    const c10::optional<at::Tensor>& occupancy) {
  const auto inputs = check_ray_march_inputs(rays_o_in, rays_d_in, aabb,
                                             near_plane, far_plane, step_size,
                                             max_samples, occupancy);
  TORCH_CHECK(rays_o_in.is_cuda(), "rays_o must be a CUDA tensor, got ",
              rays_o_in.device());
  const c10::cuda::CUDAGuard device_guard(rays_o_in.device());
  const auto rays_o = rays_o_in.contiguous();
  const auto rays_d = rays_d_in.contiguous();
  const int64_t num_rays = rays_o.size(0);
  const auto options = rays_o.options();
  auto ray_offsets = at::zeros({num_rays + 1}, options.dtype(at::kLong));
  at::Tensor ts, deltas, positions;
  AT_DISPATCH_FLOATING_TYPES(rays_o.scalar_type(), "ray_march_cuda", [&] {
    const auto box = make_ray_march_box<scalar_t>(inputs, near_plane, far_plane,
                                                  step_size, max_samples);
    const uint8_t* grid = inputs.occupancy.defined()
                              ? inputs.occupancy.data_ptr<uint8_t>()
                              : nullptr;
    const auto stream = at::cuda::getCurrentCUDAStream();
    if (num_rays > 0) {
      ray_march_count_kernel<scalar_t>
          <<<KD_CUDA_BLOCKS(num_rays), KD_CUDA_THREADS, 0, stream>>>(
              rays_o.data_ptr<scalar_t>(), rays_d.data_ptr<scalar_t>(), box,
              grid, num_rays, ray_offsets.data_ptr<int64_t>() + 1);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      ray_offsets.slice(0, 1).copy_(at::cumsum(ray_offsets.slice(0, 1), 0));
    }
    const int64_t num_samples = ray_offsets[num_rays].item<int64_t>();
    ts = at::empty({num_samples}, options);
    deltas = at::empty({num_samples}, options);
    positions = at::empty({num_samples, 3}, options);
    if (num_samples > 0) {
      ray_march_fill_kernel<scalar_t>
          <<<KD_CUDA_BLOCKS(num_rays), KD_CUDA_THREADS, 0, stream>>>(
              rays_o.data_ptr<scalar_t>(), rays_d.data_ptr<scalar_t>(), box,
              grid, num_rays, ray_offsets.data_ptr<int64_t>(),
              ts.data_ptr<scalar_t>(), deltas.data_ptr<scalar_t>(),
              positions.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return {ts, deltas, positions, ray_offsets};
}

TORCH_LIBRARY_IMPL(pointkd, CUDA, m) { m.impl("ray_march", &ray_march_cuda); }

}  // namespace pointkd
