// CPU kernels of pointkd::resample_volume: at::parallel_for over the shared
// per-element logic, on a contiguous (channels-first) copy of the volume.
//
// Forward: threads split the output rows (b, c, k, j); the z and y
// neighbours are found once per row, the x neighbours once per call. Each
// sample writes its own output element, so any split is race-free.
//
// Backward: samples scatter into voxels that other samples share, so threads
// must not work on the same voxels at once. As in grid_sample3d's CPU
// backward, buckets make the writes disjoint without atomics or per-thread
// copies, here by output slice: output slice k reads only source slices
// {kz - 1, kz}, kz = z.low + 1 in [0, D]. The output slices are
// counting-sorted into buckets by kz; two buckets of the same parity are at
// least two apart, so they touch disjoint source slices. The two parities
// run as two phases; inside a phase threads split the tasks (b, c, bucket),
// each task handled by one thread. Every voxel thus receives its sums in a
// fixed order (phase, then k, j, i), whatever the number of threads: the
// result is bitwise reproducible. Unlike a split over (b, c) alone, this keeps
// the threads busy for a single-channel volume (an occupancy grid).
#include <algorithm>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../resample_volume.h"
#include "../resample_volume_common.h"

namespace pointkd {
namespace {

// Samples per chunk of work handed to a thread, at least.
constexpr int64_t kSampleGrain = 32768;

template <typename scalar_t>
struct PlainAdd {
  void operator()(scalar_t* address, scalar_t value) const { *address += value; }
};

int64_t rows_grain(int64_t samples_per_row) {
  return std::max<int64_t>(1, kSampleGrain / std::max<int64_t>(1, samples_per_row));
}

// The x neighbours of every output column, found once and shared by all rows
// (a table of W' entries), so that a sample costs little more than its 8
// corners.
template <typename scalar_t>
std::vector<GridAxis<scalar_t>> x_axes(const ResampleVolumeParams& p) {
  std::vector<GridAxis<scalar_t>> axes(p.out_width);
  for (int64_t i = 0; i < p.out_width; ++i) axes[i] = resample_axis_x<scalar_t>(p, i);
  return axes;
}

template <typename scalar_t>
void forward_kernel(const scalar_t* volume, const ResampleVolumeCall& call,
                    scalar_t* output) {
  const auto& p = call.params;
  const auto columns = x_axes<scalar_t>(p);
  const int64_t channel_stride = p.depth * p.height * p.width;
  const int64_t rows = call.batch * call.channels * p.out_depth * p.out_height;
  at::parallel_for(0, rows, rows_grain(p.out_width), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t j = row % p.out_height;
      const int64_t k = (row / p.out_height) % p.out_depth;
      const int64_t channel = row / (p.out_height * p.out_depth);  // b * C + c
      const scalar_t* slice = volume + channel * channel_stride;
      scalar_t* out = output + row * p.out_width;
      GridCell<scalar_t> cell;
      cell.z = resample_axis_z<scalar_t>(p, k);
      cell.y = resample_axis_y<scalar_t>(p, j);
      for (int64_t i = 0; i < p.out_width; ++i) {
        cell.x = columns[i];
        out[i] = resample_volume_sample(cell, slice, p);
      }
    }
  });
}

// Output slices k bucketed by kz = z.low + 1, ascending k in each bucket;
// slices whose z neighbours both lie outside the volume ("zeros" padding)
// scatter nothing and are left out.
struct SliceBuckets {
  std::vector<int64_t> start;   // [D + 2] offsets into slices
  std::vector<int64_t> slices;  // output slice indices k
};

template <typename scalar_t>
SliceBuckets bucket_slices(const ResampleVolumeParams& p) {
  const int64_t num_buckets = p.depth + 1;
  std::vector<int64_t> bucket_of(p.out_depth, -1);
  SliceBuckets buckets;
  buckets.start.assign(num_buckets + 1, 0);
  for (int64_t k = 0; k < p.out_depth; ++k) {
    const auto z = resample_axis_z<scalar_t>(p, k);
    if (!(z.inside[0] || z.inside[1])) continue;
    bucket_of[k] = z.low + 1;
    ++buckets.start[bucket_of[k] + 1];
  }
  for (int64_t b = 0; b < num_buckets; ++b) buckets.start[b + 1] += buckets.start[b];
  buckets.slices.resize(buckets.start[num_buckets]);
  std::vector<int64_t> next(buckets.start.begin(), buckets.start.end() - 1);
  for (int64_t k = 0; k < p.out_depth; ++k) {
    if (bucket_of[k] >= 0) buckets.slices[next[bucket_of[k]]++] = k;
  }
  return buckets;
}

template <typename scalar_t>
void backward_kernel(const scalar_t* grad_output, const ResampleVolumeCall& call,
                     scalar_t* grad_volume) {
  const auto& p = call.params;
  const int64_t channel_stride = p.depth * p.height * p.width;
  const int64_t out_slice = p.out_height * p.out_width;
  const int64_t out_channel_stride = p.out_depth * out_slice;
  const int64_t channels = call.batch * call.channels;
  const auto buckets = bucket_slices<scalar_t>(p);
  const auto columns = x_axes<scalar_t>(p);
  for (int64_t phase = 0; phase < 2; ++phase) {
    // The non-empty buckets of this parity.
    std::vector<int64_t> phase_buckets;
    for (int64_t kz = phase; kz + 1 < static_cast<int64_t>(buckets.start.size()); kz += 2) {
      if (buckets.start[kz + 1] > buckets.start[kz]) phase_buckets.push_back(kz);
    }
    if (phase_buckets.empty()) continue;
    const int64_t num_phase_buckets = static_cast<int64_t>(phase_buckets.size());
    const int64_t tasks = channels * num_phase_buckets;
    // A bucket holds at least one output slice.
    at::parallel_for(0, tasks, rows_grain(out_slice), [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t channel = task / num_phase_buckets;  // b * C + c
        const int64_t kz = phase_buckets[task % num_phase_buckets];
        scalar_t* grad_slice = grad_volume + channel * channel_stride;
        const scalar_t* grad_in = grad_output + channel * out_channel_stride;
        for (int64_t n = buckets.start[kz]; n < buckets.start[kz + 1]; ++n) {
          const int64_t k = buckets.slices[n];
          GridCell<scalar_t> cell;
          cell.z = resample_axis_z<scalar_t>(p, k);
          for (int64_t j = 0; j < p.out_height; ++j) {
            cell.y = resample_axis_y<scalar_t>(p, j);
            if (!(cell.y.inside[0] || cell.y.inside[1])) continue;
            const scalar_t* grad_row = grad_in + k * out_slice + j * p.out_width;
            for (int64_t i = 0; i < p.out_width; ++i) {
              cell.x = columns[i];
              resample_volume_scatter(cell, grad_row[i], grad_slice, p,
                                      PlainAdd<scalar_t>{});
            }
          }
        }
      }
    });
  }
}

}  // namespace

at::Tensor resample_volume_cpu(const at::Tensor& volume_in, c10::IntArrayRef size,
                               c10::ArrayRef<double> src_box,
                               c10::ArrayRef<double> dst_box,
                               bool align_corners,
                               c10::string_view padding_mode) {
  const auto call = check_resample_volume_inputs(volume_in, size, src_box, dst_box,
                                                 align_corners, padding_mode);
  TORCH_CHECK(volume_in.device().is_cpu(), "volume must be a CPU tensor, got ",
              volume_in.device());
  const auto& p = call.params;
  const auto volume = volume_in.contiguous();
  auto output = at::empty({call.batch, call.channels, p.out_depth, p.out_height,
                           p.out_width},
                          volume.options());
  if (output.numel() > 0) {
    AT_DISPATCH_FLOATING_TYPES(volume.scalar_type(), "resample_volume_cpu", [&] {
      forward_kernel<scalar_t>(volume.data_ptr<scalar_t>(), call,
                               output.data_ptr<scalar_t>());
    });
  }
  return call.batched ? output : output.squeeze(0);
}

at::Tensor resample_volume_backward_cpu(const at::Tensor& grad_output_in,
                                        c10::IntArrayRef volume_size,
                                        c10::ArrayRef<double> src_box,
                                        c10::ArrayRef<double> dst_box,
                                        bool align_corners,
                                        c10::string_view padding_mode) {
  const auto call = check_resample_volume_backward_inputs(
      grad_output_in, volume_size, src_box, dst_box, align_corners, padding_mode);
  TORCH_CHECK(grad_output_in.device().is_cpu(),
              "grad_output must be a CPU tensor, got ", grad_output_in.device());
  const auto& p = call.params;
  const auto grad_output = grad_output_in.contiguous();
  auto grad_volume = at::zeros({call.batch, call.channels, p.depth, p.height, p.width},
                               grad_output.options());
  if (grad_volume.numel() > 0) {
    AT_DISPATCH_FLOATING_TYPES(grad_output.scalar_type(), "resample_volume_backward_cpu", [&] {
      backward_kernel<scalar_t>(grad_output.data_ptr<scalar_t>(), call,
                                grad_volume.data_ptr<scalar_t>());
    });
  }
  return call.batched ? grad_volume : grad_volume.squeeze(0);
}

TORCH_LIBRARY_IMPL(pointkd, CPU, m) {
  m.impl("resample_volume", &resample_volume_cpu);
  m.impl("resample_volume_backward", &resample_volume_backward_cpu);
}

}  // namespace pointkd
