// Per-element logic of index_to_ptr, shared by the CPU and CUDA kernels.
#pragma once

#include <cstdint>

#include "../common/macros.h"

namespace graphkd {

enum IndexToPtrStatus : int { kIndexToPtrOk = 0, kIndexOutOfRange = 1, kIndexUnsorted = 2 };

// Element `i` in [0, numel) writes the pointer entries whose rows start at
// entry i: rows index[i - 1] + 1 .. index[i] (rows 0 .. index[0] for i = 0)
// start at i, and the last element also closes every row after it. Each
// pointer entry is written by exactly one element, so elements run in any
// order. The element validates the values it reads before writing anything
// (in range, not below its predecessor), so bad input is reported in the same
// pass and never causes an out-of-bounds write. With numel == 0 a single call
// with i = 0 zero-fills the pointer.
KD_HD int index_to_ptr_element(int64_t i, const int64_t* index, int64_t numel,
                               int64_t size, int64_t* ptr) {
  if (numel == 0) {
    for (int64_t row = 0; row <= size; ++row) ptr[row] = 0;
    return kIndexToPtrOk;
  }
  const int64_t current = index[i];
  if (current < 0 || current >= size) return kIndexOutOfRange;
  int64_t first_row = 0;
  if (i > 0) {
    const int64_t previous = index[i - 1];
    if (previous < 0 || previous >= size) return kIndexOutOfRange;
    if (previous > current) return kIndexUnsorted;
    first_row = previous + 1;
  }
  for (int64_t row = first_row; row <= current; ++row) ptr[row] = i;
  if (i == numel - 1) {
    for (int64_t row = current + 1; row <= size; ++row) ptr[row] = numel;
  }
  return kIndexToPtrOk;
}

}  // namespace graphkd
