// Per-element logic of index_to_ptr, shared by the CPU and CUDA kernels.
#pragma once

#include <cstdint>

#include "../common/macros.h"

namespace graphkd {

// Element `i` in [0, numel) writes the pointer entries whose rows start at
// entry i: rows index[i - 1] + 1 .. index[i] (rows 0 .. index[0] for i = 0)
// start at i, and the last element also closes every row after it. Each
// pointer entry is written by exactly one element, so elements run in any order.
// With numel == 0 a single call with i = 0 zero-fills the pointer.
KD_HD void index_to_ptr_element(int64_t i, const int64_t* index, int64_t numel,
                                int64_t size, int64_t* ptr) {
  if (numel == 0) {
    for (int64_t row = 0; row <= size; ++row) ptr[row] = 0;
    return;
  }
  const int64_t first_row = (i == 0) ? 0 : index[i - 1] + 1;
  for (int64_t row = first_row; row <= index[i]; ++row) ptr[row] = i;
  if (i == numel - 1) {
    for (int64_t row = index[i] + 1; row <= size; ++row) ptr[row] = numel;
  }
}

}  // namespace graphkd
