// core/threading.hpp: one thread count for the whole library. Eigen's GEMM and our own OpenMP loops
// (attention, the streaming linear kernel) both follow set_num_threads(). Built without OpenMP, everything runs
// on one thread and set_num_threads() only records the request.
// The default is the number of physical cores this process may run on: a second hardware thread on the same
// core shares its SIMD units and caches, and these kernels keep both busy, so it adds waiting, not speed. An
// OMP_NUM_THREADS set in the environment wins over that default.
// Built with EIGENFORMER_USE_BLAS (Eigen hands its large products to OpenBLAS), OpenBLAS's OpenMP build reads the same
// OpenMP thread count, and inside our parallel loops it runs single-threaded, so the count still holds everywhere.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

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

// A scratch buffer of at least n elements, one per calling thread and per Tag (each user names its own, so two
// buffers in use at once never share storage); it grows to the largest size asked for and then stays, so a kernel
// called again allocates nothing.
template <typename Tag, typename T>
T* thread_buffer(std::size_t n) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}
}  // namespace detail

// Threads the machine offers (hardware threads; on the target VMs these are the physical cores).
inline int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

// Physical cores among the CPUs this process may run on: Linux's thread_siblings_list groups the hardware threads
// of a core; elsewhere, or if /sys cannot be read, the hardware thread count.
inline int physical_cores() {
#if defined(__linux__)
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
    std::set<std::string> cores;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &allowed)) continue;
      std::ifstream siblings("/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/thread_siblings_list");
      std::string list;
      if (!(siblings >> list)) return hardware_threads();
      cores.insert(list);
    }
    if (!cores.empty()) return static_cast<int>(cores.size());
  }
#endif
  return hardware_threads();
}

// The count used until set_num_threads() is called: OMP_NUM_THREADS if set (and valid), else physical_cores().
inline int default_num_threads() {
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n >= 1) return n;
  }
  return physical_cores();
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

// The thread count kernels use: what set_num_threads() asked for, else default_num_threads() (applied to Eigen
// too on the first call); 1 without OpenMP. Every kernel calls this before it runs, Eigen's products included.
inline int num_threads() {
#ifdef _OPENMP
  if (detail::requested_threads() == 0) set_num_threads(default_num_threads());
  return detail::requested_threads();
#else
  return 1;
#endif
}

namespace detail {
// f(begin, end) for each chunk of [0, n): contiguous ranges of `chunk` elements (the last one shorter), shared among
// num_threads() threads in order (a static schedule; one thread when there is a single chunk). For element-wise work
// over long arrays (the optimiser's update, the gradients' norm): each chunk's arithmetic is the same whatever the
// thread count, so results that are combined per chunk, in chunk order, do not depend on it.
template <typename F>
void parallel_chunks(Eigen::Index n, Eigen::Index chunk, F&& f) {
  const Eigen::Index chunks = n > 0 ? (n + chunk - 1) / chunk : 0;
  [[maybe_unused]] const int threads = num_threads();  // unused without OpenMP
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (chunks > 1 && threads > 1) num_threads(threads)
#endif
  for (Eigen::Index c = 0; c < chunks; ++c) f(c * chunk, std::min(n, (c + 1) * chunk));
}
}  // namespace detail

}  // namespace eigenformer
