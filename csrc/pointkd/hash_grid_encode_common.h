// Per-element logic of hash_grid_encode, shared by the CPU and CUDA kernels:
// the level layout, the cell of a point, the table row of each corner (dense
// or hashed) and the trilinear weights with their derivatives.
//
// Conventions (identical in pointkd/ops/hash_grid.py, whose pure-torch
// reference follows this file formula for formula):
//   - a coordinate u is clamped to [0, 1] (NaN maps to 0; the op rejects
//     non-finite points before it gets here); the clamp passes the gradient
//     for u in [0, 1], borders included (as torch.clamp does), else 0;
//   - on a level of resolution N the continuous vertex index is p = u * N
//     (no half-cell offset: 0 and 1 are vertices 0 and N, as in the paper),
//     its lower vertex is min(floor(p), N - 1) and t = p - lower, so u = 1
//     is vertex N reached from cell N - 1 (t = 1), never a vertex N + 1;
//   - corner (dx, dy, dz) of the cell, c = dx + 2 dy + 4 dz, has weight
//     w_c = (w(t_x, dx) * w(t_y, dy)) * w(t_z, dz), w(t, 0) = 1 - t, w(t, 1) = t;
//   - a level whose (N + 1)^3 vertices fit in the table of T rows indexes them
//     densely, x + (N + 1) y + (N + 1)^2 z, in a table of (N + 1)^3 rows;
//     any other level hashes them into T rows, T a power of two:
//       h(x, y, z) = (x * 1 XOR y * 2654435761 XOR z * 805459861) mod 2^32 mod T
//     (the primes of Mueller et al. 2022, in uint32 arithmetic).
#pragma once

#include <cstdint>

#include "../common/macros.h"

namespace pointkd {

// Most levels one call may have; the level table is passed to CUDA kernels
// by value (24 bytes a level), well inside the kernel-parameter limit.
constexpr int64_t kHashGridMaxLevels = 64;
// Largest resolution: vertex coordinates stay exact in float32 and in uint32.
constexpr int64_t kHashGridMaxResolution = int64_t(1) << 24;
constexpr uint32_t kHashGridPrimeY = 2654435761u;
constexpr uint32_t kHashGridPrimeZ = 805459861u;

struct HashGridLevel {
  int64_t offset;      // first row of the level's table in embeddings
  int64_t size;        // rows of the level's table: (N + 1)^3 or T
  int32_t resolution;  // N, cells per axis
  int32_t hashed;      // 1: hashed into T = size rows; 0: dense
};

struct HashGridLevels {
  int64_t num_levels;
  int64_t num_rows;  // rows of embeddings: the sum of the levels' sizes
  HashGridLevel level[kHashGridMaxLevels];
};

// Rows of a level's table: (N + 1)^3 when that fits in table_size (dense),
// else table_size (hashed). With N <= 2^24 the cube cannot overflow int64.
KD_HD int64_t hash_grid_level_size(int64_t resolution, int64_t table_size) {
  const int64_t vertices = resolution + 1;
  const int64_t dense = vertices * vertices * vertices;
  return dense <= table_size ? dense : table_size;
}

// The cell of a point on one level.
template <typename scalar_t>
struct HashGridCell {
  uint32_t low[3];      // lower vertex per axis, in [0, N - 1]
  scalar_t frac[3];     // t per axis, in [0, 1]
  bool passes_grad[3];  // whether the clamp passes the gradient (u in [0, 1])
};

template <typename scalar_t>
KD_HD HashGridCell<scalar_t> hash_grid_cell(const scalar_t* point,
                                            int32_t resolution) {
  HashGridCell<scalar_t> cell;
  const scalar_t scale = static_cast<scalar_t>(resolution);
  for (int axis = 0; axis < 3; ++axis) {
    const scalar_t u = point[axis];
    cell.passes_grad[axis] = u >= 0 && u <= 1;
    const scalar_t clamped = u > 0 ? (u < 1 ? u : scalar_t(1)) : scalar_t(0);
    const scalar_t position = clamped * scale;  // in [0, N]: truncation is floor
    int64_t low = static_cast<int64_t>(position);
    if (low > resolution - 1) low = resolution - 1;
    cell.low[axis] = static_cast<uint32_t>(low);
    cell.frac[axis] = position - static_cast<scalar_t>(low);
  }
  return cell;
}

// Rows of embeddings of the 8 corners, corner c = dx + 2 dy + 4 dz.
// Each axis contributes one term per side, combined by + (dense) or XOR
// (hashed); every row lies in [offset, offset + size).
template <typename scalar_t>
KD_HD void hash_grid_corner_rows(const HashGridLevel& level,
                                 const HashGridCell<scalar_t>& cell,
                                 int64_t rows[8]) {
  if (level.hashed) {
    const uint64_t mask = static_cast<uint64_t>(level.size - 1);
    const uint32_t hx[2] = {cell.low[0], cell.low[0] + 1};
    const uint32_t hy[2] = {cell.low[1] * kHashGridPrimeY,
                            (cell.low[1] + 1) * kHashGridPrimeY};
    const uint32_t hz[2] = {cell.low[2] * kHashGridPrimeZ,
                            (cell.low[2] + 1) * kHashGridPrimeZ};
    for (int c = 0; c < 8; ++c) {
      const uint32_t hash = hx[c & 1] ^ hy[(c >> 1) & 1] ^ hz[c >> 2];
      rows[c] = level.offset + static_cast<int64_t>(hash & mask);
    }
  } else {
    const int64_t stride_y = static_cast<int64_t>(level.resolution) + 1;
    const int64_t stride_z = stride_y * stride_y;
    const int64_t base = level.offset + cell.low[0] +
                         stride_y * cell.low[1] + stride_z * cell.low[2];
    for (int c = 0; c < 8; ++c) {
      rows[c] = base + (c & 1) + stride_y * ((c >> 1) & 1) +
                stride_z * (c >> 2);
    }
  }
}

// Trilinear weights of the 8 corners.
template <typename scalar_t>
KD_HD void hash_grid_corner_weights(const HashGridCell<scalar_t>& cell,
                                    scalar_t weights[8]) {
  const scalar_t wx[2] = {1 - cell.frac[0], cell.frac[0]};
  const scalar_t wy[2] = {1 - cell.frac[1], cell.frac[1]};
  const scalar_t wz[2] = {1 - cell.frac[2], cell.frac[2]};
  for (int c = 0; c < 8; ++c) {
    weights[c] = wx[c & 1] * wy[(c >> 1) & 1] * wz[c >> 2];
  }
}

// Forward of one (point, level): the level's F features of the point,
//   out[f] = sum_c w_c * embeddings[rows[c], f].
template <typename scalar_t>
KD_HD void hash_grid_encode_point_level(const HashGridLevel& level,
                                        const scalar_t* point,
                                        const scalar_t* embeddings,
                                        int64_t features, scalar_t* out) {
  const auto cell = hash_grid_cell(point, level.resolution);
  int64_t rows[8];
  scalar_t weights[8];
  hash_grid_corner_rows(level, cell, rows);
  hash_grid_corner_weights(cell, weights);
  for (int64_t f = 0; f < features; ++f) out[f] = 0;
  for (int c = 0; c < 8; ++c) {
    const scalar_t* row = embeddings + rows[c] * features;
    for (int64_t f = 0; f < features; ++f) out[f] += weights[c] * row[f];
  }
}

// Backward of one (point, level); grad_row is the level's F values of the
// point's grad_output row. Either output may be skipped by passing nullptr:
//   grad_embeddings[rows[c], f] += w_c * grad_row[f]      (through add)
//   grad_point[a] += [u_a in [0, 1]] * N * sum_c (dw_c / dt_a)
//                    * sum_f grad_row[f] * embeddings[rows[c], f]
// grad_point is accumulated with a plain +=: callers sum the levels of a
// point in a local array. `add(address, value)` is `*address += value` on the
// CPU, where the caller keeps threads on disjoint rows, an atomicAdd on CUDA.
template <typename scalar_t, typename AddFn>
KD_HD void hash_grid_backward_point_level(const HashGridLevel& level,
                                          const scalar_t* point,
                                          const scalar_t* embeddings,
                                          const scalar_t* grad_row,
                                          int64_t features,
                                          scalar_t* grad_embeddings,
                                          scalar_t* grad_point, AddFn add) {
  const auto cell = hash_grid_cell(point, level.resolution);
  int64_t rows[8];
  hash_grid_corner_rows(level, cell, rows);
  if (grad_embeddings != nullptr) {
    scalar_t weights[8];
    hash_grid_corner_weights(cell, weights);
    for (int c = 0; c < 8; ++c) {
      scalar_t* target = grad_embeddings + rows[c] * features;
      for (int64_t f = 0; f < features; ++f) {
        add(target + f, weights[c] * grad_row[f]);
      }
    }
  }
  if (grad_point != nullptr) {
    const scalar_t wx[2] = {1 - cell.frac[0], cell.frac[0]};
    const scalar_t wy[2] = {1 - cell.frac[1], cell.frac[1]};
    const scalar_t wz[2] = {1 - cell.frac[2], cell.frac[2]};
    scalar_t grad_x = 0, grad_y = 0, grad_z = 0;
    for (int c = 0; c < 8; ++c) {
      const int dx = c & 1, dy = (c >> 1) & 1, dz = c >> 2;
      const scalar_t* row = embeddings + rows[c] * features;
      scalar_t dot = 0;
      for (int64_t f = 0; f < features; ++f) dot += grad_row[f] * row[f];
      const scalar_t sign_x = dx ? scalar_t(1) : scalar_t(-1);
      const scalar_t sign_y = dy ? scalar_t(1) : scalar_t(-1);
      const scalar_t sign_z = dz ? scalar_t(1) : scalar_t(-1);
      grad_x += dot * sign_x * wy[dy] * wz[dz];
      grad_y += dot * wx[dx] * sign_y * wz[dz];
      grad_z += dot * wx[dx] * wy[dy] * sign_z;
    }
    const scalar_t scale = static_cast<scalar_t>(level.resolution);
    if (cell.passes_grad[0]) grad_point[0] += grad_x * scale;
    if (cell.passes_grad[1]) grad_point[1] += grad_y * scale;
    if (cell.passes_grad[2]) grad_point[2] += grad_z * scale;
  }
}

}  // namespace pointkd
