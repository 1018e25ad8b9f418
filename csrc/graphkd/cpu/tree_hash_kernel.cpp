// CPU kernel of graphkd::tree_hash: tasks over the shared per-element logic
// (the exact-code way of tree_hash_common.h), run by this thread and helpers
// from torch's thread pool (see SharedTasks for why not at::parallel_for).
//
// Per depth l >= 1:
//   1. in parallel, every node that can still share its tree gets a 64-bit
//      value: the exact code of its signature when it has few children, else
//      a hash (tree_signature_hash_element);
//   2. one sequential pass numbers the values in order of first occurrence
//      through an open addressing table, which gives the dense ids directly;
//      it follows step 1 piece by piece, so that the two overlap;
//   3. in parallel, every node whose value is a hash and that is not the
//      first of its id is compared, key by key, with that first node. This
//      fails only for a 64-bit collision between different signatures; the
//      depth is then numbered again with a full comparison at every match, so
//      ids never rely on a hash.
// A node alone with its depth-(l - 1) tree stays alone at every later depth
// ("settled"): it skips steps 1 and 3 and takes the next id in step 2. Once no
// class splits, the ids stay the same at every further depth.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../tree_hash.h"
#include "../tree_hash_common.h"

namespace graphkd {
namespace {

constexpr int64_t kGrain = 4096;
// Nodes looked ahead by the numbering pass to prefetch their table slots.
constexpr int64_t kPrefetchDistance = 16;

inline void prefetch(const void* address) {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(address);
#else
  (void)address;
#endif
}

// Tasks shared by the calling thread and helpers from torch's inter-op pool.
//
// Why not at::parallel_for: an OpenMP team ends in a barrier that waits for
// every thread of the team, and idle team threads spin. On a machine busy
// with other processes (these 2-core machines are shared), a team thread that
// is not scheduled stalls the others at the barrier, and spinning threads take
// the CPU from the one doing the sequential steps: with 2 OpenMP threads
// tree_hash ran 2-3x slower than with 1 there. Here tasks are claimed one at a
// time, helpers wait passively, and the caller waits only for tasks that a
// helper has started, never for a helper to start. On an idle machine it
// splits the work as an OpenMP team would.
class SharedTasks {
 public:
  SharedTasks(int64_t num_tasks, const std::function<void(int64_t)>& task)
      : num_tasks_(num_tasks), task_(&task) {}

  // Claims and runs tasks until none is left.
  void work() {
    for (int64_t task; (task = next_.fetch_add(1, std::memory_order_relaxed)) < num_tasks_;) {
      (*task_)(task);
      done_.fetch_add(1, std::memory_order_release);
    }
  }

  // Claims one task; -1 if none is left.
  int64_t claim() {
    const int64_t task = next_.fetch_add(1, std::memory_order_relaxed);
    return task < num_tasks_ ? task : -1;
  }

  void mark_done() { done_.fetch_add(1, std::memory_order_release); }

  void wait_all_done() const {
    while (done_.load(std::memory_order_acquire) < num_tasks_) std::this_thread::yield();
  }

 private:
  std::atomic<int64_t> next_{0}, done_{0};
  const int64_t num_tasks_;
  // Only called for a claimed task, so only while the caller is waiting for it.
  const std::function<void(int64_t)>* task_;
};

// Runs task(i) for every i in [0, num_tasks) on up to at::get_num_threads()
// threads; caller_work(tasks) is what the calling thread does meanwhile (by
// default, claim tasks like the helpers). Returns when every task is done.
template <typename CallerWork>
void run_shared_tasks(int64_t num_tasks, const std::function<void(int64_t)>& task,
                      const CallerWork& caller_work) {
  if (num_tasks <= 0) return;
  auto tasks = std::make_shared<SharedTasks>(num_tasks, task);
  const int64_t num_helpers =
      at::in_parallel_region() ? 0 : std::min<int64_t>(at::get_num_threads(), num_tasks) - 1;
  // A helper that starts after the tasks ran out finds none and returns; the
  // shared_ptr keeps what it looks at alive.
  for (int64_t helper = 0; helper < num_helpers; ++helper) at::launch([tasks] { tasks->work(); });
  caller_work(*tasks);
  tasks->wait_all_done();
}

void run_shared_tasks(int64_t num_tasks, const std::function<void(int64_t)>& task) {
  run_shared_tasks(num_tasks, task, [](SharedTasks& tasks) { tasks.work(); });
}

// Test hook: GRAPHKD_TREE_HASH_DEBUG_BITS=b keeps only the low b bits of every
// signature hash and turns exact codes off, so that collisions between
// different trees are common and the tests exercise their detection. Unset in
// normal use.
uint64_t debug_hash_mask() {
  const char* bits = std::getenv("GRAPHKD_TREE_HASH_DEBUG_BITS");
  if (bits == nullptr || *bits == '\0') return ~uint64_t{0};
  const long value = std::strtol(bits, nullptr, 10);
  if (value <= 0) return 0;
  if (value >= 63) return ~uint64_t{0};
  return (uint64_t{1} << value) - 1;
}

// The nodes that can still share their tree with another node ("active")
// are kept in a list, in node order; the others are settled: alone with their
// tree, so alone at every later depth. TreeWork::state holds, per list
// position, one of these, set when the depth is numbered:
constexpr uint8_t kFirstOfId = 1;  // the first node of its id ...
constexpr uint8_t kHasCompany = 2; // ... and a later node took the same id
constexpr uint8_t kSharesId = 4;   // took an earlier node's id
// A first node without company settles at the next depth.

struct TreeSlot {
  uint64_t key;
  int32_t id;
  int32_t generation;  // the slot is empty unless this is the table's current one
};

// Where a numbering pass writes.
struct NumberingOutput {
  int64_t* ids;             // per node
  int32_t* firsts;          // per id: first node
  int32_t* first_positions; // per id: list position of the first node
  int32_t* list;            // the active nodes, compacted
  uint64_t* keys;           // their signature values, compacted
  uint8_t* state;           // their states
  std::vector<int32_t>* to_check;
};

// Numbers 64-bit signature values in order of first occurrence, through an
// open addressing table. A pass is start(), then add() for the active nodes
// in node order (in pieces, as they become ready), then finish(). The slots
// are cleared once per call; each pass starts a new generation.
class FirstOccurrenceNumbering {
 public:
  explicit FirstOccurrenceNumbering(int64_t max_keys) {
    int64_t capacity = 16;
    while (capacity < max_keys + max_keys / 2) capacity <<= 1;  // load factor <= 2/3
    storage_ = at::empty({capacity * static_cast<int64_t>(sizeof(TreeSlot))}, at::kByte);
    slots_ = reinterpret_cast<TreeSlot*>(storage_.data_ptr<uint8_t>());
    capacity_ = capacity;
  }

  // Empties every slot; once per call, before the first pass.
  void clear() { std::memset(slots_, 0xff, capacity_ * sizeof(TreeSlot)); }  // generation -1

  // Starts a pass for at most max_active active nodes.
  void start(int64_t max_active) {
    int64_t size = 16;
    while (size < max_active + max_active / 2) size <<= 1;
    mask_ = static_cast<uint64_t>(std::min(size, capacity_) - 1);
    ++generation_;
    count_ = 0;
    next_node_ = 0;
    num_added_ = 0;
  }

  // Numbers the next active nodes, list[0, num) with signature values
  // keys[0, num), and every settled node before them (which takes the next
  // id). An active node takes the id of the first node with the same value
  // (with Exact, of the first with an equal signature: values that are
  // hashes also need same(first, v)), or the next id. Writes the nodes,
  // values and states compacted into out (in place is fine: the pass never
  // writes ahead of what it has read); without Exact, appends to
  // out.to_check every node that took an earlier node's id through a value
  // that is a hash.
  template <bool Exact, typename Same>
  void add(const int32_t* list, const uint64_t* keys, int64_t num, const NumberingOutput& out,
           const Same& same) {
    TreeSlot* const slots = slots_;
    const uint64_t mask = mask_;
    const int32_t generation = generation_;
    int64_t count = count_, next_node = next_node_, position = num_added_;
    // Locals, not out's fields: the byte stores to state may alias anything.
    int64_t* const ids = out.ids;
    int32_t* const firsts = out.firsts;
    int32_t* const first_positions = out.first_positions;
    int32_t* const list_out = out.list;
    uint64_t* const keys_out = out.keys;
    uint8_t* const state = out.state;
    std::vector<int32_t>* const to_check = out.to_check;
    for (int64_t i = 0; i < num; ++i, ++position) {
      const int64_t v = list[i];
      for (; next_node < v; ++next_node) ids[next_node] = count++;  // settled nodes
      next_node = v + 1;
      if (i + kPrefetchDistance < num) prefetch(slots + (keys[i + kPrefetchDistance] & mask));
      const uint64_t key = keys[i];
      list_out[position] = static_cast<int32_t>(v);
      keys_out[position] = key;
      uint64_t slot = key & mask;
      while (true) {
        TreeSlot& entry = slots[slot];
        if (entry.generation != generation) {
          entry = TreeSlot{key, static_cast<int32_t>(count), generation};
          state[position] = kFirstOfId;
          firsts[count] = static_cast<int32_t>(v);
          first_positions[count] = static_cast<int32_t>(position);
          ids[v] = count++;
          break;
        }
        if (entry.key == key &&
            (!Exact || (key & kTreeExactBit) != 0 || same(firsts[entry.id], v))) {
          ids[v] = entry.id;
          state[position] = kSharesId;
          state[first_positions[entry.id]] |= kHasCompany;
          if (!Exact && (key & kTreeExactBit) == 0) to_check->push_back(static_cast<int32_t>(v));
          break;
        }
        slot = (slot + 1) & mask;
      }
    }
    count_ = count;
    next_node_ = next_node;
    num_added_ = position;
  }

  // Numbers the settled nodes after the last active one; returns the number
  // of ids.
  int64_t finish(int64_t num_nodes, int64_t* ids) {
    for (; next_node_ < num_nodes; ++next_node_) ids[next_node_] = count_++;
    return count_;
  }

  int64_t num_added() const { return num_added_; }

 private:
  at::Tensor storage_;
  TreeSlot* slots_ = nullptr;
  int64_t capacity_ = 0;
  uint64_t mask_ = 0;
  int32_t generation_ = -1;
  int64_t count_ = 0, next_node_ = 0, num_added_ = 0;
};

// In-edge CSR of edge lists sorted by source in which runs of consecutive
// nodes are closed: no edge enters or leaves them (a PyG batch of many small
// graphs). The in-edges of a closed run are then exactly its out-edges, which
// already lie together in the input, so each run is sorted by target on its
// own while it is still in cache: one pass over the edges instead of two.
// Runs are cut where the edges seen so far point below the next source and
// hold at least kClosedRunEdges edges. Returns false (and the caller sorts
// globally) if the input is not sorted by source, holds an index out of
// range, or has a run longer than kMaxClosedRunEdges.
constexpr int64_t kClosedRunEdges = 1 << 13;
constexpr int64_t kMaxClosedRunEdges = 1 << 18;

// Sorts the edges [first_edge, end_edge), whose sources and targets all lie in
// [first_node, end_node), by target into the same positions of the CSR.
void sort_closed_run(int64_t first_node, int64_t end_node, int64_t first_edge, int64_t end_edge,
                     const int64_t* source_data, const int64_t* target_data,
                     const int64_t* edge_label_data, int64_t* ptr, int32_t* sorted_sources,
                     int32_t* sorted_edge_labels, int64_t* cursor) {
  const int64_t num_run_nodes = end_node - first_node;
  // cursor[i]: where the next in-edge of node first_node + i goes.
  std::fill(cursor, cursor + num_run_nodes, 0);
  for (int64_t e = first_edge; e < end_edge; ++e) ++cursor[target_data[e] - first_node];
  int64_t offset = first_edge;
  for (int64_t i = 0; i < num_run_nodes; ++i) {
    const int64_t degree = cursor[i];
    cursor[i] = offset;
    ptr[first_node + i] = offset;
    offset += degree;
  }
  for (int64_t e = first_edge; e < end_edge; ++e) {
    const int64_t position = cursor[target_data[e] - first_node]++;
    sorted_sources[position] = static_cast<int32_t>(source_data[e]);
    if (edge_label_data != nullptr) sorted_edge_labels[position] = static_cast<int32_t>(edge_label_data[e]);
  }
}

// Splits the edges [first_edge, end_edge) of nodes [first_node, end_node)
// into closed runs and sorts each (see above); false if the edges are not
// sorted by source, hold an index out of range, or do not close in time.
bool sort_closed_runs(int64_t num_nodes, int64_t first_node, int64_t end_node, int64_t first_edge,
                      int64_t end_edge, const int64_t* source_data, const int64_t* target_data,
                      const int64_t* edge_label_data, int64_t* ptr, int32_t* sorted_sources,
                      int32_t* sorted_edge_labels) {
  std::vector<int64_t> cursor;
  int64_t run_node = first_node, run_edge = first_edge;
  int64_t previous_source = first_node;
  int64_t max_target = -1, min_target = num_nodes;
  bool bad = false;
  for (int64_t e = first_edge; e < end_edge;) {
    // The first kClosedRunEdges edges of a run: no cut, so no branch per edge.
    const int64_t block_end = std::min(end_edge, std::max(e, run_edge + kClosedRunEdges));
    for (; e < block_end; ++e) {
      const int64_t source = source_data[e], target = target_data[e];
      bad |= source < previous_source;
      previous_source = source;
      max_target = std::max(max_target, target);
      min_target = std::min(min_target, target);
    }
    // Then edge by edge until a source all of whose predecessors' edges
    // point below it.
    for (; e < end_edge; ++e) {
      const int64_t source = source_data[e], target = target_data[e];
      if (max_target < source && source != previous_source) break;
      bad |= source < previous_source;
      previous_source = source;
      max_target = std::max(max_target, target);
      min_target = std::min(min_target, target);
      if (e - run_edge > kMaxClosedRunEdges) return false;
    }
    const int64_t run_end_node = e < end_edge ? source_data[e] : end_node;
    if (bad || previous_source >= run_end_node || min_target < run_node ||
        max_target >= run_end_node || run_end_node > end_node) {
      return false;
    }
    if (static_cast<int64_t>(cursor.size()) < run_end_node - run_node) {
      cursor.resize(run_end_node - run_node);
    }
    sort_closed_run(run_node, run_end_node, run_edge, e, source_data, target_data,
                    edge_label_data, ptr, sorted_sources, sorted_edge_labels, cursor.data());
    run_node = run_end_node;
    run_edge = e;
    max_target = -1;
    min_target = num_nodes;
  }
  if (run_node < end_node) {  // nodes without edges after the last run
    std::fill(ptr + run_node, ptr + end_node, end_edge);
  }
  return true;
}

// The first edge e >= start that likely starts a closed run: a new source s
// such that the edges in a window before e all point below s and those in a
// window from e on all point to s or above (sort_closed_runs checks the rest).
// -1 if there is none within kMaxClosedRunEdges.
int64_t find_likely_cut(int64_t num_edges, int64_t start, const int64_t* source_data,
                        const int64_t* target_data) {
  constexpr int64_t kWindow = 1 << 12;
  int64_t max_target = -1;
  for (int64_t e = std::max<int64_t>(0, start - kWindow); e < start; ++e) {
    max_target = std::max(max_target, target_data[e]);
  }
  for (int64_t e = start; e < num_edges && e - start <= kMaxClosedRunEdges; ++e) {
    const int64_t source = source_data[e];
    if (e > 0 && source != source_data[e - 1] && max_target < source) {
      int64_t min_target = source;
      for (int64_t ahead = e; ahead < std::min(num_edges, e + kWindow); ++ahead) {
        min_target = std::min(min_target, target_data[ahead]);
      }
      if (min_target >= source) return e;
    }
    max_target = std::max(max_target, target_data[e]);
  }
  return -1;
}

bool build_in_edge_csr_closed_runs(int64_t num_nodes, int64_t num_edges,
                                   const int64_t* source_data, const int64_t* target_data,
                                   const int64_t* edge_label_data, int64_t* ptr,
                                   int32_t* sorted_sources, int32_t* sorted_edge_labels) {
  if (num_edges == 0) return false;
  // More parts than threads, so that a thread that gets less time (a busy
  // machine) holds up little.
  const int64_t num_parts = std::max<int64_t>(
      1, std::min<int64_t>(4 * at::get_num_threads(), num_edges / (1 << 16)));
  // Part p takes the edges [part_edges[p], part_edges[p + 1]) and the nodes
  // [part_nodes[p], part_nodes[p + 1]). A part starts at a likely cut: the
  // first new source above every target seen since the even split point
  // (sort_closed_runs checks that it really is one).
  std::vector<int64_t> part_edges(num_parts + 1), part_nodes(num_parts + 1);
  part_edges[0] = 0;
  part_nodes[0] = 0;
  for (int64_t part = 1; part < num_parts; ++part) {
    const int64_t start = std::max(part_edges[part - 1], num_edges * part / num_parts);
    int64_t e = find_likely_cut(num_edges, start, source_data, target_data);
    if (e < 0) return false;
    part_edges[part] = e;
    part_nodes[part] = e < num_edges ? source_data[e] : num_nodes;
    if (part_nodes[part] < part_nodes[part - 1] || part_nodes[part] > num_nodes) return false;
  }
  part_edges[num_parts] = num_edges;
  part_nodes[num_parts] = num_nodes;
  std::atomic<bool> failed{false};
  run_shared_tasks(num_parts, [&](int64_t part) {
    if (!failed.load(std::memory_order_relaxed) &&
        !sort_closed_runs(num_nodes, part_nodes[part], part_nodes[part + 1], part_edges[part],
                          part_edges[part + 1], source_data, target_data, edge_label_data, ptr,
                          sorted_sources, sorted_edge_labels)) {
      failed.store(true);
    }
  });
  if (failed.load()) return false;
  ptr[num_nodes] = num_edges;
  std::fill(sorted_sources + num_edges, sorted_sources + num_edges + kTreeWidthPadding, 0);
  if (edge_label_data != nullptr) {
    std::fill(sorted_edge_labels + num_edges, sorted_edge_labels + num_edges + kTreeWidthPadding, 0);
  }
  return true;
}

// In-edge CSR (grouped by target, edges of a group in input order): a counting
// sort in which each of T parts handles the targets of one range of nodes, so
// that no atomics and no per-part count arrays are needed. Node indices are
// checked in the counting pass; returns false if any is out of range. The
// sorted arrays get kTreeWidthPadding zero entries at their end.
bool build_in_edge_csr(int64_t num_nodes, int64_t num_edges, const int64_t* source_data,
                       const int64_t* target_data, const int64_t* edge_label_data,
                       int64_t* ptr, int32_t* sorted_sources, int32_t* sorted_edge_labels) {
  const int64_t num_parts = std::max<int64_t>(
      1, std::min<int64_t>(at::get_num_threads(), num_edges / (1 << 15)));
  std::fill(ptr, ptr + num_nodes + 1, 0);
  std::atomic<bool> bad_source{false};
  run_shared_tasks(num_parts, [&](int64_t part) {
    const uint64_t low = static_cast<uint64_t>(num_nodes * part / num_parts);
    const uint64_t width = static_cast<uint64_t>(num_nodes * (part + 1) / num_parts) - low;
    bool bad = false;
    for (int64_t e = 0; e < num_edges; ++e) {
      // Negative or too large targets fall in no part: the total shows them.
      const uint64_t target = static_cast<uint64_t>(target_data[e]);
      if (target - low < width) {
        ++ptr[target];
        bad |= static_cast<uint64_t>(source_data[e]) >= static_cast<uint64_t>(num_nodes);
      }
    }
    if (bad) bad_source.store(true);
  });
  // ptr[v] = end of v's group; the scatter below counts it down to the start.
  int64_t total = 0;
  for (int64_t v = 0; v < num_nodes; ++v) {
    total += ptr[v];
    ptr[v] = total;
  }
  ptr[num_nodes] = total;
  if (bad_source.load() || total != num_edges) return false;
  run_shared_tasks(num_parts, [&](int64_t part) {
    const uint64_t low = static_cast<uint64_t>(num_nodes * part / num_parts);
    const uint64_t width = static_cast<uint64_t>(num_nodes * (part + 1) / num_parts) - low;
    // Backwards, so that each group keeps the input order of its edges.
    for (int64_t e = num_edges - 1; e >= 0; --e) {
      const uint64_t target = static_cast<uint64_t>(target_data[e]);
      if (target - low < width) {
        const int64_t position = --ptr[target];
        sorted_sources[position] = static_cast<int32_t>(source_data[e]);
        if (edge_label_data != nullptr) {
          sorted_edge_labels[position] = static_cast<int32_t>(edge_label_data[e]);
        }
      }
    }
  });
  std::fill(sorted_sources + num_edges, sorted_sources + num_edges + kTreeWidthPadding, 0);
  if (edge_label_data != nullptr) {
    std::fill(sorted_edge_labels + num_edges, sorted_edge_labels + num_edges + kTreeWidthPadding, 0);
  }
  return true;
}

// Buffers of the refinement, one entry per node.
struct TreeWork {
  int64_t num_nodes;
  int32_t* list;             // active nodes, in node order
  int64_t num_active;
  uint8_t* state;            // per list position, see kFirstOfId
  uint64_t* keys;            // per list position: signature value
  int32_t* firsts;           // per id: first node
  int32_t* first_positions;  // per id: list position of the first node

  NumberingOutput output(int64_t* ids, std::vector<int32_t>* to_check) const {
    return NumberingOutput{ids, firsts, first_positions, list, keys, state, to_check};
  }
};

// Depth 0: ids of the labels in order of first occurrence; every node active,
// a node with a label of its own marked to settle.
int64_t number_labels(const int64_t* labels, int64_t* ids, TreeWork& work, uint64_t hash_mask,
                      FirstOccurrenceNumbering& numbering) {
  const int64_t num_nodes = work.num_nodes;
  int32_t* const list = work.list;
  uint8_t* const state = work.state;
  for (int64_t v = 0; v < num_nodes; ++v) list[v] = static_cast<int32_t>(v);
  work.num_active = num_nodes;
  int64_t low = labels[0], high = labels[0];
  for (int64_t v = 1; v < num_nodes; ++v) {
    low = std::min(low, labels[v]);
    high = std::max(high, labels[v]);
  }
  // Small label ranges (the usual categorical labels): a direct lookup array.
  const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  if (range < static_cast<uint64_t>(num_nodes) + 4096 && hash_mask == ~uint64_t{0}) {
    std::vector<int32_t> id_of_label(range + 1, -1);
    std::vector<int64_t> sizes;
    int32_t* const firsts = work.firsts;
    int32_t count = 0;
    for (int64_t v = 0; v < num_nodes; ++v) {
      int32_t& id = id_of_label[static_cast<uint64_t>(labels[v]) - static_cast<uint64_t>(low)];
      if (id < 0) {
        firsts[count] = static_cast<int32_t>(v);
        sizes.push_back(0);
        id = count++;
      }
      ++sizes[id];
      ids[v] = id;
    }
    for (int64_t v = 0; v < num_nodes; ++v) state[v] = sizes[ids[v]] > 1 ? kSharesId : kFirstOfId;
    return count;
  }
  uint64_t* const keys = work.keys;
  run_shared_tasks((num_nodes + kGrain - 1) / kGrain, [&](int64_t chunk) {
    const int64_t end = std::min(num_nodes, (chunk + 1) * kGrain);
    for (int64_t v = chunk * kGrain; v < end; ++v) {
      keys[v] = tree_hash_mix(static_cast<uint64_t>(labels[v])) & kTreeHashBits & hash_mask;
    }
  });
  numbering.start(num_nodes);
  numbering.add<true>(list, keys, num_nodes, work.output(ids, nullptr),
                      [&](int64_t u, int64_t v) { return labels[u] == labels[v]; });
  return numbering.finish(num_nodes, ids);
}

// Step 1 for the list positions [begin, end): a first node without company
// settles (leaves the list); every other node stays, compacted to the front
// of the range, with its signature value. Returns how many stayed. (Plain
// arguments rather than lambda captures: the byte loads and stores may alias
// any memory, which would make the compiler reload every captured value at
// each node.)
template <int Width, typename EdgeLabel>
int64_t signature_values(int64_t begin, int64_t end, const int64_t* ptr, const int32_t* sources,
                         const EdgeLabel* edge_labels, const int64_t* previous_ids,
                         int64_t id_bound, int64_t key_bound, int max_exact_degree,
                         uint64_t hash_mask, int32_t* list, const uint8_t* state,
                         uint64_t* keys) {
  int64_t kept = begin;
  for (int64_t position = begin; position < end; ++position) {
    if (state[position] == kFirstOfId) continue;
    const int64_t v = list[position];
    const uint64_t key = tree_signature_hash_element<Width>(v, ptr, sources, edge_labels,
                                                            previous_ids, id_bound, key_bound,
                                                            max_exact_degree);
    list[kept] = static_cast<int32_t>(v);
    keys[kept] = (key & kTreeExactBit) != 0 ? key : key & hash_mask;
    ++kept;
  }
  return kept - begin;
}

// Pieces of the list that step 1 works through (claimed by any thread) and
// step 2 numbers in order (by one thread, as they become ready), so that the
// sequential numbering overlaps the parallel work.
constexpr int64_t kPieceSize = 4096;

// Depths >= 1. ids holds depth 0 (count ids) on entry, every depth on return.
template <int Width, typename EdgeLabel>
void number_trees(int64_t num_hops, const int64_t* ptr, const int32_t* sources,
                  const EdgeLabel* edge_labels, int64_t num_edge_labels, int64_t max_degree,
                  int64_t* ids, int64_t count, TreeWork& work, uint64_t hash_mask,
                  FirstOccurrenceNumbering& numbering) {
  const int64_t num_nodes = work.num_nodes;
  const int64_t scratch_size = std::max<int64_t>(max_degree, kTreeWideWidth);
  int32_t* const list = work.list;
  uint64_t* const keys = work.keys;
  uint8_t* const state = work.state;
  std::vector<int32_t> to_check;
  const bool one_thread = at::get_num_threads() <= 1;

  for (int64_t depth = 1; depth <= num_hops; ++depth) {
    const int64_t* previous_ids = ids + (depth - 1) * num_nodes;
    int64_t* current_ids = ids + depth * num_nodes;
    const int64_t previous_count = count;
    const int64_t id_bound = previous_count;
    const int64_t key_bound = id_bound * num_edge_labels;
    const int max_exact_degree =
        hash_mask == ~uint64_t{0} ? tree_max_exact_degree(id_bound, key_bound, Width) : -1;
    const NumberingOutput output = work.output(current_ids, &to_check);
    to_check.clear();

    // Steps 1 and 2 together. Task 0 numbers the pieces in order, each as soon
    // as it is ready, and computes pieces itself while the next one is not;
    // the other tasks compute pieces until none is left.
    const int64_t num_listed = work.num_active;
    // One thread: one piece (interleaving the steps would only mix their caches).
    const int64_t piece_size = one_thread ? std::max<int64_t>(1, num_listed) : kPieceSize;
    const int64_t num_pieces = std::max<int64_t>(1, (num_listed + piece_size - 1) / piece_size);
    std::vector<std::atomic<int64_t>> kept(num_pieces);  // -1 until the piece is ready
    for (auto& piece : kept) piece.store(-1, std::memory_order_relaxed);
    std::atomic<int64_t> next_piece{0};
    numbering.start(num_listed);
    auto compute_piece = [&](int64_t piece) {
      const int64_t begin = piece * piece_size;
      const int64_t end = std::min(num_listed, begin + piece_size);
      kept[piece].store(signature_values<Width>(begin, end, ptr, sources, edge_labels, previous_ids,
                                                id_bound, key_bound, max_exact_degree, hash_mask,
                                                list, state, keys),
                        std::memory_order_release);
    };
    const std::function<void(int64_t)> compute = compute_piece;
    run_shared_tasks(num_pieces, compute, [&](SharedTasks& tasks) {
      for (int64_t numbered = 0; numbered < num_pieces;) {
        const int64_t num_kept = kept[numbered].load(std::memory_order_acquire);
        if (num_kept >= 0) {
          const int64_t begin = numbered * piece_size;
          numbering.add<false>(list + begin, keys + begin, num_kept, output,
                               [](int64_t, int64_t) { return true; });
          ++numbered;
          continue;
        }
        const int64_t piece = tasks.claim();
        if (piece >= 0) {
          compute_piece(piece);
          tasks.mark_done();
        } else {
          std::this_thread::yield();  // a helper is computing the next piece
        }
      }
    });
    count = numbering.finish(num_nodes, current_ids);
    const int64_t num_active = numbering.num_added();
    work.num_active = num_active;

    // Step 3: check every node that took an earlier node's id through a hash
    // against the first node of that id.
    std::atomic<bool> collision{false};
    const int32_t* const firsts = work.firsts;
    const int64_t num_checks = static_cast<int64_t>(to_check.size());
    constexpr int64_t kChecksPerTask = 256;
    run_shared_tasks((num_checks + kChecksPerTask - 1) / kChecksPerTask, [&](int64_t task) {
      const int64_t begin = task * kChecksPerTask;
      const int64_t end = std::min(num_checks, begin + kChecksPerTask);
      std::vector<int64_t> scratch(2 * scratch_size);
      for (int64_t i = begin; i < end; ++i) {
        // The first nodes lie anywhere: fetch their CSR entries ahead.
        if (i + 16 < end) prefetch(ptr + firsts[current_ids[to_check[i + 16]]]);
        if (i + 8 < end) prefetch(sources + ptr[firsts[current_ids[to_check[i + 8]]]]);
        const int64_t v = to_check[i];
        if (!tree_signatures_match(static_cast<int64_t>(firsts[current_ids[v]]), v, ptr, sources,
                                   edge_labels, previous_ids, id_bound, scratch.data(),
                                   scratch.data() + scratch_size)) {
          collision.store(true, std::memory_order_relaxed);
          return;
        }
      }
    });
    if (collision.load()) {
      std::vector<int64_t> scratch(2 * scratch_size);
      numbering.start(num_active);
      numbering.add<true>(list, keys, num_active, output, [&](int64_t u, int64_t v) {
        return tree_signatures_match(u, v, ptr, sources, edge_labels, previous_ids, id_bound,
                                     scratch.data(), scratch.data() + scratch_size);
      });
      count = numbering.finish(num_nodes, current_ids);
    }

    // A depth that splits no class of the previous one is stable: the
    // partition, and with it the first-occurrence ids, stays the same at every
    // further depth.
    if (count == previous_count) {
      for (int64_t later = depth; later <= num_hops; ++later) {
        std::memcpy(ids + later * num_nodes, previous_ids, num_nodes * sizeof(int64_t));
      }
      return;
    }
  }
}

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

  const bool with_edge_labels = edge_labels_in.has_value();
  const auto edge_labels = with_edge_labels ? edge_labels_in->contiguous() : at::Tensor();
  // Node indices (< 2^31, checked) and edge labels (< 2^31, checked) fit 32 bits.
  auto ptr = at::empty({num_nodes + 1}, options);
  auto sorted_sources = at::empty({num_edges + kTreeWidthPadding}, options.dtype(at::kInt));
  auto sorted_edge_labels =
      at::empty({with_edge_labels ? num_edges + kTreeWidthPadding : 0}, options.dtype(at::kInt));
  int64_t* ptr_data = ptr.data_ptr<int64_t>();
  int32_t* source_data = sorted_sources.data_ptr<int32_t>();
  int32_t* edge_label_data = with_edge_labels ? sorted_edge_labels.data_ptr<int32_t>() : nullptr;
  const int64_t* edge_index_data = edge_index.data_ptr<int64_t>();
  const int64_t* input_edge_label_data = with_edge_labels ? edge_labels.data_ptr<int64_t>() : nullptr;

  auto keys = at::empty({num_nodes}, options);
  auto int_buffers = at::empty({3 * num_nodes}, options.dtype(at::kInt));
  auto state = at::empty({num_nodes}, options.dtype(at::kByte));
  int32_t* int_buffer_data = int_buffers.data_ptr<int32_t>();
  TreeWork work{num_nodes,
                int_buffer_data,
                num_nodes,
                state.data_ptr<uint8_t>(),
                reinterpret_cast<uint64_t*>(keys.data_ptr<int64_t>()),
                int_buffer_data + num_nodes,
                int_buffer_data + 2 * num_nodes};
  const uint64_t hash_mask = debug_hash_mask();
  FirstOccurrenceNumbering numbering(num_nodes);
  int64_t* id_data = ids.data_ptr<int64_t>();

  // The CSR (with the in-degrees and edge labels the kernel adapts to) and
  // depth 0, which needs no edges, side by side.
  bool csr_built = false;
  int64_t count = 0, max_degree = 0, num_narrow = 0, num_edge_labels = 1;
  run_shared_tasks(2, [&](int64_t task) {
    if (task == 1) {
      numbering.clear();
      count = number_labels(node_labels.data_ptr<int64_t>(), id_data, work, hash_mask, numbering);
      return;
    }
    csr_built = build_in_edge_csr_closed_runs(num_nodes, num_edges, edge_index_data,
                                              edge_index_data + num_edges, input_edge_label_data,
                                              ptr_data, source_data, edge_label_data) ||
                build_in_edge_csr(num_nodes, num_edges, edge_index_data, edge_index_data + num_edges,
                                  input_edge_label_data, ptr_data, source_data, edge_label_data);
    if (!csr_built) return;
    for (int64_t v = 0; v < num_nodes; ++v) {
      const int64_t degree = ptr_data[v + 1] - ptr_data[v];
      max_degree = std::max(max_degree, degree);
      num_narrow += degree <= kTreeNarrowWidth;
    }
    for (int64_t e = 0; e < (with_edge_labels ? num_edges : 0); ++e) {
      num_edge_labels = std::max<int64_t>(num_edge_labels, int64_t{edge_label_data[e]} + 1);
    }
  });
  if (!csr_built) check_tree_hash_edge_range(edge_index, num_nodes, true);
  if (num_hops == 0) return ids;
  // Fixed-width reads of 4 children where nearly every node has at most 4.
  const bool narrow = num_narrow * 10 >= num_nodes * 9;
  if (with_edge_labels) {
    auto run = [&](auto width) {
      number_trees<decltype(width)::value>(num_hops, ptr_data, source_data,
                                           static_cast<const int32_t*>(edge_label_data),
                                           num_edge_labels, max_degree, id_data, count, work,
                                           hash_mask, numbering);
    };
    if (narrow) run(std::integral_constant<int, kTreeNarrowWidth>());
    else run(std::integral_constant<int, kTreeWideWidth>());
  } else {
    auto run = [&](auto width) {
      number_trees<decltype(width)::value>(num_hops, ptr_data, source_data,
                                           static_cast<const TreeNoEdgeLabels*>(nullptr), 1, max_degree,
                                           id_data, count, work, hash_mask, numbering);
    };
    if (narrow) run(std::integral_constant<int, kTreeNarrowWidth>());
    else run(std::integral_constant<int, kTreeWideWidth>());
  }
  return ids;
}

TORCH_LIBRARY_IMPL(graphkd, CPU, m) {
  m.impl("tree_hash", &tree_hash_cpu);
}

}  // namespace graphkd
