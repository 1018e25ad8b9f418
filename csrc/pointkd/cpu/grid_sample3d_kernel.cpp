// CPU kernels of pointkd::grid_sample3d: at::parallel_for over the shared
// per-point logic, on a channels-last copy of the volume so that each corner
// is one contiguous run of C values (one or two cache lines) instead of C
// scattered reads, which is what makes this faster than F.grid_sample.
//
// Both passes first counting-sort the points into buckets by the (z, y) grid
// row of their lower corner, (kz, ky) = (z.low + 1, y.low + 1), so that
// consecutive points touch neighbouring voxels: for random points in a
// 128^3 x 32 volume this alone makes the forward about 2.5x faster.
//
// Forward: threads split the sorted points; each point writes its own output
// row, so any split is race-free.
//
// Backward, grad_volume: points are scattered into voxels that other points
// share, so threads must not work on the same voxels at once. Rather than
// per-thread copies of the volume (threads x its size) or atomics, the
// buckets make the writes disjoint: a point of bucket (kz, ky) writes only
// to slices {kz - 1, kz} x rows {ky - 1, ky}. Two buckets whose kz and ky have
// the same parities but which differ are at least two apart along z or y, so
// the buckets of one parity pair touch disjoint voxels. The buckets are run in
// four phases, one per parity pair; inside a phase threads split the points,
// with each bucket handled by one thread. Every voxel thus receives its sums
// in a fixed order (phase, then point index), whatever the number of threads:
// the result is bitwise reproducible.
// grad_points of a point is computed by the one thread that handles it.
//
// The counting sort itself is serial (two O(B * M) passes and an O(buckets)
// prefix sum), a small part of the whole.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../grid_sample3d.h"
#include "../grid_sample3d_common.h"

namespace pointkd {
namespace {

constexpr int64_t kPointGrain = 512;

template <typename scalar_t>
struct PlainAdd {
  void operator()(scalar_t* address, scalar_t value) const { *address += value; }
};

// Points counting-sorted by the (z, y) grid row of their lower corner,
// (kz, ky) = (z.low + 1, y.low + 1), in four phases by the parities of
// (kz, ky); within a phase by (batch, kz, ky), then by point index.
// A point whose cell lies wholly outside the volume (its empty axes have
// low = 0) reads and writes nothing, so its bucket does not matter.
struct RowBuckets {
  int64_t phase_buckets = 0;
  std::vector<int64_t> start;  // [4 * phase_buckets + 1] offsets into order
  std::vector<int64_t> order;  // point indices (batch * M + m), sorted
  bool all_finite = true;      // checked on the way, for the forward's error
};

template <typename scalar_t>
RowBuckets sort_points_by_row(const scalar_t* points, const GridSample3dShape& s,
                              bool align_corners, GridPadding padding) {
  const int64_t total = s.batch * s.num_points;
  // kz in [0, D] and ky in [0, H]: half of each range per parity.
  const int64_t half_z = (s.depth + 2) / 2;
  const int64_t half_y = (s.height + 2) / 2;
  RowBuckets buckets;
  buckets.phase_buckets = s.batch * half_z * half_y;
  const int64_t num_buckets = 4 * buckets.phase_buckets;

  std::vector<int64_t> bucket_of(total);
  std::atomic<bool> all_finite{true};
  at::parallel_for(0, total, kPointGrain, [&](int64_t begin, int64_t end) {
    bool finite = true;
    for (int64_t i = begin; i < end; ++i) {
      finite = finite && std::isfinite(points[3 * i]) &&
               std::isfinite(points[3 * i + 1]) &&
               std::isfinite(points[3 * i + 2]);
      const auto cell = grid_cell(points + 3 * i, s.depth, s.height, s.width,
                                  align_corners, padding);
      const int64_t kz = cell.z.low + 1;
      const int64_t ky = cell.y.low + 1;
      const int64_t phase = (kz & 1) * 2 + (ky & 1);
      bucket_of[i] = phase * buckets.phase_buckets +
                     ((i / s.num_points) * half_z + (kz >> 1)) * half_y +
                     (ky >> 1);
    }
    if (!finite) all_finite.store(false, std::memory_order_relaxed);
  });
  buckets.all_finite = all_finite.load();

  auto& start = buckets.start;
  start.assign(num_buckets + 1, 0);
  for (int64_t i = 0; i < total; ++i) {
    ++start[bucket_of[i] + 1];
  }
  for (int64_t b = 0; b < num_buckets; ++b) start[b + 1] += start[b];
  buckets.order.resize(start[num_buckets]);
  std::vector<int64_t> next(start.begin(), start.end() - 1);
  for (int64_t i = 0; i < total; ++i) {
    buckets.order[next[bucket_of[i]]++] = i;
  }
  return buckets;
}

// Forward over the sorted points (sorted for locality only).
// Returns whether all points were finite; a non-finite point reads nothing,
// so the kernel is safe either way.
template <typename scalar_t>
bool forward_kernel(const scalar_t* volume, const scalar_t* points,
                    const GridSample3dShape& s, bool align_corners,
                    GridPadding padding, scalar_t* output) {
  const int64_t batch_stride = s.depth * s.height * s.width * s.channels;
  const auto buckets = sort_points_by_row(points, s, align_corners, padding);
  const int64_t* order = buckets.order.data();
  at::parallel_for(0, static_cast<int64_t>(buckets.order.size()), kPointGrain,
                   [&](int64_t begin, int64_t end) {
    for (int64_t position = begin; position < end; ++position) {
      const int64_t i = order[position];
      const auto cell = grid_cell(points + 3 * i, s.depth, s.height, s.width,
                                  align_corners, padding);
      grid_sample3d_point(cell, volume + (i / s.num_points) * batch_stride,
                          s.height, s.width, s.channels, 0, s.channels,
                          output + i * s.channels);
    }
  });
  return buckets.all_finite;
}

// Backward without grad_volume: no shared writes, threads split the sorted
// points (sorted for locality only, as in the forward).
template <typename scalar_t>
void backward_points_kernel(const scalar_t* volume, const scalar_t* points,
                            const scalar_t* grad_output,
                            const GridSample3dShape& s, bool align_corners,
                            GridPadding padding, scalar_t* grad_points) {
  const int64_t batch_stride = s.depth * s.height * s.width * s.channels;
  const auto buckets = sort_points_by_row(points, s, align_corners, padding);
  const int64_t* order = buckets.order.data();
  at::parallel_for(0, static_cast<int64_t>(buckets.order.size()), kPointGrain,
                   [&](int64_t begin, int64_t end) {
    for (int64_t position = begin; position < end; ++position) {
      const int64_t i = order[position];
      const auto cell = grid_cell(points + 3 * i, s.depth, s.height, s.width,
                                  align_corners, padding);
      grid_sample3d_backward_point(
          cell, volume + (i / s.num_points) * batch_stride,
          grad_output + i * s.channels, s.height, s.width, s.channels,
          static_cast<scalar_t*>(nullptr), grad_points + 3 * i,
          PlainAdd<scalar_t>{});
    }
  });
}

// Backward with grad_volume (and grad_points when volume is given): the
// phases described at the top of this file.
template <typename scalar_t>
void backward_volume_kernel(const scalar_t* volume, const scalar_t* points,
                            const scalar_t* grad_output,
                            const GridSample3dShape& s, bool align_corners,
                            GridPadding padding, scalar_t* grad_volume,
                            scalar_t* grad_points) {
  const int64_t batch_stride = s.depth * s.height * s.width * s.channels;
  const auto buckets = sort_points_by_row(points, s, align_corners, padding);
  const int64_t phase_buckets = buckets.phase_buckets;
  const int64_t* order = buckets.order.data();
  for (int64_t phase = 0; phase < 4; ++phase) {
    const int64_t* starts = buckets.start.data() + phase * phase_buckets;
    const int64_t* starts_end = starts + phase_buckets + 1;
    const int64_t first = starts[0];
    const int64_t last = starts[phase_buckets];
    at::parallel_for(first, last, kPointGrain, [&](int64_t begin, int64_t end) {
      // Move both ends of the chunk to the next bucket start, so that each
      // bucket goes whole to the one chunk holding its first point. The
      // moved chunks still tile [first, last).
      const int64_t from = *std::lower_bound(starts, starts_end, begin);
      const int64_t to = *std::lower_bound(starts, starts_end, end);
      for (int64_t position = from; position < to; ++position) {
        const int64_t i = order[position];
        const int64_t b = i / s.num_points;
        const auto cell = grid_cell(points + 3 * i, s.depth, s.height,
                                    s.width, align_corners, padding);
        grid_sample3d_backward_point(
            cell, volume == nullptr ? nullptr : volume + b * batch_stride,
            grad_output + i * s.channels, s.height, s.width, s.channels,
            grad_volume + b * batch_stride,
            grad_points == nullptr ? nullptr : grad_points + 3 * i,
            PlainAdd<scalar_t>{});
      }
    });
  }
}

}  // namespace

at::Tensor grid_sample3d_cpu(const at::Tensor& volume_in,
                             const at::Tensor& points_in, bool align_corners,
                             c10::string_view padding_mode) {
  const auto padding = parse_grid_padding(padding_mode);
  const auto shape = check_grid_sample3d_inputs(volume_in, points_in);
  TORCH_CHECK(volume_in.device().is_cpu(), "volume must be a CPU tensor, got ",
              volume_in.device());
  const auto volume = grid_sample3d_channels_last(volume_in, shape);
  const auto points =
      points_in.reshape({shape.batch, shape.num_points, 3}).contiguous();
  auto output = at::empty({shape.batch, shape.num_points, shape.channels},
                          volume.options());
  bool all_finite = true;
  if (output.numel() > 0) {
    AT_DISPATCH_FLOATING_TYPES(volume.scalar_type(), "grid_sample3d_cpu", [&] {
      all_finite = forward_kernel<scalar_t>(
          volume.data_ptr<scalar_t>(), points.data_ptr<scalar_t>(), shape,
          align_corners, padding, output.data_ptr<scalar_t>());
    });
  } else {
    check_grid_sample3d_points_finite(points_in);  // no kernel: a pass of its own
  }
  // Checked in the kernel's first pass rather than by a separate pass over
  // the points; this call only builds the message.
  if (!all_finite) check_grid_sample3d_points_finite(points_in);
  return shape.batched ? output : output.squeeze(0);
}

std::tuple<at::Tensor, at::Tensor> grid_sample3d_backward_cpu(
    const at::Tensor& grad_output_in, const at::Tensor& volume_in,
    const at::Tensor& points_in, bool align_corners,
    c10::string_view padding_mode, std::array<bool, 2> output_mask) {
  const auto padding = parse_grid_padding(padding_mode);
  const auto shape = check_grid_sample3d_inputs(volume_in, points_in);
  check_grid_sample3d_grad_output(grad_output_in, volume_in, shape);
  TORCH_CHECK(volume_in.device().is_cpu(), "volume must be a CPU tensor, got ",
              volume_in.device());
  const bool need_volume = output_mask[0];
  const bool need_points = output_mask[1];
  const auto options = volume_in.options();
  const auto points =
      points_in.reshape({shape.batch, shape.num_points, 3}).contiguous();
  const auto grad_output =
      grad_output_in
          .reshape({shape.batch, shape.num_points, shape.channels})
          .contiguous();
  // The volume is only read for the points' gradient.
  const auto volume = need_points ? grid_sample3d_channels_last(volume_in, shape)
                                  : at::Tensor();
  auto grad_volume =
      need_volume ? at::zeros({shape.batch, shape.depth, shape.height,
                               shape.width, shape.channels},
                              options)
                  : at::Tensor();
  auto grad_points = need_points ? at::zeros({shape.batch, shape.num_points, 3},
                                             options)
                                 : at::Tensor();
  if (shape.batch * shape.num_points > 0 && shape.channels > 0 &&
      (need_volume || need_points)) {
    AT_DISPATCH_FLOATING_TYPES(volume_in.scalar_type(), "grid_sample3d_backward_cpu", [&] {
      const scalar_t* volume_data = need_points ? volume.data_ptr<scalar_t>() : nullptr;
      scalar_t* grad_points_data = need_points ? grad_points.data_ptr<scalar_t>() : nullptr;
      if (need_volume) {
        backward_volume_kernel<scalar_t>(
            volume_data, points.data_ptr<scalar_t>(),
            grad_output.data_ptr<scalar_t>(), shape, align_corners, padding,
            grad_volume.data_ptr<scalar_t>(), grad_points_data);
      } else {
        backward_points_kernel<scalar_t>(
            volume_data, points.data_ptr<scalar_t>(),
            grad_output.data_ptr<scalar_t>(), shape, align_corners, padding,
            grad_points_data);
      }
    });
  }
  return {need_volume ? grid_sample3d_volume_from_channels_last(grad_volume, shape)
                      : at::empty({0}, options),
          need_points ? (shape.batched ? grad_points : grad_points.squeeze(0))
                      : at::empty({0}, options)};
}

TORCH_LIBRARY_IMPL(pointkd, CPU, m) {
  m.impl("grid_sample3d", &grid_sample3d_cpu);
  m.impl("grid_sample3d_backward", &grid_sample3d_backward_cpu);
}

}  // namespace pointkd
