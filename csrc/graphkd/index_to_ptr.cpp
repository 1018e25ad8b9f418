// Schema and input checks of graphkd::index_to_ptr.
#include "index_to_ptr.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include "../common/macros.h"

namespace graphkd {

void check_index_to_ptr_inputs(const at::Tensor& index, int64_t size) {
  KD_CHECK_ARG(index.dim() == 1 && index.scalar_type() == at::kLong, index,
               "index", "a 1-D int64 tensor [E]");
  TORCH_CHECK(size >= 0, "size must be >= 0, got ", size);
  if (index.numel() == 0) return;
  // One device-to-host sync for range and order together.
  const auto first = index.narrow(0, 0, index.numel() - 1);
  const auto rest = index.narrow(0, 1, index.numel() - 1);
  const auto flags =
      at::stack({index.min() >= 0, index.max() < size, (rest >= first).all()})
          .cpu();
  const auto* ok = flags.data_ptr<bool>();
  TORCH_CHECK(ok[0] && ok[1], "index must hold values in [0, size) = [0, ",
              size, "), got values in [", index.min().item<int64_t>(), ", ",
              index.max().item<int64_t>(), "]");
  TORCH_CHECK(ok[2],
              "index must be sorted in ascending order (sort it, e.g. with "
              "torch.sort, before building a pointer)");
}

TORCH_LIBRARY_FRAGMENT(graphkd, m) {
  m.def("index_to_ptr(Tensor index, int size) -> Tensor");
}

}  // namespace graphkd
