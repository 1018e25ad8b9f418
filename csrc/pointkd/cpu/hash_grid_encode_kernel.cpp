// CPU kernels of pointkd::hash_grid_encode: at::parallel_for over the shared
// per-(point, level) logic.
//
// Forward: levels one after the other, threads splitting the points within a
// level, so that all threads read the same level's table (a few MB at most)
// while it is hot in cache rather than all tables at once. Each (point,
// level) writes its own F outputs: any split is race-free. The outputs go to
// a level-major [L, N, F] buffer, transposed to [N, L * F] in one pass at the
// end (and grad_output to level-major at the start of the backward).
//
// Backward, grad_embeddings: points scatter into rows that other points
// share, but each level owns a disjoint slice of the table. Threads therefore
// split the levels, and each thread runs all points of its levels in index
// order: no two threads write the same row, no atomics or per-thread copies
// are needed, and every row receives its sums in the same order whatever the
// number of threads, so the result is bitwise reproducible. The parallelism
// is at most the number of levels (16 in Instant-NGP's configuration).
// grad_points: levels one after the other as in the forward, threads
// splitting the points, so each point sums its levels in level order.
#include <atomic>
#include <cmath>
#include <type_traits>

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../hash_grid_encode.h"
#include "../hash_grid_encode_common.h"

namespace pointkd {
namespace {

// Points per task in the per-level loops, and (point, level) pairs per task
// in the level-split backward: a fraction of a millisecond each, so that small
// calls (a training step on a few thousand points) run inline instead of
// waking threads, which on a loaded machine cost more than the work.
constexpr int64_t kPointGrain = 8192;
constexpr int64_t kLevelTaskWork = 32768;

template <typename scalar_t>
struct PlainAdd {
  void operator()(scalar_t* address, scalar_t value) const { *address += value; }
};

// Calls body(features) with the common feature counts as compile-time
// constants, so that the loops over F unroll; other counts run as a plain
// int64_t.
template <typename Body>
void dispatch_features(int64_t features, const Body& body) {
  switch (features) {
    case 1: return body(std::integral_constant<int64_t, 1>{});
    case 2: return body(std::integral_constant<int64_t, 2>{});
    case 4: return body(std::integral_constant<int64_t, 4>{});
    case 8: return body(std::integral_constant<int64_t, 8>{});
    default: return body(features);
  }
}

// [N, L, F] <-> [L, N, F]: the kernels work level by level on level-major
// buffers, whose rows for one level are contiguous. Writing (or reading) the
// [N, L * F] output in place, one level at a time, moved every cache line of
// it through memory L times and cost about as much as the encoding itself;
// one transposition is a single pass.
template <typename scalar_t, typename Features>
void point_major_to_level_major(const scalar_t* point_major, int64_t num_levels,
                                int64_t num_points, Features features,
                                scalar_t* level_major) {
  at::parallel_for(0, num_points, kPointGrain, [&](int64_t begin, int64_t end) {
    for (int64_t l = 0; l < num_levels; ++l) {
      for (int64_t i = begin; i < end; ++i) {
        for (int64_t f = 0; f < features; ++f) {
          level_major[(l * num_points + i) * features + f] =
              point_major[(i * num_levels + l) * features + f];
        }
      }
    }
  });
}

template <typename scalar_t, typename Features>
void level_major_to_point_major(const scalar_t* level_major, int64_t num_levels,
                                int64_t num_points, Features features,
                                scalar_t* point_major) {
  at::parallel_for(0, num_points, kPointGrain, [&](int64_t begin, int64_t end) {
    for (int64_t l = 0; l < num_levels; ++l) {
      for (int64_t i = begin; i < end; ++i) {
        for (int64_t f = 0; f < features; ++f) {
          point_major[(i * num_levels + l) * features + f] =
              level_major[(l * num_points + i) * features + f];
        }
      }
    }
  });
}

// Writes the level-major [L, N, F] encoding. Returns whether all points were
// finite (checked during the first level; a non-finite point reads clamped
// rows, never out of bounds).
template <typename scalar_t, typename Features>
bool forward_kernel(const scalar_t* points, const scalar_t* embeddings,
                    const HashGridLevels& levels, int64_t num_points,
                    Features features, scalar_t* output_level_major) {
  std::atomic<bool> all_finite{true};
  for (int64_t l = 0; l < levels.num_levels; ++l) {
    const HashGridLevel level = levels.level[l];
    scalar_t* output = output_level_major + l * num_points * features;
    at::parallel_for(0, num_points, kPointGrain, [&](int64_t begin, int64_t end) {
      if (l == 0) {
        bool finite = true;
        for (int64_t i = 3 * begin; i < 3 * end; ++i) {
          finite = finite && std::isfinite(points[i]);
        }
        if (!finite) all_finite.store(false, std::memory_order_relaxed);
      }
      for (int64_t i = begin; i < end; ++i) {
        hash_grid_encode_point_level(level, points + 3 * i, embeddings,
                                     static_cast<int64_t>(features),
                                     output + i * features);
      }
    });
  }
  return all_finite.load();
}

// grad_embeddings from the level-major [L, N, F] grad_output: threads split
// the levels (see the top of this file).
template <typename scalar_t, typename Features>
void backward_embeddings_kernel(const scalar_t* points,
                                const scalar_t* grad_level_major,
                                const HashGridLevels& levels,
                                int64_t num_points, Features features,
                                scalar_t* grad_embeddings) {
  const int64_t level_grain = (kLevelTaskWork + num_points - 1) / num_points;
  at::parallel_for(0, levels.num_levels, level_grain, [&](int64_t begin, int64_t end) {
    for (int64_t l = begin; l < end; ++l) {
      const HashGridLevel level = levels.level[l];
      const scalar_t* grad = grad_level_major + l * num_points * features;
      for (int64_t i = 0; i < num_points; ++i) {
        hash_grid_backward_point_level(
            level, points + 3 * i, static_cast<const scalar_t*>(nullptr),
            grad + i * features, static_cast<int64_t>(features),
            grad_embeddings, static_cast<scalar_t*>(nullptr),
            PlainAdd<scalar_t>{});
      }
    }
  });
}

// grad_points (zero on entry) from the level-major grad_output: levels one
// after the other, as in the forward, threads splitting the points; each
// point's levels are summed in level order.
template <typename scalar_t, typename Features>
void backward_points_kernel(const scalar_t* points, const scalar_t* embeddings,
                            const scalar_t* grad_level_major,
                            const HashGridLevels& levels, int64_t num_points,
                            Features features, scalar_t* grad_points) {
  for (int64_t l = 0; l < levels.num_levels; ++l) {
    const HashGridLevel level = levels.level[l];
    const scalar_t* grad = grad_level_major + l * num_points * features;
    at::parallel_for(0, num_points, kPointGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        hash_grid_backward_point_level(
            level, points + 3 * i, embeddings, grad + i * features,
            static_cast<int64_t>(features), static_cast<scalar_t*>(nullptr),
            grad_points + 3 * i, PlainAdd<scalar_t>{});
      }
    });
  }
}

}  // namespace

at::Tensor hash_grid_encode_cpu(const at::Tensor& points_in,
                                const at::Tensor& embeddings_in,
                                c10::IntArrayRef resolutions,
                                int64_t log2_table_size) {
  const auto levels = make_hash_grid_levels(resolutions, log2_table_size);
  check_hash_grid_encode_inputs(points_in, embeddings_in, levels, log2_table_size);
  TORCH_CHECK(points_in.device().is_cpu(), "points must be a CPU tensor, got ",
              points_in.device());
  const auto points = points_in.contiguous();
  const auto embeddings = embeddings_in.contiguous();
  const int64_t num_points = points.size(0);
  const int64_t features = embeddings.size(1);
  auto output = at::empty({num_points, levels.num_levels * features},
                          embeddings.options());
  bool all_finite = true;
  if (num_points > 0) {
    auto output_level_major = at::empty_like(output);
    AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "hash_grid_encode_cpu", [&] {
      dispatch_features(features, [&](auto feature_count) {
        all_finite = forward_kernel<scalar_t>(
            points.data_ptr<scalar_t>(), embeddings.data_ptr<scalar_t>(),
            levels, num_points, feature_count,
            output_level_major.data_ptr<scalar_t>());
        level_major_to_point_major<scalar_t>(
            output_level_major.data_ptr<scalar_t>(), levels.num_levels,
            num_points, feature_count, output.data_ptr<scalar_t>());
      });
    });
  }
  // Checked in the kernel's first level rather than by a pass of its own;
  // this call only builds the message.
  if (!all_finite) check_hash_grid_encode_points_finite(points);
  return output;
}

std::tuple<at::Tensor, at::Tensor> hash_grid_encode_backward_cpu(
    const at::Tensor& grad_output_in, const at::Tensor& points_in,
    const at::Tensor& embeddings_in, c10::IntArrayRef resolutions,
    int64_t log2_table_size, std::array<bool, 2> output_mask) {
  const auto levels = make_hash_grid_levels(resolutions, log2_table_size);
  check_hash_grid_encode_inputs(points_in, embeddings_in, levels, log2_table_size);
  check_hash_grid_encode_grad_output(grad_output_in, points_in, embeddings_in,
                                     levels);
  TORCH_CHECK(points_in.device().is_cpu(), "points must be a CPU tensor, got ",
              points_in.device());
  const bool need_embeddings = output_mask[0];
  const bool need_points = output_mask[1];
  const auto options = embeddings_in.options();
  const auto points = points_in.contiguous();
  const auto grad_output = grad_output_in.contiguous();
  const int64_t num_points = points.size(0);
  const int64_t features = embeddings_in.size(1);
  auto grad_embeddings = need_embeddings ? at::zeros_like(
                                               embeddings_in, at::MemoryFormat::Contiguous)
                                         : at::empty({0}, options);
  auto grad_points = need_points ? at::zeros({num_points, 3}, options)
                                 : at::empty({0}, options);
  if (num_points > 0 && (need_embeddings || need_points)) {
    // The embeddings are only read for the points' gradient.
    const auto embeddings = need_points ? embeddings_in.contiguous() : at::Tensor();
    auto grad_level_major = at::empty_like(grad_output);
    AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "hash_grid_encode_backward_cpu", [&] {
      dispatch_features(features, [&](auto feature_count) {
        point_major_to_level_major<scalar_t>(
            grad_output.data_ptr<scalar_t>(), levels.num_levels, num_points,
            feature_count, grad_level_major.data_ptr<scalar_t>());
        if (need_embeddings) {
          backward_embeddings_kernel<scalar_t>(
              points.data_ptr<scalar_t>(), grad_level_major.data_ptr<scalar_t>(),
              levels, num_points, feature_count,
              grad_embeddings.data_ptr<scalar_t>());
        }
        if (need_points) {
          backward_points_kernel<scalar_t>(
              points.data_ptr<scalar_t>(), embeddings.data_ptr<scalar_t>(),
              grad_level_major.data_ptr<scalar_t>(), levels, num_points,
              feature_count, grad_points.data_ptr<scalar_t>());
        }
      });
    });
  }
  return {grad_embeddings, grad_points};
}

TORCH_LIBRARY_IMPL(pointkd, CPU, m) {
  m.impl("hash_grid_encode", &hash_grid_encode_cpu);
  m.impl("hash_grid_encode_backward", &hash_grid_encode_backward_cpu);
}

}  // namespace pointkd
