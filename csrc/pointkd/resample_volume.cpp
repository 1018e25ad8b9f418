// Schema and input checks of pointkd::resample_volume and its backward.
#include "resample_volume.h"

#include <cmath>
#include <sstream>
#include <string>

#include <ATen/ATen.h>
#include <torch/library.h>

#include "../common/macros.h"
#include "grid_sample3d.h"

namespace pointkd {
namespace {

std::string describe_values(c10::ArrayRef<double> values) {
  std::ostringstream out;
  out << "[";
  for (size_t n = 0; n < values.size(); ++n) out << (n ? ", " : "") << values[n];
  out << "]";
  return out.str();
}

void check_box(c10::ArrayRef<double> box, const char* name) {
  TORCH_CHECK(box.size() == 6, name,
              " must have 6 entries (xmin, ymin, zmin, xmax, ymax, zmax), got ",
              box.size(), ": ", describe_values(box));
  for (int axis = 0; axis < 3; ++axis) {
    TORCH_CHECK(std::isfinite(box[axis]) && std::isfinite(box[axis + 3]),
                name, " must be finite, got ", describe_values(box));
    TORCH_CHECK(box[axis] < box[axis + 3], name,
                " must have min < max on every axis, got ", "xyz"[axis],
                " in [", box[axis], ", ", box[axis + 3], "]");
  }
}

void check_size(c10::IntArrayRef size, const char* name, const char* what) {
  TORCH_CHECK(size.size() == 3 && size[0] >= 1 && size[1] >= 1 && size[2] >= 1,
              name, " must be 3 integers ", what, ", each >= 1, got ", size);
}

// The shared part of both checks: `tensor` is the volume (forward) or
// grad_output (backward), whose last three sizes are checked by the caller.
ResampleVolumeCall make_call(const at::Tensor& tensor,
                             c10::IntArrayRef volume_size,
                             c10::IntArrayRef out_size,
                             c10::ArrayRef<double> src_box,
                             c10::ArrayRef<double> dst_box, bool align_corners,
                             c10::string_view padding_mode) {
  ResampleVolumeCall call;
  call.batched = tensor.dim() == 5;
  call.batch = call.batched ? tensor.size(0) : 1;
  call.channels = tensor.size(call.batched ? 1 : 0);
  auto& p = call.params;
  p.depth = volume_size[0];
  p.height = volume_size[1];
  p.width = volume_size[2];
  p.out_depth = out_size[0];
  p.out_height = out_size[1];
  p.out_width = out_size[2];
  p.align_corners = align_corners;
  p.padding = parse_grid_padding(padding_mode);
  check_box(src_box, "src_box");
  check_box(dst_box, "dst_box");
  // Boxes are (xmin, ymin, zmin, xmax, ymax, zmax); x runs along W.
  p.x = resample_axis_map(p.out_width, dst_box[0], dst_box[3], src_box[0],
                          src_box[3], align_corners);
  p.y = resample_axis_map(p.out_height, dst_box[1], dst_box[4], src_box[1],
                          src_box[4], align_corners);
  p.z = resample_axis_map(p.out_depth, dst_box[2], dst_box[5], src_box[2],
                          src_box[5], align_corners);
  return call;
}

}  // namespace

ResampleVolumeCall check_resample_volume_inputs(
    const at::Tensor& volume, c10::IntArrayRef size,
    c10::ArrayRef<double> src_box, c10::ArrayRef<double> dst_box,
    bool align_corners, c10::string_view padding_mode) {
  KD_CHECK_ARG((volume.dim() == 4 || volume.dim() == 5) &&
                   (volume.scalar_type() == at::kFloat ||
                    volume.scalar_type() == at::kDouble),
               volume, "volume",
               "a float32 or float64 tensor of shape [C, D, H, W] or "
               "[B, C, D, H, W]");
  const auto spatial = volume.sizes().slice(volume.dim() - 3);
  TORCH_CHECK(spatial[0] > 0 && spatial[1] > 0 && spatial[2] > 0,
              "volume must have at least one sample along each of D, H, W, got ",
              ::geokd::describe(volume));
  check_size(size, "size", "(D', H', W')");
  return make_call(volume, spatial, size, src_box, dst_box,
                   align_corners, padding_mode);
}

ResampleVolumeCall check_resample_volume_backward_inputs(
    const at::Tensor& grad_output, c10::IntArrayRef volume_size,
    c10::ArrayRef<double> src_box, c10::ArrayRef<double> dst_box,
    bool align_corners, c10::string_view padding_mode) {
  KD_CHECK_ARG((grad_output.dim() == 4 || grad_output.dim() == 5) &&
                   (grad_output.scalar_type() == at::kFloat ||
                    grad_output.scalar_type() == at::kDouble),
               grad_output, "grad_output",
               "a float32 or float64 tensor of shape [C, D', H', W'] or "
               "[B, C, D', H', W']");
  const auto spatial = grad_output.sizes().slice(grad_output.dim() - 3);
  TORCH_CHECK(spatial[0] > 0 && spatial[1] > 0 && spatial[2] > 0,
              "grad_output must have at least one sample along each of D', "
              "H', W', got ",
              ::geokd::describe(grad_output));
  check_size(volume_size, "volume_size", "(D, H, W)");
  return make_call(grad_output, volume_size, spatial, src_box,
                   dst_box, align_corners, padding_mode);
}

TORCH_LIBRARY_FRAGMENT(pointkd, m) {
  m.def(
      "resample_volume(Tensor volume, SymInt[] size, "
      "float[] src_box=[-1., -1., -1., 1., 1., 1.], "
      "float[] dst_box=[-1., -1., -1., 1., 1., 1.], bool align_corners=True, "
      "str padding_mode=\"zeros\") -> Tensor");
  m.def(
      "resample_volume_backward(Tensor grad_output, SymInt[] volume_size, "
      "float[] src_box, float[] dst_box, bool align_corners, "
      "str padding_mode) -> Tensor");
}

}  // namespace pointkd
