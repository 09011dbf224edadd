// tests/support/allocations.hpp: how many heap allocations the test process has made so far (operator new of
// every kind, and malloc where the linker wraps it: GNU toolchains). Compare two readings around a loop.
#pragma once

namespace eigenformer::testing {
long long allocation_count();
}  // namespace eigenformer::testing
