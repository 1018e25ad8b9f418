// tree_hash: exact ids of the computation trees of every node, depth 0..L.
//
// Node v's depth-l computation tree is the rooted unordered tree whose root is
// labelled node_labels[v] and whose children are the depth-(l-1) trees of the
// message senders u of every edge u -> v (edge_index[0] = source, [1] =
// target, PyG's source-to-target flow), each attached by an edge labelled
// edge_labels[e]. Depth 0 is the root label alone.
//
// Args:
//   edge_index:  int64 [2, E], values in [0, N).
//   node_labels: int64 [N], any values.
//   num_hops:    L >= 0.
//   edge_labels: optional int64 [E], values in [0, 2^31); all 0 if absent.
// Returns:
//   ids: int64 [L + 1, N]. ids[l, u] == ids[l, v] if and only if the depth-l
//        trees of u and v are isomorphic. At each depth the ids are dense,
//        0 .. K_l - 1, numbered in order of the first node holding each tree.
//
// Method: Weisfeiler-Lehman-style refinement in O(L * (E log d + N)). The
// depth-l tree of v is determined by, and determines, its signature
//   (node_labels[v], sorted multiset of (edge_labels[e], ids[l - 1, u])).
// Signatures are reduced to 64-bit values that are either exact codes (one to
// one, for nodes with few children) or hashes; two nodes whose values are
// hashes share an id only after their full signatures compare equal, so a
// hash collision can never merge different trees (tree_hash_common.h).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

namespace graphkd {

// Dtype, shape, device and edge label checks shared by every backend.
void check_tree_hash_inputs(const at::Tensor& edge_index,
                            const at::Tensor& node_labels, int64_t num_hops,
                            const c10::optional<at::Tensor>& edge_labels);

// Raises unless every node index of edge_index lies in [0, num_nodes); with
// known_bad (a kernel found a bad index) it raises in any case, with the
// observed range in the message.
void check_tree_hash_edge_range(const at::Tensor& edge_index, int64_t num_nodes,
                                bool known_bad = false);

at::Tensor tree_hash_cpu(const at::Tensor& edge_index,
                         const at::Tensor& node_labels, int64_t num_hops,
                         const c10::optional<at::Tensor>& edge_labels);
at::Tensor tree_hash_cuda(const at::Tensor& edge_index,
                          const at::Tensor& node_labels, int64_t num_hops,
                          const c10::optional<at::Tensor>& edge_labels);

}  // namespace graphkd
