// core/memory.hpp: where the library's arrays live (Tensor's storage, nn/layer_weight.hpp's narrow weights).
//   allocate_storage(bytes)      64-byte aligned; from kHugePageBytes on, aligned to 2 MiB and offered to Linux's
//                                transparent huge pages (madvise MADV_HUGEPAGE) before anything touches it
//   free_storage(p, bytes)       its counterpart, given the same byte count
//   StorageAllocator<T>          the same for a std::vector
// Why huge pages: decoding streams every weight once per token (ops/linear_stream.hpp), a GEMM reads its weight's rows
// where they lie (ops/gemm.hpp), and with 4 KiB pages each of those streams misses the TLB every 4 KiB. Where
// /sys/kernel/mm/transparent_hugepage/enabled is "madvise" (as on the machine below), Linux gives huge pages only to
// memory that asks for them. Measured on a 2-core Zen 3 with two copies of GPT-2 small in one process, with and
// without the advice, alternated (docs/performance.md, issue 14, "Session 19"): float32 decoding 1.04-1.08 times
// faster, bfloat16 decoding 1.01-1.03, a 128-token prompt and a training step within noise (1.00-1.01). Elsewhere
// (no MADV_HUGEPAGE), the same alignment and no advice.
#pragma once

#include <cstddef>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace eigenformer {
namespace detail {

inline constexpr std::size_t kCacheLineBytes = 64;
// An allocation this large or larger starts on a huge page boundary and asks for huge pages.
inline constexpr std::size_t kHugePageBytes = std::size_t(2) << 20;

inline std::size_t storage_alignment(std::size_t bytes) {
  return bytes >= kHugePageBytes ? kHugePageBytes : kCacheLineBytes;
}

inline void* allocate_storage(std::size_t bytes) {
  const std::size_t alignment = storage_alignment(bytes);
  void* p = ::operator new(bytes, std::align_val_t(alignment));
#if defined(MADV_HUGEPAGE)
  // Advice only: where the kernel has no huge pages to give, the memory is the same, in 4 KiB pages.
  if (alignment == kHugePageBytes) ::madvise(p, bytes, MADV_HUGEPAGE);
#endif
  return p;
}

inline void free_storage(void* p, std::size_t bytes) {
  if (p) ::operator delete(p, std::align_val_t(storage_alignment(bytes)));
}

template <typename T>
struct StorageAllocator {
  using value_type = T;
  StorageAllocator() = default;
  template <typename U>
  StorageAllocator(const StorageAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(allocate_storage(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) { free_storage(p, n * sizeof(T)); }
  template <typename U>
  bool operator==(const StorageAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const StorageAllocator<U>&) const { return false; }
};

}  // namespace detail
}  // namespace eigenformer
