// CUDA kernel of graphkd::tree_hash: grids over the shared per-element logic.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../index_to_ptr.h"
#include "../tree_hash.h"
#include "../tree_hash_common.h"

namespace graphkd {
namespace {

__global__ void tree_signature_kernel(int64_t num_nodes, const int64_t* node_labels,
                                      const int64_t* ptr, const int64_t* sources,
                                      const int64_t* edge_labels,
                                      const int64_t* previous_ids, int64_t* keys,
                                      uint64_t* hashes) {
  KD_CUDA_KERNEL_LOOP(v, num_nodes) {
    tree_signature_element(v, node_labels, ptr, sources, edge_labels, previous_ids, keys,
                           hashes);
  }
}

__global__ void tree_insert_kernel(int64_t num_nodes, int64_t* table, int64_t mask,
                                   const int64_t* node_labels, const int64_t* ptr,
                                   const int64_t* keys, const uint64_t* hashes,
                                   bool with_children, int64_t* slots) {
  KD_CUDA_KERNEL_LOOP(v, num_nodes) {
    slots[v] = tree_table_insert_element(v, table, mask, node_labels, ptr, keys, hashes,
                                         with_children);
  }
}

}  // namespace

at::Tensor tree_hash_cuda(const at::Tensor& edge_index_in,
                          const at::Tensor& node_labels_in, int64_t num_hops,
                          const c10::optional<at::Tensor>& edge_labels_in) {
  check_tree_hash_inputs(edge_index_in, node_labels_in, num_hops, edge_labels_in);
  TORCH_CHECK(edge_index_in.is_cuda(), "edge_index must be a CUDA tensor, got ",
              edge_index_in.device());
  const c10::cuda::CUDAGuard device_guard(edge_index_in.device());
  const auto node_labels = node_labels_in.contiguous();
  const int64_t num_nodes = node_labels.size(0);
  check_tree_hash_edge_range(edge_index_in, num_nodes);
  auto ids = at::empty({num_hops + 1, num_nodes}, node_labels.options());
  if (num_nodes == 0) return ids;

  // In-edge CSR (grouped by target).
  const auto sorted = at::sort(edge_index_in[1], /*stable=*/true);
  const auto& order = std::get<1>(sorted);
  const auto ptr = index_to_ptr_cuda(std::get<0>(sorted), num_nodes);
  const auto sources = edge_index_in[0].index_select(0, order).contiguous();
  at::Tensor edge_labels;
  if (edge_labels_in.has_value()) edge_labels = edge_labels_in->index_select(0, order).contiguous();
  const int64_t num_edges = sources.numel();

  int64_t capacity = 1;
  while (capacity < 2 * num_nodes) capacity <<= 1;
  auto table = at::empty({capacity}, node_labels.options());
  auto keys = at::empty({num_edges}, node_labels.options());
  auto hashes = at::empty({num_nodes}, node_labels.options());
  auto slots = at::empty({num_nodes}, node_labels.options());
  const auto node_range = at::arange(num_nodes, node_labels.options());
  const auto stream = at::cuda::getCurrentCUDAStream();
  const auto blocks = KD_CUDA_BLOCKS(num_nodes);

  for (int64_t depth = 0; depth <= num_hops; ++depth) {
    const int64_t* previous_ids = depth == 0 ? nullptr : ids[depth - 1].data_ptr<int64_t>();
    table.fill_(kEmptySlot);
    tree_signature_kernel<<<blocks, KD_CUDA_THREADS, 0, stream>>>(
        num_nodes, node_labels.data_ptr<int64_t>(), ptr.data_ptr<int64_t>(),
        sources.data_ptr<int64_t>(),
        edge_labels.defined() ? edge_labels.data_ptr<int64_t>() : nullptr, previous_ids,
        keys.data_ptr<int64_t>(), reinterpret_cast<uint64_t*>(hashes.data_ptr<int64_t>()));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    tree_insert_kernel<<<blocks, KD_CUDA_THREADS, 0, stream>>>(
        num_nodes, table.data_ptr<int64_t>(), capacity - 1, node_labels.data_ptr<int64_t>(),
        ptr.data_ptr<int64_t>(), keys.data_ptr<int64_t>(),
        reinterpret_cast<const uint64_t*>(hashes.data_ptr<int64_t>()), depth > 0,
        slots.data_ptr<int64_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    // Representatives (the first node of each tree) numbered in node order.
    const auto representatives = table.index_select(0, slots);
    const auto first_ids = at::cumsum(representatives == node_range, 0) - 1;
    ids[depth].copy_(first_ids.index_select(0, representatives));
  }
  return ids;
}

TORCH_LIBRARY_IMPL(graphkd, CUDA, m) {
  m.impl("tree_hash", &tree_hash_cuda);
}

}  // namespace graphkd
