// Schema and input checks of pointkd::hash_grid_encode and its backward.
#include "hash_grid_encode.h"

#include <sstream>

#include <ATen/ATen.h>
#include <torch/library.h>

#include "../common/macros.h"

namespace pointkd {

HashGridLevels make_hash_grid_levels(c10::IntArrayRef resolutions,
                                     int64_t log2_table_size) {
  TORCH_CHECK(log2_table_size >= 1 && log2_table_size <= 32,
              "log2_table_size must be in [1, 32], got ", log2_table_size);
  const int64_t num_levels = static_cast<int64_t>(resolutions.size());
  TORCH_CHECK(num_levels >= 1 && num_levels <= kHashGridMaxLevels,
              "resolutions must list 1 to ", kHashGridMaxLevels,
              " levels, got ", num_levels);
  const int64_t table_size = int64_t(1) << log2_table_size;
  HashGridLevels levels;
  levels.num_levels = num_levels;
  int64_t offset = 0;
  for (int64_t l = 0; l < num_levels; ++l) {
    const int64_t resolution = resolutions[l];
    TORCH_CHECK(resolution >= 1 && resolution <= kHashGridMaxResolution,
                "resolutions[", l, "] must be in [1, ",
                kHashGridMaxResolution, "], got ", resolution);
    HashGridLevel& level = levels.level[l];
    level.offset = offset;
    level.size = hash_grid_level_size(resolution, table_size);
    level.resolution = static_cast<int32_t>(resolution);
    level.hashed = level.size < (resolution + 1) * (resolution + 1) *
                                    (resolution + 1);
    offset += level.size;
  }
  for (int64_t l = num_levels; l < kHashGridMaxLevels; ++l) {
    levels.level[l] = HashGridLevel{offset, 0, 1, 0};
  }
  levels.num_rows = offset;
  return levels;
}

void check_hash_grid_encode_inputs(const at::Tensor& points,
                                   const at::Tensor& embeddings,
                                   const HashGridLevels& levels,
                                   int64_t log2_table_size) {
  KD_CHECK_ARG(points.dim() == 2 && points.size(1) == 3 &&
                   (points.scalar_type() == at::kFloat ||
                    points.scalar_type() == at::kDouble),
               points, "points", "a float32 or float64 tensor of shape [N, 3]");
  KD_CHECK_ARG(embeddings.dim() == 2 && embeddings.size(1) >= 1, embeddings,
               "embeddings", "of shape [E, F] with F >= 1");
  TORCH_CHECK(embeddings.scalar_type() == points.scalar_type(),
              "embeddings must have the dtype of points (",
              c10::toString(points.scalar_type()), "), got ",
              ::geokd::describe(embeddings));
  TORCH_CHECK(embeddings.device() == points.device(),
              "embeddings must be on the device of points (", points.device(),
              "), got ", ::geokd::describe(embeddings));
  TORCH_CHECK(embeddings.size(0) == levels.num_rows,
              "embeddings must have one row per table entry of the ",
              levels.num_levels, " levels (E = ", levels.num_rows,
              " for these resolutions and log2_table_size = ", log2_table_size,
              "), got ", ::geokd::describe(embeddings));
}

void check_hash_grid_encode_points_finite(const at::Tensor& points) {
  if (points.numel() == 0) return;
  const auto finite = at::isfinite(points).all(-1);
  if (finite.all().item<bool>()) return;
  // Error path only: name the first offending point.
  const auto first = at::logical_not(finite).nonzero()[0][0].item<int64_t>();
  const auto row = points[first].to(at::kCPU, at::kDouble);
  std::ostringstream where;
  where << "points[" << first << "] = (" << row[0].item<double>() << ", "
        << row[1].item<double>() << ", " << row[2].item<double>() << ")";
  TORCH_CHECK(false,
              "points must be finite (NaN or inf cannot be encoded), got ",
              where.str());
}

void check_hash_grid_encode_grad_output(const at::Tensor& grad_output,
                                        const at::Tensor& points,
                                        const at::Tensor& embeddings,
                                        const HashGridLevels& levels) {
  const int64_t columns = levels.num_levels * embeddings.size(1);
  TORCH_CHECK(grad_output.dim() == 2 && grad_output.size(0) == points.size(0) &&
                  grad_output.size(1) == columns,
              "grad_output must have the shape of the output ([N, L * F] = [",
              points.size(0), ", ", columns, "]), got ",
              ::geokd::describe(grad_output));
  TORCH_CHECK(grad_output.scalar_type() == points.scalar_type() &&
                  grad_output.device() == points.device(),
              "grad_output must have the dtype and device of points (",
              c10::toString(points.scalar_type()), " on ", points.device(),
              "), got ", ::geokd::describe(grad_output));
}

TORCH_LIBRARY_FRAGMENT(pointkd, m) {
  m.def(
      "hash_grid_encode(Tensor points, Tensor embeddings, int[] resolutions, "
      "int log2_table_size) -> Tensor");
  m.def(
      "hash_grid_encode_backward(Tensor grad_output, Tensor points, "
      "Tensor embeddings, int[] resolutions, int log2_table_size, "
      "bool[2] output_mask) -> (Tensor grad_embeddings, Tensor grad_points)");
}

}  // namespace pointkd
