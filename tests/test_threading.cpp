// set_num_threads: one thread count for Eigen and our OpenMP loops.
#include "eigenformer/core/threading.hpp"

#include <doctest/doctest.h>

using namespace eigenformer;

TEST_CASE("set_num_threads: sets Eigen's and the library's count; rejects 0") {
  const int before = num_threads();
  set_num_threads(1);
  CHECK(num_threads() == 1);
  CHECK(Eigen::nbThreads() == 1);
  set_num_threads(2);
#ifdef _OPENMP
  CHECK(num_threads() == 2);
  CHECK(Eigen::nbThreads() == 2);
#else
  CHECK(num_threads() == 1);
#endif
  CHECK_THROWS_WITH_AS(set_num_threads(0), "set_num_threads: 0 threads requested; expected at least 1", RangeError);
  set_num_threads(before);
  CHECK(hardware_threads() >= 1);
}

TEST_CASE("default thread count: the physical cores this process may use, unless OMP_NUM_THREADS says otherwise") {
  CHECK(physical_cores() >= 1);
  CHECK(physical_cores() <= hardware_threads());
  CHECK(default_num_threads() >= 1);
}
