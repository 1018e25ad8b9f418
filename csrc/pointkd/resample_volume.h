// resample_volume: trilinear resampling of a dense feature volume onto a new
// regular grid, each grid spanning an axis-aligned box in world space. The
// positions of the output samples are computed per element from the two
// boxes; no [M, 3] point tensor is ever built.
//
// resample_volume(volume, size, src_box, dst_box, align_corners,
//                 padding_mode) -> output
//   volume: float32 or float64 [B, C, D, H, W], or [C, D, H, W] unbatched,
//           with D, H, W >= 1. Any strides (read through a contiguous copy).
//           B == 0 or C == 0 gives an empty output.
//   size:   (D', H', W'), each >= 1.
//   src_box, dst_box: (xmin, ymin, zmin, xmax, ymax, zmax), finite, with
//           min < max on every axis: the boxes the volume and the output
//           cover. x runs along W, y along H, z along D.
//   align_corners: true: the corner samples sit on the box faces (a single
//                  sample along an axis sits at the box centre);
//                  false: samples are cell centres, the box faces are the
//                  outer edges of the corner cells.
//   padding_mode: "zeros" (outside reads 0) or "border" (positions are
//                 clamped to the volume), as in grid_sample3d.
//   output: [B, C, D', H', W'] ([C, D', H', W'] unbatched), contiguous.
//
// resample_volume_backward(grad_output, volume_size, src_box, dst_box,
//                          align_corners, padding_mode) -> grad_volume
//   grad_output: [B, C, D', H', W'] or [C, D', H', W'], float32 or float64.
//   volume_size: (D, H, W) of the volume, each >= 1.
//   grad_volume: [B, C, D, H, W] ([C, D, H, W] unbatched), contiguous, of
//                grad_output's dtype. The op is linear in the volume, so the
//                backward needs only the sizes, never the volume itself.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>
#include <c10/util/string_view.h>

#include "resample_volume_common.h"

namespace pointkd {

// Validated sizes and boxes of a call, with an unbatched call seen as a
// batch of one; params holds what the per-element functions need.
struct ResampleVolumeCall {
  bool batched;
  int64_t batch, channels;
  ResampleVolumeParams params;
};

// The checks of the forward's arguments.
ResampleVolumeCall check_resample_volume_inputs(
    const at::Tensor& volume, c10::IntArrayRef size,
    c10::ArrayRef<double> src_box, c10::ArrayRef<double> dst_box,
    bool align_corners, c10::string_view padding_mode);

// The checks of the backward's arguments.
ResampleVolumeCall check_resample_volume_backward_inputs(
    const at::Tensor& grad_output, c10::IntArrayRef volume_size,
    c10::ArrayRef<double> src_box, c10::ArrayRef<double> dst_box,
    bool align_corners, c10::string_view padding_mode);

at::Tensor resample_volume_cpu(const at::Tensor& volume, c10::IntArrayRef size,
                               c10::ArrayRef<double> src_box,
                               c10::ArrayRef<double> dst_box,
                               bool align_corners,
                               c10::string_view padding_mode);
at::Tensor resample_volume_backward_cpu(const at::Tensor& grad_output,
                                        c10::IntArrayRef volume_size,
                                        c10::ArrayRef<double> src_box,
                                        c10::ArrayRef<double> dst_box,
                                        bool align_corners,
                                        c10::string_view padding_mode);

at::Tensor resample_volume_cuda(const at::Tensor& volume, c10::IntArrayRef size,
                                c10::ArrayRef<double> src_box,
                                c10::ArrayRef<double> dst_box,
                                bool align_corners,
                                c10::string_view padding_mode);
at::Tensor resample_volume_backward_cuda(const at::Tensor& grad_output,
                                         c10::IntArrayRef volume_size,
                                         c10::ArrayRef<double> src_box,
                                         c10::ArrayRef<double> dst_box,
                                         bool align_corners,
                                         c10::string_view padding_mode);

}  // namespace pointkd
