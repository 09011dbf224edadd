// core/threading.hpp: one thread count for the whole library. Eigen's GEMM and our own OpenMP loops
// (attention over batch x heads) both follow set_num_threads(). Built without OpenMP, everything runs
// on one thread and set_num_threads() only records the request.
#pragma once

#include <Eigen/Core>

#include <string>
#include <thread>

#include "eigenformer/core/error.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace eigenformer {

namespace detail {
inline int& requested_threads() {
  static int n = 0;  // 0: not set, use the default
  return n;
}
}  // namespace detail

// Threads the machine offers (hardware threads; on the target VMs these are the physical cores).
inline int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

// Use n threads in every kernel (n >= 1).
inline void set_num_threads(int n) {
  if (n < 1) throw RangeError("set_num_threads: " + std::to_string(n) + " threads requested; expected at least 1");
  detail::requested_threads() = n;
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
  Eigen::setNbThreads(n);
}

// The thread count kernels use: what set_num_threads() asked for, else the hardware's, 1 without OpenMP.
inline int num_threads() {
#ifdef _OPENMP
  return detail::requested_threads() > 0 ? detail::requested_threads() : omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace eigenformer
