// CPU kernel of pointkd::morton_encode: at::parallel_for over the shared
// per-element logic.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../morton_encode.h"
#include "../morton_encode_common.h"

namespace pointkd {

at::Tensor morton_encode_cpu(const at::Tensor& coords_in) {
  check_morton_encode_inputs(coords_in);
  TORCH_CHECK(coords_in.device().is_cpu(), "coords must be a CPU tensor, got ",
              coords_in.device());
  const auto coords = coords_in.contiguous();
  const int64_t num_points = coords.size(0);
  auto codes = at::empty({num_points}, coords.options().dtype(at::kLong));
  int64_t* codes_data = codes.data_ptr<int64_t>();
  AT_DISPATCH_INDEX_TYPES(coords.scalar_type(), "morton_encode_cpu", [&] {
    const index_t* coords_data = coords.data_ptr<index_t>();
    at::parallel_for(0, num_points, /*grain_size=*/8192,
                     [&](int64_t begin, int64_t end) {
                       for (int64_t i = begin; i < end; ++i) {
                         codes_data[i] = morton_encode_element(i, coords_data);
                       }
                     });
  });
  return codes;
}

TORCH_LIBRARY_IMPL(pointkd, CPU, m) {
  m.impl("morton_encode", &morton_encode_cpu);
}

}  // namespace pointkd
