// Per-element logic of resample_volume, shared by the CPU and CUDA kernels:
// the map from an output sample to its normalized coordinate in the source
// volume, one axis at a time. The sampling itself (index mapping, padding,
// trilinear weights, their scatter in the backward) is grid_sample3d's, from
// grid_sample3d_common.h, applied to one [D, H, W] channel slice at a time
// (a channels-last volume of one channel), so that the two ops cannot drift
// apart.
#pragma once

#include <cstdint>

#include "../common/macros.h"
#include "grid_sample3d_common.h"

namespace pointkd {

// Output index n along one axis -> normalized source coordinate
//   u(n) = scale * n + shift,
// evaluated in double whatever the dtype: the positions of a float32 call
// then differ from those of a float64 call by the final rounding only.
struct ResampleAxisMap {
  double scale;
  double shift;
};

// Output sample n of out_size along an axis sits, within [dst_min, dst_max],
// at the world position
//   align_corners:  dst_min + n (dst_max - dst_min) / (out_size - 1)
//                   (the centre of the box when out_size == 1),
//   otherwise:      dst_min + (n + 1/2) (dst_max - dst_min) / out_size,
// which maps into the normalized coordinates of [src_min, src_max] as
//   u = 2 (world - src_min) / (src_max - src_min) - 1.
// The boxes are checked (finite, min < max) before this is called.
KD_HD ResampleAxisMap resample_axis_map(int64_t out_size, double dst_min,
                                        double dst_max, double src_min,
                                        double src_max, bool align_corners) {
  double step;
  double first;
  if (align_corners) {
    step = out_size > 1 ? (dst_max - dst_min) / static_cast<double>(out_size - 1) : 0.0;
    first = out_size > 1 ? dst_min : dst_min + (dst_max - dst_min) / 2;
  } else {
    step = (dst_max - dst_min) / static_cast<double>(out_size);
    first = dst_min + step / 2;
  }
  const double to_unit = 2 / (src_max - src_min);
  ResampleAxisMap map;
  map.scale = step * to_unit;
  map.shift = (first - src_min) * to_unit - 1;
  return map;
}

// Everything the per-element functions need; plain values, passed by value
// to the CUDA kernels.
struct ResampleVolumeParams {
  int64_t depth, height, width;              // source samples along D, H, W
  int64_t out_depth, out_height, out_width;  // output samples along D, H, W
  ResampleAxisMap x, y, z;                   // x along W, y along H, z along D
  bool align_corners;
  GridPadding padding;
};

// The neighbours of output index n along one axis of `size` source samples.
template <typename scalar_t>
KD_HD GridAxis<scalar_t> resample_axis(const ResampleAxisMap& map, int64_t n,
                                       int64_t size, bool align_corners,
                                       GridPadding padding) {
  const scalar_t coord =
      static_cast<scalar_t>(map.scale * static_cast<double>(n) + map.shift);
  return grid_axis(coord, size, align_corners, padding);
}

template <typename scalar_t>
KD_HD GridAxis<scalar_t> resample_axis_z(const ResampleVolumeParams& p, int64_t k) {
  return resample_axis<scalar_t>(p.z, k, p.depth, p.align_corners, p.padding);
}

template <typename scalar_t>
KD_HD GridAxis<scalar_t> resample_axis_y(const ResampleVolumeParams& p, int64_t j) {
  return resample_axis<scalar_t>(p.y, j, p.height, p.align_corners, p.padding);
}

template <typename scalar_t>
KD_HD GridAxis<scalar_t> resample_axis_x(const ResampleVolumeParams& p, int64_t i) {
  return resample_axis<scalar_t>(p.x, i, p.width, p.align_corners, p.padding);
}

// The 2 x 2 x 2 source neighbourhood of output sample (k, j, i) (along D, H, W).
template <typename scalar_t>
KD_HD GridCell<scalar_t> resample_cell(const ResampleVolumeParams& p, int64_t k,
                                       int64_t j, int64_t i) {
  GridCell<scalar_t> cell;
  cell.x = resample_axis_x<scalar_t>(p, i);
  cell.y = resample_axis_y<scalar_t>(p, j);
  cell.z = resample_axis_z<scalar_t>(p, k);
  return cell;
}

// Forward of one output sample of one channel; `channel` is that channel's
// [D, H, W] slice of the volume, contiguous.
template <typename scalar_t>
KD_HD scalar_t resample_volume_sample(const GridCell<scalar_t>& cell,
                                      const scalar_t* KD_RESTRICT channel,
                                      const ResampleVolumeParams& p) {
  scalar_t value;
  grid_sample3d_point(cell, channel, p.height, p.width, /*channels=*/1,
                      /*c_begin=*/0, /*c_end=*/1, &value);
  return value;
}

// Backward of one output sample of one channel: adds w * grad to each of the
// (inside) corners of the cell in `grad_channel`, the channel's [D, H, W]
// slice of grad_volume, through `add` (a plain += on the CPU, whose kernel
// keeps threads on disjoint voxels, an atomicAdd on CUDA).
template <typename scalar_t, typename AddFn>
KD_HD void resample_volume_scatter(const GridCell<scalar_t>& cell, scalar_t grad,
                                   scalar_t* KD_RESTRICT grad_channel,
                                   const ResampleVolumeParams& p, AddFn add) {
  grid_sample3d_backward_point(cell, static_cast<const scalar_t*>(nullptr), &grad,
                               p.height, p.width, /*channels=*/1, grad_channel,
                               static_cast<scalar_t*>(nullptr), add);
}

}  // namespace pointkd
