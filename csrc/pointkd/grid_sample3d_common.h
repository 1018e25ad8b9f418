// Per-element logic of grid_sample3d, shared by the CPU and CUDA kernels:
// the index mapping, the padding, the trilinear weights and their derivatives.
// Written to agree with ATen's grid_sampler_3d (GridSampler.h) formula for
// formula, including its choice that a coordinate clamped by "border" padding
// (the border itself included) has zero gradient.
#pragma once

#include <cstdint>

#include "../common/macros.h"

#if defined(__CUDACC__) || defined(__HIPCC__)
#define KD_RESTRICT __restrict__
#else
#define KD_RESTRICT __restrict
#endif

namespace pointkd {

enum class GridPadding : int64_t { kZeros = 0, kBorder = 1 };

// One axis of a sample: its two neighbouring grid samples low and low + 1.
template <typename scalar_t>
struct GridAxis {
  int64_t low;          // index of the lower neighbour, in [-1, size - 1]
  scalar_t weight[2];   // interpolation weights of low and low + 1
  bool inside[2];       // whether low and low + 1 lie in [0, size)
  scalar_t scale;       // d(continuous index) / d(normalized coordinate)
};

// Maps a normalized coordinate to its neighbours along an axis of `size`
// samples:
//   align_corners:  index = (coord + 1) / 2 * (size - 1)
//   otherwise:      index = ((coord + 1) * size - 1) / 2
// With "border" the index is clamped to [0, size - 1]. With "zeros" an index
// outside (-1, size) has no neighbour inside and the axis is marked empty.
// NaN takes the empty (zeros) or clamped (border) path, so that whatever the
// input no index outside the volume is ever produced.
template <typename scalar_t>
KD_HD GridAxis<scalar_t> grid_axis(scalar_t coord, int64_t size,
                                   bool align_corners, GridPadding padding) {
  GridAxis<scalar_t> axis;
  scalar_t index;
  scalar_t scale;
  if (align_corners) {
    index = (coord + 1) / 2 * static_cast<scalar_t>(size - 1);
    scale = static_cast<scalar_t>(size - 1) / 2;
  } else {
    index = ((coord + 1) * static_cast<scalar_t>(size) - 1) / 2;
    scale = static_cast<scalar_t>(size) / 2;
  }
  if (padding == GridPadding::kBorder) {
    if (!(index > 0)) {
      index = 0;
      scale = 0;
    } else if (index >= static_cast<scalar_t>(size - 1)) {
      index = static_cast<scalar_t>(size - 1);
      scale = 0;
    }
  } else if (!(index > -1 && index < static_cast<scalar_t>(size))) {
    axis.low = 0;
    axis.weight[0] = axis.weight[1] = 0;
    axis.inside[0] = axis.inside[1] = false;
    axis.scale = 0;
    return axis;
  }
  // index lies in (-1, size): truncation cannot overflow, and one step down
  // for negative fractions makes it a floor.
  int64_t low = static_cast<int64_t>(index);
  if (static_cast<scalar_t>(low) > index) --low;
  const scalar_t frac = index - static_cast<scalar_t>(low);
  axis.low = low;
  axis.weight[0] = 1 - frac;
  axis.weight[1] = frac;
  axis.inside[0] = low >= 0;
  axis.inside[1] = low + 1 < size;
  axis.scale = scale;
  return axis;
}

// The 2 x 2 x 2 neighbourhood of a point (x, y, z): x along W, y along H,
// z along D. Corner (dx, dy, dz) is the voxel (z.low + dz, y.low + dy,
// x.low + dx) with weight
//   w = z.weight[dz] * y.weight[dy] * x.weight[dx]
// and dw/dx = z.weight[dz] * y.weight[dy] * (dx ? 1 : -1) * x.scale (likewise
// for y and z); corners outside the volume are skipped (read as zero).
template <typename scalar_t>
struct GridCell {
  GridAxis<scalar_t> x, y, z;
};

template <typename scalar_t>
KD_HD GridCell<scalar_t> grid_cell(const scalar_t* point, int64_t depth,
                                   int64_t height, int64_t width,
                                   bool align_corners, GridPadding padding) {
  GridCell<scalar_t> cell;
  cell.x = grid_axis(point[0], width, align_corners, padding);
  cell.y = grid_axis(point[1], height, align_corners, padding);
  cell.z = grid_axis(point[2], depth, align_corners, padding);
  return cell;
}

// Whether no corner of the cell lies inside the volume (the sample is 0 and
// has zero gradient).
template <typename scalar_t>
KD_HD bool grid_cell_empty(const GridCell<scalar_t>& cell) {
  return !(cell.x.inside[0] || cell.x.inside[1]) ||
         !(cell.y.inside[0] || cell.y.inside[1]) ||
         !(cell.z.inside[0] || cell.z.inside[1]);
}

// Flat voxel index of corner (dx, dy, dz) in a [D, H, W] grid.
template <typename scalar_t>
KD_HD int64_t grid_corner_voxel(const GridCell<scalar_t>& cell, int dx, int dy,
                                int dz, int64_t height, int64_t width) {
  return ((cell.z.low + dz) * height + cell.y.low + dy) * width + cell.x.low +
         dx;
}

// Forward of one point for channels [c_begin, c_end):
//   out[c - c_begin] = sum over corners of w * volume[corner, c]
// volume is one batch in [D, H, W, C] (channels last), so each corner is one
// contiguous run of channels: corner-major order keeps the inner loop a
// vectorizable axpy on the CPU, and consecutive threads on consecutive
// channels read coalesced on CUDA.
template <typename scalar_t>
KD_HD void grid_sample3d_point(const GridCell<scalar_t>& cell,
                               const scalar_t* KD_RESTRICT volume,
                               int64_t height, int64_t width, int64_t channels,
                               int64_t c_begin, int64_t c_end,
                               scalar_t* KD_RESTRICT out) {
  for (int64_t c = c_begin; c < c_end; ++c) out[c - c_begin] = 0;
  for (int dz = 0; dz < 2; ++dz) {
    if (!cell.z.inside[dz]) continue;
    for (int dy = 0; dy < 2; ++dy) {
      if (!cell.y.inside[dy]) continue;
      const scalar_t weight_zy = cell.z.weight[dz] * cell.y.weight[dy];
      for (int dx = 0; dx < 2; ++dx) {
        if (!cell.x.inside[dx]) continue;
        const scalar_t weight = weight_zy * cell.x.weight[dx];
        const scalar_t* KD_RESTRICT corner =
            volume + grid_corner_voxel(cell, dx, dy, dz, height, width) * channels;
        for (int64_t c = c_begin; c < c_end; ++c) {
          out[c - c_begin] += weight * corner[c];
        }
      }
    }
  }
}

// sum_c a[c] * b[c] over 8 interleaved partial sums: a plain loop is one
// chain of dependent additions (the compiler may not reorder float sums),
// which made the points' gradient latency-bound on the CPU.
template <typename scalar_t>
KD_HD scalar_t grid_dot(const scalar_t* KD_RESTRICT a,
                        const scalar_t* KD_RESTRICT b, int64_t n) {
  scalar_t partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) {
    for (int j = 0; j < 8; ++j) partial[j] += a[c + j] * b[c + j];
  }
  for (; c < n; ++c) partial[0] += a[c] * b[c];
  return ((partial[0] + partial[1]) + (partial[2] + partial[3])) +
         ((partial[4] + partial[5]) + (partial[6] + partial[7]));
}

// Backward of one point, all channels. grad_row is the point's [C] row of
// grad_output. Either output may be skipped by passing nullptr:
//   grad_volume[corner, c] += w * grad_row[c]            (through add)
//   grad_point[a] = sum over corners and c of grad_row[c] * volume[corner, c]
//                   * dw/d(point[a])
// `add(address, value)` is `*address += value` on the CPU, where the caller
// keeps threads on disjoint voxels, and an atomicAdd on CUDA.
template <typename scalar_t, typename AddFn>
KD_HD void grid_sample3d_backward_point(const GridCell<scalar_t>& cell,
                                        const scalar_t* KD_RESTRICT volume,
                                        const scalar_t* KD_RESTRICT grad_row,
                                        int64_t height, int64_t width,
                                        int64_t channels,
                                        scalar_t* KD_RESTRICT grad_volume,
                                        scalar_t* grad_point, AddFn add) {
  scalar_t grad_x = 0, grad_y = 0, grad_z = 0;
  for (int dz = 0; dz < 2; ++dz) {
    if (!cell.z.inside[dz]) continue;
    const scalar_t sign_z = dz ? scalar_t(1) : scalar_t(-1);
    for (int dy = 0; dy < 2; ++dy) {
      if (!cell.y.inside[dy]) continue;
      const scalar_t sign_y = dy ? scalar_t(1) : scalar_t(-1);
      for (int dx = 0; dx < 2; ++dx) {
        if (!cell.x.inside[dx]) continue;
        const scalar_t sign_x = dx ? scalar_t(1) : scalar_t(-1);
        const int64_t offset =
            grid_corner_voxel(cell, dx, dy, dz, height, width) * channels;
        if (grad_volume != nullptr) {
          const scalar_t weight =
              cell.z.weight[dz] * cell.y.weight[dy] * cell.x.weight[dx];
          scalar_t* KD_RESTRICT target = grad_volume + offset;
          for (int64_t c = 0; c < channels; ++c) {
            add(target + c, weight * grad_row[c]);
          }
        }
        if (grad_point != nullptr) {
          const scalar_t dot = grid_dot(grad_row, volume + offset, channels);
          grad_x += dot * cell.z.weight[dz] * cell.y.weight[dy] * sign_x;
          grad_y += dot * cell.z.weight[dz] * sign_y * cell.x.weight[dx];
          grad_z += dot * sign_z * cell.y.weight[dy] * cell.x.weight[dx];
        }
      }
    }
  }
  if (grad_point != nullptr) {
    grad_point[0] = grad_x * cell.x.scale;
    grad_point[1] = grad_y * cell.y.scale;
    grad_point[2] = grad_z * cell.z.scale;
  }
}

}  // namespace pointkd
