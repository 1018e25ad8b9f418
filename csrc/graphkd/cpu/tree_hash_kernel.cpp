// CPU kernel of graphkd::tree_hash: at::parallel_for over the shared
// per-element logic.
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../tree_hash.h"
#include "../tree_hash_common.h"

namespace graphkd {

at::Tensor tree_hash_cpu(const at::Tensor& edge_index_in,
                         const at::Tensor& node_labels_in, int64_t num_hops,
                         const c10::optional<at::Tensor>& edge_labels_in) {
  check_tree_hash_inputs(edge_index_in, node_labels_in, num_hops, edge_labels_in);
  TORCH_CHECK(edge_index_in.device().is_cpu(), "edge_index must be a CPU tensor, got ",
              edge_index_in.device());
  const auto edge_index = edge_index_in.contiguous();
  const auto node_labels = node_labels_in.contiguous();
  const int64_t num_nodes = node_labels.size(0);
  const int64_t num_edges = edge_index.size(1);
  auto ids = at::empty({num_hops + 1, num_nodes}, node_labels.options());
  if (num_nodes == 0) return ids;

  // In-edge CSR (grouped by target) by a counting sort; the order inside a
  // group does not matter since child keys are sorted.
  const int64_t* source_data = edge_index.data_ptr<int64_t>();
  const int64_t* target_data = source_data + num_edges;
  auto ptr = at::zeros({num_nodes + 1}, node_labels.options());
  auto sources = at::empty({num_edges}, node_labels.options());
  int64_t* ptr_data = ptr.data_ptr<int64_t>();
  int64_t* sorted_sources = sources.data_ptr<int64_t>();
  const bool with_edge_labels = edge_labels_in.has_value();
  at::Tensor edge_labels, sorted_edge_labels_tensor;
  int64_t* sorted_edge_labels = nullptr;
  const int64_t* edge_label_data = nullptr;
  if (with_edge_labels) {
    edge_labels = edge_labels_in->contiguous();
    edge_label_data = edge_labels.data_ptr<int64_t>();
    sorted_edge_labels_tensor = at::empty({num_edges}, node_labels.options());
    sorted_edge_labels = sorted_edge_labels_tensor.data_ptr<int64_t>();
  }
  for (int64_t e = 0; e < num_edges; ++e) ++ptr_data[target_data[e] + 1];
  for (int64_t v = 0; v < num_nodes; ++v) ptr_data[v + 1] += ptr_data[v];
  {
    std::vector<int64_t> cursor(ptr_data, ptr_data + num_nodes);
    for (int64_t e = 0; e < num_edges; ++e) {
      const int64_t position = cursor[target_data[e]]++;
      sorted_sources[position] = source_data[e];
      if (with_edge_labels) sorted_edge_labels[position] = edge_label_data[e];
    }
  }

  int64_t capacity = 1;
  while (capacity < 2 * num_nodes) capacity <<= 1;
  auto table = at::empty({capacity}, node_labels.options());
  auto keys = at::empty({num_edges}, node_labels.options());
  auto hashes = at::empty({num_nodes}, node_labels.options());
  auto slots = at::empty({num_nodes}, node_labels.options());
  std::vector<int64_t> first_id(num_nodes);

  const int64_t* label_data = node_labels.data_ptr<int64_t>();
  int64_t* table_data = table.data_ptr<int64_t>();
  int64_t* key_data = keys.data_ptr<int64_t>();
  auto* hash_data = reinterpret_cast<uint64_t*>(hashes.data_ptr<int64_t>());
  int64_t* slot_data = slots.data_ptr<int64_t>();
  const int64_t grain = 2048;

  for (int64_t depth = 0; depth <= num_hops; ++depth) {
    const int64_t* previous_ids = depth == 0 ? nullptr : ids[depth - 1].data_ptr<int64_t>();
    int64_t* current_ids = ids[depth].data_ptr<int64_t>();
    const bool with_children = depth > 0;
    table.fill_(kEmptySlot);
    at::parallel_for(0, num_nodes, grain, [&](int64_t begin, int64_t end) {
      for (int64_t v = begin; v < end; ++v) {
        tree_signature_element(v, label_data, ptr_data, sorted_sources, sorted_edge_labels,
                               previous_ids, key_data, hash_data);
      }
    });
    at::parallel_for(0, num_nodes, grain, [&](int64_t begin, int64_t end) {
      for (int64_t v = begin; v < end; ++v) {
        slot_data[v] = tree_table_insert_element(v, table_data, capacity - 1, label_data,
                                                 ptr_data, key_data, hash_data, with_children);
      }
    });
    // Representatives (the first node of each tree) numbered in node order.
    int64_t next_id = 0;
    for (int64_t v = 0; v < num_nodes; ++v) {
      const int64_t representative = table_data[slot_data[v]];
      current_ids[v] = representative == v ? (first_id[v] = next_id++) : first_id[representative];
    }
  }
  return ids;
}

TORCH_LIBRARY_IMPL(graphkd, CPU, m) {
  m.impl("tree_hash", &tree_hash_cpu);
}

}  // namespace graphkd
