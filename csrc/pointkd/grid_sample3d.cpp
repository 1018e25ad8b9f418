// Schema and input checks of pointkd::grid_sample3d and its backward.
#include "grid_sample3d.h"

#include <sstream>
#include <string>

#include <ATen/ATen.h>
#include <torch/library.h>

#include "../common/macros.h"

namespace pointkd {

GridPadding parse_grid_padding(c10::string_view padding_mode) {
  if (padding_mode == "zeros") return GridPadding::kZeros;
  if (padding_mode == "border") return GridPadding::kBorder;
  TORCH_CHECK(false, "padding_mode must be 'zeros' or 'border', got '",
              std::string(padding_mode.data(), padding_mode.size()), "'");
}

GridSample3dShape check_grid_sample3d_inputs(const at::Tensor& volume,
                                             const at::Tensor& points) {
  KD_CHECK_ARG((volume.dim() == 4 || volume.dim() == 5) &&
                   (volume.scalar_type() == at::kFloat ||
                    volume.scalar_type() == at::kDouble),
               volume, "volume",
               "a float32 or float64 tensor of shape [C, D, H, W] or "
               "[B, C, D, H, W]");
  const bool batched = volume.dim() == 5;
  if (batched) {
    KD_CHECK_ARG(points.dim() == 3 && points.size(2) == 3, points, "points",
                 "of shape [B, M, 3] for a volume of shape [B, C, D, H, W]");
  } else {
    KD_CHECK_ARG(points.dim() == 2 && points.size(1) == 3, points, "points",
                 "of shape [M, 3] for a volume of shape [C, D, H, W]");
  }
  TORCH_CHECK(points.scalar_type() == volume.scalar_type(),
              "points must have the dtype of volume (",
              c10::toString(volume.scalar_type()), "), got ",
              ::geokd::describe(points));
  TORCH_CHECK(points.device() == volume.device(),
              "points must be on the device of volume (", volume.device(),
              "), got ", ::geokd::describe(points));
  GridSample3dShape shape;
  shape.batched = batched;
  const int64_t first = batched ? 1 : 0;
  shape.batch = batched ? volume.size(0) : 1;
  shape.channels = volume.size(first);
  shape.depth = volume.size(first + 1);
  shape.height = volume.size(first + 2);
  shape.width = volume.size(first + 3);
  shape.num_points = points.size(batched ? 1 : 0);
  TORCH_CHECK(!batched || points.size(0) == shape.batch,
              "points must have as many batches as volume (B = ", shape.batch,
              "), got ", ::geokd::describe(points));
  TORCH_CHECK(shape.depth > 0 && shape.height > 0 && shape.width > 0,
              "volume must have at least one sample along each of D, H, W, got ",
              ::geokd::describe(volume));
  return shape;
}

void check_grid_sample3d_points_finite(const at::Tensor& points) {
  if (points.numel() == 0) return;
  const auto finite = at::isfinite(points).all(-1);
  if (finite.all().item<bool>()) return;
  // Error path only: name the first offending point.
  const auto first = at::logical_not(finite).reshape({-1}).nonzero()[0][0].item<int64_t>();
  std::ostringstream where;
  if (points.dim() == 3) {
    where << "points[" << first / points.size(1) << ", " << first % points.size(1) << "]";
  } else {
    where << "points[" << first << "]";
  }
  const auto row = points.reshape({-1, 3})[first].to(at::kCPU, at::kDouble);
  where << " = (" << row[0].item<double>() << ", " << row[1].item<double>()
        << ", " << row[2].item<double>() << ")";
  TORCH_CHECK(false,
              "points must be finite (NaN or inf has no place in the volume), "
              "got ",
              where.str());
}

void check_grid_sample3d_grad_output(const at::Tensor& grad_output,
                                     const at::Tensor& volume,
                                     const GridSample3dShape& shape) {
  const bool matches =
      shape.batched
          ? grad_output.dim() == 3 && grad_output.size(0) == shape.batch &&
                grad_output.size(1) == shape.num_points &&
                grad_output.size(2) == shape.channels
          : grad_output.dim() == 2 && grad_output.size(0) == shape.num_points &&
                grad_output.size(1) == shape.channels;
  TORCH_CHECK(matches, "grad_output must have the shape of the output (",
              shape.batched ? "[B, M, C]" : "[M, C]", "), got ",
              ::geokd::describe(grad_output));
  TORCH_CHECK(grad_output.scalar_type() == volume.scalar_type() &&
                  grad_output.device() == volume.device(),
              "grad_output must have the dtype and device of volume (",
              c10::toString(volume.scalar_type()), " on ", volume.device(),
              "), got ", ::geokd::describe(grad_output));
}

at::Tensor grid_sample3d_channels_last(const at::Tensor& volume,
                                       const GridSample3dShape& shape) {
  const auto batched = shape.batched ? volume : volume.unsqueeze(0);
  // A no-op for a volume already in torch.channels_last_3d.
  return batched.permute({0, 2, 3, 4, 1}).contiguous();
}

at::Tensor grid_sample3d_volume_from_channels_last(
    const at::Tensor& volume_channels_last, const GridSample3dShape& shape) {
  const auto volume = volume_channels_last.permute({0, 4, 1, 2, 3});
  return shape.batched ? volume : volume.squeeze(0);
}

TORCH_LIBRARY_FRAGMENT(pointkd, m) {
  m.def(
      "grid_sample3d(Tensor volume, Tensor points, bool align_corners=True, "
      "str padding_mode=\"zeros\") -> Tensor");
  m.def(
      "grid_sample3d_backward(Tensor grad_output, Tensor volume, "
      "Tensor points, bool align_corners, str padding_mode, "
      "bool[2] output_mask) -> (Tensor grad_volume, Tensor grad_points)");
}

}  // namespace pointkd
