// CPU kernel of graphkd::tree_hash: at::parallel_for over the shared
// per-element logic.
#include <algorithm>
#include <atomic>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../tree_hash.h"
#include "../tree_hash_common.h"

namespace graphkd {
namespace {

constexpr int64_t kGrain = 4096;

}  // namespace

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
  const auto options = node_labels.options();
  auto ids = at::empty({num_hops + 1, num_nodes}, options);
  if (num_nodes == 0) {
    check_tree_hash_edge_range(edge_index, num_nodes);
    return ids;
  }

  // In-edge CSR (grouped by target): a counting sort in which each of T
  // chunks of edges counts and places its own edges, so no atomics are needed
  // and the order inside a group is deterministic. Node indices are checked in
  // the counting pass.
  const int64_t* source_data = edge_index.data_ptr<int64_t>();
  const int64_t* target_data = source_data + num_edges;
  const int64_t num_chunks = std::max<int64_t>(
      1, std::min<int64_t>({static_cast<int64_t>(at::get_num_threads()), num_edges / kGrain,
                            (int64_t{1} << 26) / (num_nodes + 1)}));
  const int64_t chunk_size = (num_edges + num_chunks - 1) / num_chunks;
  auto chunk_cursors = at::zeros({num_chunks, num_nodes}, options);
  int64_t* cursor_data = chunk_cursors.data_ptr<int64_t>();
  std::atomic<bool> bad_index{false};
  at::parallel_for(0, num_chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk) {
      int64_t* counts = cursor_data + chunk * num_nodes;
      const int64_t end = std::min(num_edges, (chunk + 1) * chunk_size);
      bool bad = false;
      for (int64_t e = chunk * chunk_size; e < end; ++e) {
        const int64_t source = source_data[e], target = target_data[e];
        if (source < 0 || source >= num_nodes || target < 0 || target >= num_nodes) {
          bad = true;
          continue;
        }
        ++counts[target];
      }
      if (bad) bad_index.store(true);
    }
  });
  if (bad_index.load()) check_tree_hash_edge_range(edge_index, num_nodes, true);
  auto ptr = at::empty({num_nodes + 1}, options);
  int64_t* ptr_data = ptr.data_ptr<int64_t>();
  int64_t offset = 0;
  for (int64_t v = 0; v < num_nodes; ++v) {
    ptr_data[v] = offset;
    for (int64_t chunk = 0; chunk < num_chunks; ++chunk) {
      const int64_t count = cursor_data[chunk * num_nodes + v];
      cursor_data[chunk * num_nodes + v] = offset;
      offset += count;
    }
  }
  ptr_data[num_nodes] = offset;

  const bool with_edge_labels = edge_labels_in.has_value();
  const auto edge_labels = with_edge_labels ? edge_labels_in->contiguous() : at::Tensor();
  const int64_t* edge_label_data = with_edge_labels ? edge_labels.data_ptr<int64_t>() : nullptr;
  auto sources = at::empty({num_edges}, options);
  auto sorted_edge_labels = with_edge_labels ? at::empty({num_edges}, options) : at::Tensor();
  int64_t* sorted_sources = sources.data_ptr<int64_t>();
  int64_t* sorted_edge_label_data =
      with_edge_labels ? sorted_edge_labels.data_ptr<int64_t>() : nullptr;
  at::parallel_for(0, num_chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk) {
      int64_t* cursor = cursor_data + chunk * num_nodes;
      const int64_t end = std::min(num_edges, (chunk + 1) * chunk_size);
      for (int64_t e = chunk * chunk_size; e < end; ++e) {
        const int64_t position = cursor[target_data[e]]++;
        sorted_sources[position] = source_data[e];
        if (with_edge_labels) sorted_edge_label_data[position] = edge_label_data[e];
      }
    }
  });
  chunk_cursors = at::Tensor();

  int64_t capacity = 1;
  while (capacity < 2 * num_nodes) capacity <<= 1;
  auto table = at::empty({capacity}, options);
  auto keys = at::empty({num_edges}, options);
  auto hashes = at::empty({num_nodes}, options);
  auto representatives = at::empty({num_nodes}, options);
  auto first_ids = at::empty({num_nodes}, options);

  const int64_t* label_data = node_labels.data_ptr<int64_t>();
  int64_t* table_data = table.data_ptr<int64_t>();
  int64_t* key_data = keys.data_ptr<int64_t>();
  auto* hash_data = reinterpret_cast<uint64_t*>(hashes.data_ptr<int64_t>());
  int64_t* representative_data = representatives.data_ptr<int64_t>();
  int64_t* first_id_data = first_ids.data_ptr<int64_t>();

  for (int64_t depth = 0; depth <= num_hops; ++depth) {
    const int64_t* previous_ids = depth == 0 ? nullptr : ids[depth - 1].data_ptr<int64_t>();
    int64_t* current_ids = ids[depth].data_ptr<int64_t>();
    const bool with_children = depth > 0;
    table.fill_(kEmptySlot);
    at::parallel_for(0, num_nodes, kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t v = begin; v < end; ++v) {
        tree_signature_element(v, label_data, ptr_data, sorted_sources, sorted_edge_label_data,
                               previous_ids, key_data, hash_data);
      }
    });
    // The slot of each node for now; its final holder (the smallest node with
    // that signature) is known once every node is in.
    at::parallel_for(0, num_nodes, kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t v = begin; v < end; ++v) {
        representative_data[v] = tree_table_insert_element(
            v, table_data, capacity - 1, label_data, ptr_data, key_data, hash_data, with_children);
      }
    });
    at::parallel_for(0, num_nodes, kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t v = begin; v < end; ++v) {
        representative_data[v] = table_data[representative_data[v]];
        first_id_data[v] = representative_data[v] == v ? 1 : 0;
      }
    });
    // Representatives numbered in node order: an exclusive prefix sum.
    int64_t next_id = 0;
    for (int64_t v = 0; v < num_nodes; ++v) {
      const int64_t is_first = first_id_data[v];
      first_id_data[v] = next_id;
      next_id += is_first;
    }
    at::parallel_for(0, num_nodes, kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t v = begin; v < end; ++v) current_ids[v] = first_id_data[representative_data[v]];
    });
  }
  return ids;
}

TORCH_LIBRARY_IMPL(graphkd, CPU, m) {
  m.impl("tree_hash", &tree_hash_cpu);
}

}  // namespace graphkd
