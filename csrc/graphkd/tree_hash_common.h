// Per-element logic of tree_hash, shared by the CPU and CUDA kernels.
//
// One refinement step, for every node v (any order, in parallel):
//   1. tree_signature_element: gather v's child keys
//      (edge_label << 32 | previous id of the sender) into its slice
//      keys[ptr[v] : ptr[v + 1]] of the in-edge CSR, sort them, hash the
//      signature (label, keys).
//   2. tree_table_insert_element: find or claim v's signature in an open
//      addressing table keyed by the hash; the slot keeps the smallest node
//      holding that exact signature (compare-and-swap, then atomic min), so
//      the result does not depend on the order of the threads.
//   3. afterwards the slot's node is v's representative; representatives are
//      numbered in node order by a prefix sum (done by each backend).
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

KD_HD void tree_sift_down(int64_t* keys, int64_t root, int64_t end) {
  while (true) {
    int64_t child = 2 * root + 1;
    if (child >= end) return;
    if (child + 1 < end && keys[child + 1] > keys[child]) ++child;
    if (keys[root] >= keys[child]) return;
    const int64_t swap = keys[root];
    keys[root] = keys[child];
    keys[child] = swap;
    root = child;
  }
}

// Sorts keys[0, count) ascending: insertion sort for short runs, heap sort
// (no recursion, no allocation: usable on the device) for long ones.
KD_HD void tree_sort_keys(int64_t* keys, int64_t count) {
  if (count <= 24) {
    for (int64_t i = 1; i < count; ++i) {
      const int64_t key = keys[i];
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
    const int64_t swap = keys[0];
    keys[0] = keys[end];
    keys[end] = swap;
    tree_sift_down(keys, 0, end);
  }
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
    keys[e] = (edge_label << 32) | previous_ids[sources[e]];
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

}  // namespace graphkd
