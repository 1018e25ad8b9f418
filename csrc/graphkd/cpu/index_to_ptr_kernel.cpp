// CPU kernel of graphkd::index_to_ptr: at::parallel_for over the shared
// per-element logic.
#include <algorithm>
#include <atomic>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../index_to_ptr.h"
#include "../index_to_ptr_common.h"

namespace graphkd {

at::Tensor index_to_ptr_cpu(const at::Tensor& index_in, int64_t size) {
  check_index_to_ptr_inputs(index_in, size);
  TORCH_CHECK(index_in.device().is_cpu(), "index must be a CPU tensor, got ",
              index_in.device());
  const auto index = index_in.contiguous();
  auto ptr = at::empty({size + 1}, index.options());
  const int64_t numel = index.numel();
  const int64_t* index_data = index.data_ptr<int64_t>();
  int64_t* ptr_data = ptr.data_ptr<int64_t>();
  if (numel == 0) {
    index_to_ptr_element(0, index_data, numel, size, ptr_data);
    return ptr;
  }
  std::atomic<int> status{kIndexToPtrOk};
  at::parallel_for(0, numel, /*grain_size=*/32768, [&](int64_t begin, int64_t end) {
    int local = kIndexToPtrOk;
    for (int64_t i = begin; i < end; ++i) {
      local = std::max(local, index_to_ptr_element(i, index_data, numel, size, ptr_data));
    }
    if (local != kIndexToPtrOk) status.store(local);
  });
  raise_index_to_ptr_status(status.load(), index, size);
  return ptr;
}

TORCH_LIBRARY_IMPL(graphkd, CPU, m) {
  m.impl("index_to_ptr", &index_to_ptr_cpu);
}

}  // namespace graphkd
