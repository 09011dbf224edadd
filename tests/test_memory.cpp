// core/memory.hpp: the alignment of small and large blocks, the advice for transparent huge pages on the large ones
// (read back from /proc/self/smaps where Linux has it), and the std::vector allocator; Tensor and the narrow weights
// get their storage from it.
#include "eigenformer/core/memory.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "eigenformer/core/tensor.hpp"

using namespace eigenformer;

namespace {

bool memory_test_aligned(const void* p, std::size_t alignment) {
  return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

// The VmFlags of the mapping of /proc/self/smaps that holds p; empty where there is no such file or mapping.
std::string memory_test_vm_flags(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    unsigned long long begin = 0, end = 0;
    char dash = 0;
    std::istringstream head(line);
    if (line.find(':') > line.find(' ') && (head >> std::hex >> begin >> dash >> end) && dash == '-') {
      inside = begin <= address && address < end;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return {};
}

// Whether this kernel has transparent huge pages at all (the advice is refused without them).
bool memory_test_kernel_has_thp() { return std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled").good(); }

}  // namespace

TEST_CASE("allocate_storage: cache lines below 2 MiB, huge pages from there on") {
  CHECK(detail::storage_alignment(1) == 64);
  CHECK(detail::storage_alignment(detail::kHugePageBytes - 1) == 64);
  CHECK(detail::storage_alignment(detail::kHugePageBytes) == detail::kHugePageBytes);
  for (std::size_t bytes : {std::size_t(64), std::size_t(100000), detail::kHugePageBytes - 64, detail::kHugePageBytes,
                            3 * detail::kHugePageBytes + 4096}) {
    CAPTURE(bytes);
    void* p = detail::allocate_storage(bytes);
    REQUIRE(p != nullptr);
    CHECK(memory_test_aligned(p, detail::storage_alignment(bytes)));
    std::memset(p, 0x5a, bytes);  // every byte is usable
    CHECK(static_cast<unsigned char*>(p)[bytes - 1] == 0x5a);
    detail::free_storage(p, bytes);
  }
  detail::free_storage(nullptr, 1 << 20);  // as delete: nothing to free
}

TEST_CASE("allocate_storage: a block of 2 MiB or more is advised for huge pages") {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (!memory_test_kernel_has_thp()) {
    MESSAGE("this kernel has no transparent huge pages: the advice is not checked");
    return;
  }
  const std::size_t large = 4 * detail::kHugePageBytes;
  void* p = detail::allocate_storage(large);
  const std::string flags = memory_test_vm_flags(p);
  CAPTURE(flags);
  REQUIRE(!flags.empty());
  CHECK(flags.find(" hg") != std::string::npos);  // "hg": MADV_HUGEPAGE was given for this mapping
  detail::free_storage(p, large);
#else
  MESSAGE("no MADV_HUGEPAGE on this platform: alignment only");
#endif
}

TEST_CASE("StorageAllocator: a std::vector on it, large or small") {
  std::vector<std::uint16_t, detail::StorageAllocator<std::uint16_t>> small(10, 7);
  CHECK(memory_test_aligned(small.data(), 64));
  std::vector<std::uint16_t, detail::StorageAllocator<std::uint16_t>> large(detail::kHugePageBytes, 3);  // 4 MiB
  CHECK(memory_test_aligned(large.data(), detail::kHugePageBytes));
  CHECK(large.back() == 3);
  large.resize(10);
  large.shrink_to_fit();
  CHECK(large.size() == 10);
  CHECK(large[9] == 3);
  CHECK(detail::StorageAllocator<float>() == detail::StorageAllocator<std::int8_t>());
}

TEST_CASE("Tensor: storage from allocate_storage, huge-page aligned from 2 MiB on") {
  Tensor<float> small({16, 16});
  CHECK(memory_test_aligned(small.data(), 64));
  Tensor<float> large({1024, 1024});  // 4 MiB
  CHECK(memory_test_aligned(large.data(), detail::kHugePageBytes));
  CHECK(large[large.size() - 1] == 0.0f);  // zero-filled as ever
  large.resize({16, 16});                  // smaller: the same storage, freed later with the size it was made with
  CHECK(memory_test_aligned(large.data(), detail::kHugePageBytes));
  Tensor<float> moved = std::move(large);
  CHECK(memory_test_aligned(moved.data(), detail::kHugePageBytes));
}
