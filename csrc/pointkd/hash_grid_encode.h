// hash_grid_encode: Instant-NGP's multiresolution hash encoding (Mueller et
// al. 2022) of points in [0, 1]^3, the trilinear blend of 8 table rows per
// level, levels concatenated. The conventions (clamping, vertex indexing,
// hashing) are spelled out in hash_grid_encode_common.h.
//
// hash_grid_encode(points, embeddings, resolutions, log2_table_size) -> output
//   points: float32 or float64 [N, 3], finite, any strides. Coordinates are
//           clamped to [0, 1].
//   embeddings: points' dtype and device, [E, F], F >= 1, any strides. The
//           tables of the levels one after the other: level l has
//           min((N_l + 1)^3, T) rows, T = 2^log2_table_size, and E is their
//           sum.
//   resolutions: N_l for each level, 1 to 64 levels, each in [1, 2^24].
//   log2_table_size: in [1, 32].
//   output: [N, L * F], contiguous; columns [l * F, (l + 1) * F) are level l.
//
// hash_grid_encode_backward(grad_output, points, embeddings, resolutions,
//                           log2_table_size, output_mask)
//     -> (grad_embeddings, grad_points)
//   grad_output: [N, L * F], points' dtype and device.
//   grad_embeddings: [E, F] contiguous if output_mask[0], else an empty [0].
//   grad_points: [N, 3] contiguous if output_mask[1], else an empty [0];
//                zero along an axis where the point lies outside [0, 1].
//   Points are not re-checked for finiteness (the forward did); a NaN
//   coordinate reads as 0, never out of bounds.
#pragma once

#include <array>
#include <tuple>

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include "hash_grid_encode_common.h"

namespace pointkd {

// The level layout, with the checks of resolutions and log2_table_size.
HashGridLevels make_hash_grid_levels(c10::IntArrayRef resolutions,
                                     int64_t log2_table_size);
void check_hash_grid_encode_inputs(const at::Tensor& points,
                                   const at::Tensor& embeddings,
                                   const HashGridLevels& levels,
                                   int64_t log2_table_size);
void check_hash_grid_encode_points_finite(const at::Tensor& points);
void check_hash_grid_encode_grad_output(const at::Tensor& grad_output,
                                        const at::Tensor& points,
                                        const at::Tensor& embeddings,
                                        const HashGridLevels& levels);

at::Tensor hash_grid_encode_cpu(const at::Tensor& points,
                                const at::Tensor& embeddings,
                                c10::IntArrayRef resolutions,
                                int64_t log2_table_size);
std::tuple<at::Tensor, at::Tensor> hash_grid_encode_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& points,
    const at::Tensor& embeddings, c10::IntArrayRef resolutions,
    int64_t log2_table_size, std::array<bool, 2> output_mask);

at::Tensor hash_grid_encode_cuda(const at::Tensor& points,
                                 const at::Tensor& embeddings,
                                 c10::IntArrayRef resolutions,
                                 int64_t log2_table_size);
std::tuple<at::Tensor, at::Tensor> hash_grid_encode_backward_cuda(
    const at::Tensor& grad_output, const at::Tensor& points,
    const at::Tensor& embeddings, c10::IntArrayRef resolutions,
    int64_t log2_table_size, std::array<bool, 2> output_mask);

}  // namespace pointkd
