// tests/support/allocations.hpp: how many heap allocations the test process has made so far (operator new of
// every kind, and malloc where the linker wraps it: GNU toolchains). Compare two readings around a loop.
// And the peak of what operator new's blocks hold, for a bound on working memory.
#pragma once

namespace eigenformer::testing {
long long allocation_count();
// Bytes held by blocks from operator new (what the standard containers allocate; not Eigen's malloc), their most
// since the last reset_peak_new_bytes(), as the allocator sized them; -1 without glibc (malloc_usable_size).
long long new_bytes_in_use();
long long peak_new_bytes();
void reset_peak_new_bytes();
}  // namespace eigenformer::testing
