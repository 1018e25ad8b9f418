// Per-element logic of morton_encode, shared by the CPU and CUDA kernels.
#pragma once

#include <cstdint>

#include "../common/macros.h"

namespace pointkd {

// Spreads the low 21 bits of v so that bit b moves to bit 3b.
KD_HD uint64_t morton_spread3(uint64_t v) {
  v &= 0x1fffffULL;
  v = (v | (v << 32)) & 0x1f00000000ffffULL;
  v = (v | (v << 16)) & 0x1f0000ff0000ffULL;
  v = (v | (v << 8)) & 0x100f00f00f00f00fULL;
  v = (v | (v << 4)) & 0x10c30c30c30c30c3ULL;
  v = (v | (v << 2)) & 0x1249249249249249ULL;
  return v;
}

template <typename index_t>
KD_HD int64_t morton_encode_element(int64_t i, const index_t* coords) {
  const uint64_t x = static_cast<uint64_t>(coords[3 * i + 0]);
  const uint64_t y = static_cast<uint64_t>(coords[3 * i + 1]);
  const uint64_t z = static_cast<uint64_t>(coords[3 * i + 2]);
  return static_cast<int64_t>(morton_spread3(x) | (morton_spread3(y) << 1) |
                              (morton_spread3(z) << 2));
}

}  // namespace pointkd
