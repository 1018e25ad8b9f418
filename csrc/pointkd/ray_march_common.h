// Per-ray logic of pointkd::ray_march, shared by the CPU and CUDA kernels.
//
// A ray o + t d meets the box [lo, hi] over [t_min, t_max] (slab method);
// clipped to [near, far] this gives [t_start, t_end). Candidate samples sit at
//   t_k = t_start + (k + 0.5) * step,   k = 0 .. max_samples - 1,
// and a candidate is kept when t_k < t_end and the occupancy cell holding
// o + t_k d is set (when there is a grid). Both passes (count, then fill)
// run this same loop, so the counts and the written samples agree exactly.
//
// The arithmetic is written operation by operation as the pure-torch
// reference does it, so that on the CPU both agree bit for bit.
#pragma once

#include <cmath>
#include <cstdint>

#include "../common/macros.h"

namespace pointkd {

template <typename scalar_t>
struct RayMarchBox {
  scalar_t lo[3], hi[3];
  scalar_t near_plane, far_plane, step;
  int64_t max_samples;
  int64_t grid[3];  // occupancy resolution (x, y, z); unused without grid
};

// [t_start, t_end) of the ray inside the box and [near, far]; empty when
// t_start >= t_end. A direction component of 0 makes that slab all or nothing.
template <typename scalar_t>
KD_HD void ray_march_interval(const scalar_t* origin, const scalar_t* direction,
                              const RayMarchBox<scalar_t>& box,
                              scalar_t* t_start, scalar_t* t_end) {
  scalar_t enter = box.near_plane;
  scalar_t leave = box.far_plane;
  for (int axis = 0; axis < 3; ++axis) {
    const scalar_t o = origin[axis];
    const scalar_t d = direction[axis];
    if (d == scalar_t(0)) {
      if (o < box.lo[axis] || o > box.hi[axis]) {
        leave = enter;  // parallel to the slab and outside it
      }
      continue;
    }
    const scalar_t t_lo = (box.lo[axis] - o) / d;
    const scalar_t t_hi = (box.hi[axis] - o) / d;
    const scalar_t first = t_lo < t_hi ? t_lo : t_hi;
    const scalar_t second = t_lo < t_hi ? t_hi : t_lo;
    enter = enter > first ? enter : first;
    leave = leave < second ? leave : second;
  }
  *t_start = enter;
  *t_end = leave;
}

// Occupancy cell index along one axis of a point inside the box (up to
// rounding), clamped to [0, size - 1] before the cast to an integer.
template <typename scalar_t>
KD_HD int64_t ray_march_cell(scalar_t coordinate, scalar_t lo, scalar_t hi,
                             int64_t size) {
#ifdef __CUDA_ARCH__
  scalar_t cell = ::floor((coordinate - lo) / (hi - lo) * static_cast<scalar_t>(size));
#else
  scalar_t cell = std::floor((coordinate - lo) / (hi - lo) * static_cast<scalar_t>(size));
#endif
  const scalar_t last = static_cast<scalar_t>(size - 1);
  cell = cell < scalar_t(0) ? scalar_t(0) : cell;
  cell = cell > last ? last : cell;
  return static_cast<int64_t>(cell);
}

// Marches one ray. occupancy (x-major, [Gx, Gy, Gz]) may be null. With
// ts == nullptr only counts; otherwise writes the kept samples at ts[0..n),
// deltas[0..n), positions[0..3n). Returns n.
template <typename scalar_t>
KD_HD int64_t ray_march_ray(const scalar_t* origin, const scalar_t* direction,
                            const RayMarchBox<scalar_t>& box,
                            const uint8_t* occupancy, scalar_t* ts,
                            scalar_t* deltas, scalar_t* positions) {
  scalar_t t_start, t_end;
  ray_march_interval(origin, direction, box, &t_start, &t_end);
  if (!(t_start < t_end)) return 0;
  int64_t count = 0;
  for (int64_t k = 0; k < box.max_samples; ++k) {
    const scalar_t t =
        t_start + (static_cast<scalar_t>(k) + scalar_t(0.5)) * box.step;
    if (!(t < t_end)) break;
    const scalar_t x = origin[0] + t * direction[0];
    const scalar_t y = origin[1] + t * direction[1];
    const scalar_t z = origin[2] + t * direction[2];
    if (occupancy != nullptr) {
      const int64_t ix = ray_march_cell(x, box.lo[0], box.hi[0], box.grid[0]);
      const int64_t iy = ray_march_cell(y, box.lo[1], box.hi[1], box.grid[1]);
      const int64_t iz = ray_march_cell(z, box.lo[2], box.hi[2], box.grid[2]);
      if (occupancy[(ix * box.grid[1] + iy) * box.grid[2] + iz] == 0) continue;
    }
    if (ts != nullptr) {
      ts[count] = t;
      deltas[count] = box.step;
      positions[3 * count] = x;
      positions[3 * count + 1] = y;
      positions[3 * count + 2] = z;
    }
    ++count;
  }
  return count;
}

}  // namespace pointkd
