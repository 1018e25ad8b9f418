// Per-element logic of tree_hash, shared by the CPU and CUDA kernels.
//
// Node v's signature at depth l >= 1 is
//   (previous id of v, multiset of child keys tree_child_key(edge label, previous id of the sender))
// where "previous id" is the depth-(l - 1) id; the previous id of v stands for
// its label, since equal depth-(l - 1) trees have equal root labels. Two nodes
// get the same id at depth l if and only if their signatures are equal.
//
// Two ways of finding equal signatures live here:
//
// * Sorted keys and a table (the CUDA kernel):
//   1. tree_signature_element: gather v's child keys into its slice
//      keys[ptr[v] : ptr[v + 1]] of the in-edge CSR, sort them, hash the
//      signature (label, keys).
//   2. tree_table_insert_element: find or claim v's signature in an open
//      addressing table keyed by the hash; the slot keeps the smallest node
//      holding that exact signature (compare-and-swap, then atomic min), so
//      the result does not depend on the order of the threads.
//   3. afterwards the slot's node is v's representative; representatives are
//      numbered in node order by a prefix sum (done by each backend).
//
// * Exact codes, hashes and a check afterwards (the CPU kernel):
//   1. tree_signature_hash_element: for a node with few children, an exact
//      code of its signature (the sorted keys packed into 63 bits, one-to-one,
//      marked by kTreeExactBit); for the others a hash that sums over the
//      children, so nothing is sorted.
//   2. the backend numbers these 64-bit values in order of first occurrence.
//   3. tree_signatures_match: every node whose value is a hash is compared,
//      key by key, with the first node that got its id; a hash collision
//      between different signatures is caught there and the backend then
//      numbers that depth again, comparing full signatures on every match.
#pragma once

#include <cstdint>

#include "../common/macros.h"

namespace graphkd {

constexpr int64_t kEmptySlot = -1;

KD_HD uint64_t tree_hash_mix(uint64_t x) {
  // splitmix64 finaliser: a bijection with full avalanche.
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

template <typename Key>
KD_HD void tree_sift_down(Key* keys, int64_t root, int64_t end) {
  while (true) {
    int64_t child = 2 * root + 1;
    if (child >= end) return;
    if (child + 1 < end && keys[child + 1] > keys[child]) ++child;
    if (keys[root] >= keys[child]) return;
    const Key swap = keys[root];
    keys[root] = keys[child];
    keys[child] = swap;
    root = child;
  }
}

// Sorts keys[0, count) ascending: insertion sort for short runs, heap sort
// (no recursion, no allocation: usable on the device) for long ones.
template <typename Key>
KD_HD void tree_sort_keys(Key* keys, int64_t count) {
  if (count <= 24) {
    for (int64_t i = 1; i < count; ++i) {
      const Key key = keys[i];
      int64_t j = i - 1;
      while (j >= 0 && keys[j] > key) {
        keys[j + 1] = keys[j];
        --j;
      }
      keys[j + 1] = key;
    }
    return;
  }
  for (int64_t start = count / 2 - 1; start >= 0; --start) tree_sift_down(keys, start, count);
  for (int64_t end = count - 1; end > 0; --end) {
    const Key swap = keys[0];
    keys[0] = keys[end];
    keys[end] = swap;
    tree_sift_down(keys, 0, end);
  }
}

// A child's key: edge label and the sender's previous id as one number,
// edge_label * id_bound + child_id, for ids in [0, id_bound); keys compare as
// (edge label, id) pairs.
KD_HD int64_t tree_child_key(int64_t edge_label, int64_t child_id, int64_t id_bound) {
  return edge_label * id_bound + child_id;
}

// Step 1 for node v. With previous_ids == nullptr (depth 0) the signature is
// the label alone.
KD_HD void tree_signature_element(int64_t v, const int64_t* node_labels,
                                  const int64_t* ptr, const int64_t* sources,
                                  const int64_t* edge_labels,
                                  const int64_t* previous_ids, int64_t* keys,
                                  uint64_t* hashes) {
  uint64_t hash = tree_hash_mix(static_cast<uint64_t>(node_labels[v]));
  if (previous_ids == nullptr) {
    hashes[v] = hash;
    return;
  }
  const int64_t begin = ptr[v], end = ptr[v + 1];
  for (int64_t e = begin; e < end; ++e) {
    const int64_t edge_label = edge_labels == nullptr ? 0 : edge_labels[e];
    keys[e] = tree_child_key(edge_label, previous_ids[sources[e]], int64_t{1} << 32);
  }
  tree_sort_keys(keys + begin, end - begin);
  hash = tree_hash_mix(hash ^ static_cast<uint64_t>(end - begin));
  for (int64_t e = begin; e < end; ++e) {
    hash = tree_hash_mix(hash ^ static_cast<uint64_t>(keys[e]));
  }
  hashes[v] = hash;
}

// Whether nodes u and v have the same signature (exact comparison).
KD_HD bool tree_signatures_equal(int64_t u, int64_t v, const int64_t* node_labels,
                                 const int64_t* ptr, const int64_t* keys,
                                 const uint64_t* hashes, bool with_children) {
  if (hashes[u] != hashes[v] || node_labels[u] != node_labels[v]) return false;
  if (!with_children) return true;
  const int64_t count = ptr[u + 1] - ptr[u];
  if (count != ptr[v + 1] - ptr[v]) return false;
  const int64_t* keys_u = keys + ptr[u];
  const int64_t* keys_v = keys + ptr[v];
  for (int64_t k = 0; k < count; ++k) {
    if (keys_u[k] != keys_v[k]) return false;
  }
  return true;
}

KD_HD int64_t tree_atomic_cas(int64_t* address, int64_t expected, int64_t desired) {
#ifdef __CUDA_ARCH__
  return static_cast<int64_t>(atomicCAS(reinterpret_cast<unsigned long long*>(address),
                                        static_cast<unsigned long long>(expected),
                                        static_cast<unsigned long long>(desired)));
#else
  __atomic_compare_exchange_n(address, &expected, desired, false, __ATOMIC_ACQ_REL,
                              __ATOMIC_ACQUIRE);
  return expected;  // the value found, whether or not the swap happened
#endif
}

KD_HD int64_t tree_atomic_load(const int64_t* address) {
#ifdef __CUDA_ARCH__
  return *reinterpret_cast<const volatile int64_t*>(address);
#else
  return __atomic_load_n(address, __ATOMIC_ACQUIRE);
#endif
}

KD_HD void tree_atomic_min(int64_t* address, int64_t value) {
  int64_t current = tree_atomic_load(address);
  while (value < current) {
    const int64_t found = tree_atomic_cas(address, current, value);
    if (found == current) return;
    current = found;
  }
}

// Step 2 for node v; returns the slot that holds v's signature. The table
// (capacity a power of two, > number of nodes) starts filled with kEmptySlot.
KD_HD int64_t tree_table_insert_element(int64_t v, int64_t* table, int64_t mask,
                                        const int64_t* node_labels,
                                        const int64_t* ptr, const int64_t* keys,
                                        const uint64_t* hashes,
                                        bool with_children) {
  int64_t slot = static_cast<int64_t>(hashes[v] & static_cast<uint64_t>(mask));
  while (true) {
    int64_t holder = tree_atomic_load(table + slot);
    if (holder == kEmptySlot) {
      holder = tree_atomic_cas(table + slot, kEmptySlot, v);
      if (holder == kEmptySlot) return slot;  // claimed
    }
    // Every node ever stored in this slot has the same signature, so any
    // holder can stand for it in the comparison.
    if (tree_signatures_equal(holder, v, node_labels, ptr, keys, hashes, with_children)) {
      tree_atomic_min(table + slot, v);
      return slot;
    }
    slot = (slot + 1) & mask;
  }
}

// ---- Signature keys, exact codes and a check afterwards (the CPU kernel) ----

// Children a node's signature is read in fixed-width, branch-free steps for:
// nodes with at most kTreeWideWidth senders (and, where most nodes have at
// most 4, kTreeNarrowWidth) are read as that many lanes, the lanes past the
// node's own senders masked out. The CSR arrays carry kTreeWidthPadding extra
// entries so that these reads stay inside them.
constexpr int kTreeNarrowWidth = 4;
constexpr int kTreeWideWidth = 8;
constexpr int64_t kTreeWidthPadding = kTreeWideWidth;

// Signature hashes with this bit set are exact codes (one-to-one with the
// signature); without it they are hashes that must be checked.
constexpr uint64_t kTreeExactBit = uint64_t{1} << 63;
constexpr uint64_t kTreeHashBits = kTreeExactBit - 1;

// A bijection of [0, 2^63) (splitmix64's steps, modulo 2^63), so that exact
// codes keep their meaning but spread over a hash table.
KD_HD uint64_t tree_hash_mix63(uint64_t x) {
  x ^= x >> 31;
  x = (x * 0xbf58476d1ce4e5b9ULL) & kTreeHashBits;
  x ^= x >> 29;
  x = (x * 0x94d049bb133111ebULL) & kTreeHashBits;
  return x ^ (x >> 32);
}

KD_HD void tree_compare_exchange(int64_t& a, int64_t& b) {
  const int64_t low = a < b ? a : b;
  const int64_t high = a < b ? b : a;
  a = low;
  b = high;
}

// Sorting networks (no data-dependent branches) for Width = 4 or 8 keys.
template <int Width>
KD_HD void tree_sort_network(int64_t* k) {
  if (Width == 4) {
    tree_compare_exchange(k[0], k[1]);
    tree_compare_exchange(k[2], k[3]);
    tree_compare_exchange(k[0], k[2]);
    tree_compare_exchange(k[1], k[3]);
    tree_compare_exchange(k[1], k[2]);
  } else {
    tree_compare_exchange(k[0], k[2]);
    tree_compare_exchange(k[1], k[3]);
    tree_compare_exchange(k[4], k[6]);
    tree_compare_exchange(k[5], k[7]);
    tree_compare_exchange(k[0], k[4]);
    tree_compare_exchange(k[1], k[5]);
    tree_compare_exchange(k[2], k[6]);
    tree_compare_exchange(k[3], k[7]);
    tree_compare_exchange(k[0], k[1]);
    tree_compare_exchange(k[2], k[3]);
    tree_compare_exchange(k[4], k[5]);
    tree_compare_exchange(k[6], k[7]);
    tree_compare_exchange(k[2], k[4]);
    tree_compare_exchange(k[3], k[5]);
    tree_compare_exchange(k[1], k[4]);
    tree_compare_exchange(k[3], k[6]);
    tree_compare_exchange(k[1], k[2]);
    tree_compare_exchange(k[3], k[4]);
    tree_compare_exchange(k[5], k[6]);
  }
}

// All ones if lane < count, else zero (a mask, not a branch).
KD_HD uint64_t tree_lane_mask(int64_t lane, int64_t count) {
  return static_cast<uint64_t>((lane - count) >> 63);
}

// Edge label type of graphs without edge labels (every edge labelled 0): the
// functions below take a null pointer to it, which the compiler sees through.
struct TreeNoEdgeLabels {};

// Key of the child behind CSR slot e: edge label and the sender's previous id
// as one number, edge_label * id_bound + id, where ids lie in [0, id_bound).
template <typename Index, typename EdgeLabel>
KD_HD int64_t tree_slot_key(int64_t e, const Index* sources, const EdgeLabel* edge_labels,
                            const int64_t* previous_ids, int64_t id_bound) {
  return tree_child_key(static_cast<int64_t>(edge_labels[e]), previous_ids[sources[e]], id_bound);
}

template <typename Index>
KD_HD int64_t tree_slot_key(int64_t e, const Index* sources, const TreeNoEdgeLabels*,
                            const int64_t* previous_ids, int64_t) {
  return previous_ids[sources[e]];
}

// Largest in-degree d <= width whose signatures fit an exact code below 2^63
// (see tree_exact_code), for ids in [0, id_bound) and keys in [0, key_bound);
// -1 if none does.
KD_HD int tree_max_exact_degree(int64_t id_bound, int64_t key_bound, int width) {
  // code < id_bound * (kTreeWideWidth + 1) * key_bound^d
  const double limit = 9.2e18;  // a little below 2^63
  double bound = static_cast<double>(id_bound) * (kTreeWideWidth + 1);
  int degree = -1;
  for (int d = 0; d <= width && bound < limit; ++d) {
    degree = d;
    bound *= static_cast<double>(key_bound);
  }
  return degree;
}

// Exact code of node v with count <= Width children: its previous id, its
// in-degree and its sorted child keys as one mixed-radix number,
//   previous id + id_bound * (count + (kTreeWideWidth + 1) * sum_i keys[i] * key_bound^i),
// one-to-one for every count <= kTreeWideWidth whatever the Width (the caller
// checked that it fits, tree_max_exact_degree), passed through the bijection
// tree_hash_mix63 and marked with kTreeExactBit.
template <int Width, typename Index, typename EdgeLabel>
KD_HD uint64_t tree_exact_code(int64_t v, int64_t begin, int64_t count, const Index* sources,
                               const EdgeLabel* edge_labels, const int64_t* previous_ids,
                               int64_t id_bound, int64_t key_bound) {
  int64_t keys[Width];
  for (int lane = 0; lane < Width; ++lane) {
    const int64_t key = tree_slot_key(begin + lane, sources, edge_labels, previous_ids, id_bound);
    keys[lane] = lane < count ? key : INT64_MAX;
  }
  tree_sort_network<Width>(keys);
  uint64_t children = 0;
  for (int lane = Width - 1; lane >= 0; --lane) {
    const uint64_t next = children * static_cast<uint64_t>(key_bound) + static_cast<uint64_t>(keys[lane]);
    children = lane < count ? next : children;
  }
  const uint64_t code =
      static_cast<uint64_t>(previous_ids[v]) +
      static_cast<uint64_t>(id_bound) * (static_cast<uint64_t>(count) + (kTreeWideWidth + 1) * children);
  return tree_hash_mix63(code) | kTreeExactBit;
}

// Hash of node v's signature (without kTreeExactBit): a sum over its children,
// so that it needs no sorting. Equal signatures give equal hashes; different
// ones almost always differ, which tree_signatures_match checks.
template <int Width, typename Index, typename EdgeLabel>
KD_HD uint64_t tree_multiset_hash(int64_t v, int64_t begin, int64_t count, const Index* sources,
                                  const EdgeLabel* edge_labels, const int64_t* previous_ids,
                                  int64_t id_bound) {
  uint64_t sum = 0;
  if (count <= Width) {
    for (int lane = 0; lane < Width; ++lane) {
      const int64_t key = tree_slot_key(begin + lane, sources, edge_labels, previous_ids, id_bound);
      sum += tree_hash_mix(static_cast<uint64_t>(key)) & tree_lane_mask(lane, count);
    }
  } else {
    for (int64_t e = begin; e < begin + count; ++e) {
      sum += tree_hash_mix(static_cast<uint64_t>(
          tree_slot_key(e, sources, edge_labels, previous_ids, id_bound)));
    }
  }
  const uint64_t root = static_cast<uint64_t>(previous_ids[v]) ^ (static_cast<uint64_t>(count) << 40);
  return tree_hash_mix(sum ^ tree_hash_mix(root ^ 0x5851f42d4c957f2dULL)) & kTreeHashBits;
}

// Step 1 for node v at depth >= 1: its exact code if its in-degree is at most
// max_exact_degree (<= Width), else its multiset hash.
template <int Width, typename Index, typename EdgeLabel>
KD_HD uint64_t tree_signature_hash_element(int64_t v, const int64_t* ptr, const Index* sources,
                                           const EdgeLabel* edge_labels,
                                           const int64_t* previous_ids, int64_t id_bound,
                                           int64_t key_bound, int max_exact_degree) {
  const int64_t begin = ptr[v], count = ptr[v + 1] - begin;
  if (count <= max_exact_degree) {
    if (Width == kTreeWideWidth && count <= kTreeNarrowWidth) {
      return tree_exact_code<kTreeNarrowWidth>(v, begin, count, sources, edge_labels, previous_ids,
                                               id_bound, key_bound);
    }
    return tree_exact_code<Width>(v, begin, count, sources, edge_labels, previous_ids, id_bound,
                                  key_bound);
  }
  return tree_multiset_hash<Width>(v, begin, count, sources, edge_labels, previous_ids, id_bound);
}

// v's child keys, sorted, into keys[0, count); returns count.
template <typename Index, typename EdgeLabel>
KD_HD int64_t tree_gather_sorted_keys(int64_t v, const int64_t* ptr, const Index* sources,
                                      const EdgeLabel* edge_labels, const int64_t* previous_ids,
                                      int64_t id_bound, int64_t* keys) {
  const int64_t begin = ptr[v], count = ptr[v + 1] - begin;
  for (int64_t k = 0; k < count; ++k) {
    keys[k] = tree_slot_key(begin + k, sources, edge_labels, previous_ids, id_bound);
  }
  tree_sort_keys(keys, count);
  return count;
}

// Step 3: whether u and v have equal signatures at depth >= 1, comparing the
// sorted child keys one by one. scratch_u and scratch_v hold at least
// max(in-degree(u), kTreeWideWidth) keys each.
template <typename Index, typename EdgeLabel>
KD_HD bool tree_signatures_match(int64_t u, int64_t v, const int64_t* ptr, const Index* sources,
                                 const EdgeLabel* edge_labels, const int64_t* previous_ids,
                                 int64_t id_bound, int64_t* scratch_u, int64_t* scratch_v) {
  if (previous_ids[u] != previous_ids[v]) return false;
  const int64_t count = ptr[u + 1] - ptr[u];
  if (count != ptr[v + 1] - ptr[v]) return false;
  tree_gather_sorted_keys(u, ptr, sources, edge_labels, previous_ids, id_bound, scratch_u);
  tree_gather_sorted_keys(v, ptr, sources, edge_labels, previous_ids, id_bound, scratch_v);
  for (int64_t k = 0; k < count; ++k) {
    if (scratch_u[k] != scratch_v[k]) return false;
  }
  return true;
}

}  // namespace graphkd
