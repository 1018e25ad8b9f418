// grid_sample3d: trilinear sampling of a dense 3-D feature volume at points in
// normalized coordinates, channels last. Same convention as
// F.grid_sample(volume, points.view(B, 1, 1, M, 3), mode="bilinear") on a 5-D
// input, whose (B, C, 1, 1, M) result this op returns as (B, M, C).
//
// grid_sample3d(volume, points, align_corners, padding_mode) -> output
//   volume: float32 or float64 [B, C, D, H, W], or [C, D, H, W] unbatched.
//           Any strides; a volume in torch.channels_last_3d is read in place,
//           any other is copied to that layout once per call.
//   points: volume's dtype, [B, M, 3] ([M, 3] unbatched), finite. (x, y, z)
//           in [-1, 1]: x runs along W, y along H, z along D.
//   align_corners: true: -1 and 1 are the centres of the corner samples;
//                  false: the outer edges of the corner samples.
//   padding_mode: "zeros" (outside reads 0) or "border" (coordinates are
//                 clamped to the volume).
//   output: [B, M, C] ([M, C] unbatched), contiguous.
//
// grid_sample3d_backward(grad_output, volume, points, align_corners,
//                        padding_mode, output_mask) -> (grad_volume, grad_points)
//   grad_output: shape of output.
//   grad_volume: shape of volume with channels-last strides (the layout it is
//                accumulated in) if output_mask[0], else an empty [0] tensor.
//   grad_points: shape of points, contiguous, if output_mask[1], else [0].
//   Points are not re-checked for finiteness here (the forward did); NaN
//   points read nothing and get zero gradient, never an out-of-bounds access.
#pragma once

#include <array>
#include <tuple>

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include "grid_sample3d_common.h"

namespace pointkd {

// Sizes of a call, with an unbatched call seen as a batch of one.
struct GridSample3dShape {
  bool batched;
  int64_t batch, channels, depth, height, width, num_points;
};

GridPadding parse_grid_padding(c10::string_view padding_mode);
GridSample3dShape check_grid_sample3d_inputs(const at::Tensor& volume,
                                             const at::Tensor& points);
void check_grid_sample3d_points_finite(const at::Tensor& points);
void check_grid_sample3d_grad_output(const at::Tensor& grad_output,
                                     const at::Tensor& volume,
                                     const GridSample3dShape& shape);

// [B, D, H, W, C] contiguous: a view when volume is channels_last_3d.
at::Tensor grid_sample3d_channels_last(const at::Tensor& volume,
                                       const GridSample3dShape& shape);
// The [B, D, H, W, C] gradient buffer as a tensor of volume's shape.
at::Tensor grid_sample3d_volume_from_channels_last(
    const at::Tensor& volume_channels_last, const GridSample3dShape& shape);

at::Tensor grid_sample3d_cpu(const at::Tensor& volume, const at::Tensor& points,
                             bool align_corners, c10::string_view padding_mode);
std::tuple<at::Tensor, at::Tensor> grid_sample3d_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& volume,
    const at::Tensor& points, bool align_corners,
    c10::string_view padding_mode, std::array<bool, 2> output_mask);

at::Tensor grid_sample3d_cuda(const at::Tensor& volume, const at::Tensor& points,
                              bool align_corners, c10::string_view padding_mode);
std::tuple<at::Tensor, at::Tensor> grid_sample3d_backward_cuda(
    const at::Tensor& grad_output, const at::Tensor& volume,
    const at::Tensor& points, bool align_corners,
    c10::string_view padding_mode, std::array<bool, 2> output_mask);

}  // namespace pointkd
