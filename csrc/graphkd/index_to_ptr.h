// index_to_ptr: compressed (CSR) row pointers of a sorted index vector.
//
// Args:
//   index: int64 [E], sorted ascending, values in [0, size).
//   size:  number of rows (>= 0).
// Returns:
//   ptr: int64 [size + 1] with ptr[0] = 0, ptr[size] = E and
//        ptr[r + 1] - ptr[r] = number of entries of index equal to r, so that
//        index[ptr[r]:ptr[r + 1]] holds exactly the entries equal to r.
// Errors: wrong dtype/shape, negative size, values out of [0, size), unsorted.
#pragma once

#include <ATen/core/Tensor.h>

namespace graphkd {

// Dtype, shape and size checks shared by every backend (value checks happen
// inside the kernels, in the same pass that writes the pointer).
void check_index_to_ptr_inputs(const at::Tensor& index, int64_t size);

// Raises the error for a status reported by a kernel (see
// index_to_ptr_common.h); does nothing for kIndexToPtrOk.
void raise_index_to_ptr_status(int status, const at::Tensor& index, int64_t size);

at::Tensor index_to_ptr_cpu(const at::Tensor& index, int64_t size);
at::Tensor index_to_ptr_cuda(const at::Tensor& index, int64_t size);

}  // namespace graphkd
