// Schema and input checks of pointkd::morton_encode.
#include "morton_encode.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include "../common/macros.h"

namespace pointkd {

void check_morton_encode_inputs(const at::Tensor& coords) {
  KD_CHECK_ARG(coords.dim() == 2 && coords.size(1) == 3 &&
                   (coords.scalar_type() == at::kInt ||
                    coords.scalar_type() == at::kLong),
               coords, "coords", "an int32 or int64 tensor of shape [N, 3]");
  if (coords.numel() == 0) return;
  const auto low = coords.min().item<int64_t>();
  const auto high = coords.max().item<int64_t>();
  TORCH_CHECK(low >= 0 && high < (int64_t{1} << kMortonBits),
              "coords must lie in [0, 2^", kMortonBits, ") = [0, ",
              (int64_t{1} << kMortonBits), "), got values in [", low, ", ",
              high, "] (shift voxel coordinates to start at 0)");
}

TORCH_LIBRARY_FRAGMENT(pointkd, m) {
  m.def("morton_encode(Tensor coords) -> Tensor");
}

}  // namespace pointkd
