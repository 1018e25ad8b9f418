// morton_encode: Z-order (Morton) codes of 3-D integer voxel coordinates.
//
// Args:
//   coords: int32 or int64 [N, 3], each coordinate in [0, 2^21).
// Returns:
//   codes: int64 [N]; bit 3b of codes[i] is bit b of coords[i, 0], bit 3b + 1
//          is bit b of coords[i, 1], bit 3b + 2 is bit b of coords[i, 2].
//          Sorting by code groups voxels that are close in space, and the code
//          is a unique key of a voxel for hashing.
#pragma once

#include <ATen/core/Tensor.h>

namespace pointkd {

constexpr int64_t kMortonBits = 21;

void check_morton_encode_inputs(const at::Tensor& coords);

at::Tensor morton_encode_cpu(const at::Tensor& coords);
at::Tensor morton_encode_cuda(const at::Tensor& coords);

}  // namespace pointkd
