// Schema and input checks of graphkd::tree_hash.
#include "tree_hash.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include "../common/macros.h"

namespace graphkd {

void check_tree_hash_inputs(const at::Tensor& edge_index,
                            const at::Tensor& node_labels, int64_t num_hops,
                            const c10::optional<at::Tensor>& edge_labels) {
  KD_CHECK_ARG(edge_index.dim() == 2 && edge_index.size(0) == 2 &&
                   edge_index.scalar_type() == at::kLong,
               edge_index, "edge_index", "an int64 tensor of shape [2, E]");
  KD_CHECK_ARG(node_labels.dim() == 1 && node_labels.scalar_type() == at::kLong,
               node_labels, "node_labels", "a 1-D int64 tensor [N]");
  TORCH_CHECK(num_hops >= 0, "num_hops must be >= 0, got ", num_hops);
  TORCH_CHECK(node_labels.size(0) < (int64_t{1} << 31),
              "tree_hash supports up to 2^31 - 1 nodes, got ", node_labels.size(0));
  TORCH_CHECK(edge_index.device() == node_labels.device(),
              "edge_index and node_labels must be on the same device, got ",
              edge_index.device(), " and ", node_labels.device());
  if (edge_labels.has_value()) {
    const auto& labels = edge_labels.value();
    KD_CHECK_ARG(labels.dim() == 1 && labels.scalar_type() == at::kLong &&
                     labels.size(0) == edge_index.size(1),
                 labels, "edge_labels",
                 "a 1-D int64 tensor with one entry per edge (E = edge_index.size(1))");
    TORCH_CHECK(labels.device() == edge_index.device(),
                "edge_labels must be on edge_index's device, got ", labels.device());
    if (labels.numel() > 0) {
      const auto low = labels.min().item<int64_t>();
      const auto high = labels.max().item<int64_t>();
      TORCH_CHECK(low >= 0 && high < (int64_t{1} << 31),
                  "edge_labels must lie in [0, 2^31), got values in [", low, ", ",
                  high, "] (map categorical labels to 0, 1, ... first)");
    }
  }
}

void check_tree_hash_edge_range(const at::Tensor& edge_index, int64_t num_nodes,
                                bool known_bad) {
  if (edge_index.numel() == 0) return;
  const auto low = edge_index.min().item<int64_t>();
  const auto high = edge_index.max().item<int64_t>();
  TORCH_CHECK(!known_bad && low >= 0 && high < num_nodes,
              "edge_index must hold node indices in [0, N) = [0, ", num_nodes,
              ") where N = node_labels.size(0), got values in [", low, ", ", high,
              "]");
}

TORCH_LIBRARY_FRAGMENT(graphkd, m) {
  m.def("tree_hash(Tensor edge_index, Tensor node_labels, int num_hops, Tensor? edge_labels=None) -> Tensor");
}

}  // namespace graphkd
