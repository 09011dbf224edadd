// The test executable's main(), and an allocation counter for tests that promise "no allocation in the loop"; with
// glibc, also the bytes that operator new's blocks hold, and their peak, for tests that bound working memory.
// Every operator new is replaced here, and malloc is wrapped at link time (-Wl,--wrap=malloc, see
// CMakeLists.txt) because Eigen allocates with malloc. support/allocations.hpp reads the count.
// The same under -DEIGENFORMER_SANITIZE=ON: AddressSanitizer intercepts the malloc these call, so it still checks
// every block; what it loses is its check that new pairs with delete (GCC's -Wmismatched-new-delete remains). Its
// own allocation hooks would count more than our code's allocations: libgomp allocates a team per parallel region.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "support/allocations.hpp"

// These operator new/delete replacements pair malloc with free by design; GCC cannot see that they are the
// allocation functions themselves.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {
std::atomic<long long> allocations{0};
// Bytes held by blocks from operator new (the standard containers), and the most held since reset_peak_new_bytes();
// glibc's malloc_usable_size gives a block's size back at delete.
std::atomic<long long> held_bytes{0}, held_peak{0};

void add_new_bytes([[maybe_unused]] void* p, [[maybe_unused]] int sign) {
#ifdef __GLIBC__
  const long long delta = sign * static_cast<long long>(malloc_usable_size(p));
  const long long now = held_bytes.fetch_add(delta, std::memory_order_relaxed) + delta;
  long long peak = held_peak.load(std::memory_order_relaxed);
  while (now > peak && !held_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
#endif
}

void* counted(std::size_t n, std::size_t align) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  void* p = nullptr;
  if (align <= alignof(std::max_align_t)) p = std::malloc(n ? n : 1);
  else if (posix_memalign(&p, align, n ? n : 1) != 0) p = nullptr;
  if (!p) throw std::bad_alloc();
  add_new_bytes(p, 1);
  return p;
}

void release(void* p) {
  if (p) add_new_bytes(p, -1);
  std::free(p);
}
}  // namespace

long long eigenformer::testing::allocation_count() { return allocations.load(std::memory_order_relaxed); }
long long eigenformer::testing::new_bytes_in_use() {
#ifdef __GLIBC__
  return held_bytes.load(std::memory_order_relaxed);
#else
  return -1;
#endif
}
long long eigenformer::testing::peak_new_bytes() { return new_bytes_in_use() < 0 ? -1 : held_peak.load(std::memory_order_relaxed); }
void eigenformer::testing::reset_peak_new_bytes() { held_peak.store(held_bytes.load(std::memory_order_relaxed), std::memory_order_relaxed); }

#ifdef EIGENFORMER_COUNT_MALLOC
extern "C" void* __real_malloc(std::size_t);
extern "C" void* __wrap_malloc(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return __real_malloc(n);
}
#endif

void* operator new(std::size_t n) { return counted(n, 0); }
void* operator new[](std::size_t n) { return counted(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return counted(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted(n, static_cast<std::size_t>(a)); }
// The nothrow forms too (std::stable_sort's buffer uses one): left to the runtime, AddressSanitizer's would allocate
// them itself and report our operator delete's free() as a mismatch.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted(n, 0);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try {
    return counted(n, static_cast<std::size_t>(a));
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t& t) noexcept { return operator new(n, a, t); }
void operator delete(void* p) noexcept { release(p); }
void operator delete[](void* p) noexcept { release(p); }
void operator delete(void* p, std::size_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t) noexcept { release(p); }
void operator delete(void* p, std::align_val_t) noexcept { release(p); }
void operator delete[](void* p, std::align_val_t) noexcept { release(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { release(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { release(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { release(p); }
