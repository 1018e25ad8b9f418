// Schema and input checks of graphkd::index_to_ptr.
#include "index_to_ptr.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include "../common/macros.h"
#include "index_to_ptr_common.h"

namespace graphkd {

void check_index_to_ptr_inputs(const at::Tensor& index, int64_t size) {
  KD_CHECK_ARG(index.dim() == 1 && index.scalar_type() == at::kLong, index,
               "index", "a 1-D int64 tensor [E]");
  TORCH_CHECK(size >= 0, "size must be >= 0, got ", size);
}

void raise_index_to_ptr_status(int status, const at::Tensor& index, int64_t size) {
  if (status == kIndexToPtrOk) return;
  TORCH_CHECK(status != kIndexOutOfRange,
              "index must hold values in [0, size) = [0, ", size,
              "), got values in [", index.min().item<int64_t>(), ", ",
              index.max().item<int64_t>(), "]");
  TORCH_CHECK(false,
              "index must be sorted in ascending order (sort it, e.g. with "
              "torch.sort, before building a pointer)");
}

TORCH_LIBRARY_FRAGMENT(graphkd, m) {
  m.def("index_to_ptr(Tensor index, int size) -> Tensor");
}

}  // namespace graphkd
