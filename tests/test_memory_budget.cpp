// io/memory_budget.hpp: sizes computed from config numbers without overflowing, budgets as people write them, and the
// one-line refusal naming what a model needs and what it may take.
#include "eigenformer/io/memory_budget.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <new>
#include <string>

#include "support/address_limit.hpp"
#include "support/temp_file.hpp"

using namespace eigenformer;

TEST_CASE("format_bytes: binary units with one decimal, and the exact count") {
  CHECK(format_bytes(0) == "0 bytes");
  CHECK(format_bytes(1) == "1 byte");
  CHECK(format_bytes(1023) == "1023 bytes");
  CHECK(format_bytes(1024) == "1.0 KiB (1024 bytes)");
  CHECK(format_bytes(1536ull << 20) == "1.5 GiB (1610612736 bytes)");
  CHECK(format_bytes(~std::uint64_t(0)) == "16.0 EiB (18446744073709551615 bytes)");
}

TEST_CASE("parse_byte_size: a number and a binary unit; none or 0 for no limit") {
  CHECK(parse_byte_size("none", "--memory-budget") == 0);
  CHECK(parse_byte_size("0", "--memory-budget") == 0);
  CHECK(parse_byte_size("1000000", "--memory-budget") == 1000000);
  CHECK(parse_byte_size("512M", "--memory-budget") == 512ull << 20);
  CHECK(parse_byte_size("512m", "--memory-budget") == 512ull << 20);
  CHECK(parse_byte_size("2G", "--memory-budget") == 2ull << 30);
  CHECK(parse_byte_size("2GB", "--memory-budget") == 2ull << 30);
  CHECK(parse_byte_size("1.5GiB", "--memory-budget") == 1536ull << 20);
  CHECK(parse_byte_size("4k", "--memory-budget") == 4096);
  CHECK(parse_byte_size("1T", "--memory-budget") == 1ull << 40);
  CHECK(parse_byte_size("100B", "--memory-budget") == 100);
  CHECK(parse_byte_size("4194304T", "--memory-budget") == 1ull << 62);
  CHECK_THROWS_WITH_AS(parse_byte_size("", "--memory-budget"), "--memory-budget: '' is not a size; expected bytes such as 512M or 2G, or none",
                       RangeError);
  CHECK_THROWS_WITH_AS(parse_byte_size("12Q", "--memory-budget"),
                       "--memory-budget: '12Q' has an unknown unit; expected bytes such as 512M or 2G, or none", RangeError);
  CHECK_THROWS_WITH_AS(parse_byte_size("-1G", "b"), "b: '-1G' is not a size; expected bytes such as 512M or 2G, or none", RangeError);
  CHECK_THROWS_WITH_AS(parse_byte_size("5iB", "b"), "b: '5iB' has an unknown unit; expected bytes such as 512M or 2G, or none", RangeError);
  CHECK_THROWS_WITH_AS(parse_byte_size("2 G", "b"), "b: '2 G' has an unknown unit; expected bytes such as 512M or 2G, or none", RangeError);
  CHECK_THROWS_WITH_AS(parse_byte_size("4194305T", "b"), "b: '4194305T' is too large; expected bytes such as 512M or 2G, or none", RangeError);
  CHECK_THROWS_WITH_AS(parse_byte_size("99999999999999999999", "b"),
                       "b: '99999999999999999999' is too large; expected bytes such as 512M or 2G, or none", RangeError);
}

TEST_CASE("detail::sum_of_products: exact sums, and a RangeError rather than a wrap-around past 2^62") {
  CHECK(detail::sum_of_products({{2, 3}, {4}, {}}, "n") == 11);  // an empty product is 1
  CHECK(detail::sum_of_products({{Index(1) << 31, Index(1) << 31}}, "n") == std::uint64_t(1) << 62);
  CHECK_THROWS_WITH_AS(detail::sum_of_products({{Index(1) << 31, Index(1) << 31}, {Index(1) << 31, Index(1) << 31}}, "x: the size"),
                       "x: the size is about 9.22e+18, more than 2^62", RangeError);
  CHECK_THROWS_WITH_AS(detail::sum_of_products({{Index(1) << 40, Index(1) << 40, Index(1) << 40}}, "x: the size"),
                       "x: the size is about 1.33e+36, more than 2^62", RangeError);
  CHECK_THROWS_WITH_AS(detail::sum_of_products({{3, -2}}, "x"), "x: a factor is -2; expected >= 0", RangeError);
}

TEST_CASE("check_memory_budget: silent within the budget or without one, else both figures") {
  MemoryEstimate need;
  need.weight_bytes = 500ull << 20;
  need.cache_bytes = 36ull << 20;
  need.batch = 2;
  need.context = 1024;
  ModelLoadOptions options;
  CHECK_NOTHROW(check_memory_budget(need, options, "dir", "GPT-2 as float"));  // no budget
  options.memory_budget = 536ull << 20;
  CHECK_NOTHROW(check_memory_budget(need, options, "dir", "GPT-2 as float"));  // exactly the budget
  options.memory_budget = 512ull << 20;
  CHECK_THROWS_WITH_AS(check_memory_budget(need, options, "dir", "GPT-2 as float"),
                       "dir: loading GPT-2 as float needs 536.0 MiB (562036736 bytes): 500.0 MiB (524288000 bytes) of weights and 36.0 MiB "
                       "(37748736 bytes) of KV cache (batch 2 x 1024 positions); more than the memory budget of 512.0 MiB (536870912 bytes)",
                       RangeError);
}

TEST_CASE("detail::check_file_can_hold: a config needing more values than the file has bytes is refused") {
  SafeTensorsWriter w;
  w.add("x", Tensor<float>(Shape{4}));  // 16 bytes of data
  eigenformer::testing::TempFile f;
  w.write(f.path());
  const SafeTensors file(f.path());
  CHECK_NOTHROW(detail::check_file_can_hold(file, 16, "c.json", "n 16"));  // one byte each could still fit
  CHECK_THROWS_WITH_AS(detail::check_file_can_hold(file, 17, "c.json", "n 17"),
                       ("c.json: n 17 make 17 values, more than the 16 bytes of data in " + f.path() +
                        " could hold; the config does not describe this checkpoint")
                           .c_str(),
                       FormatError);
}

TEST_CASE("parse_byte_size: the text quoted in its message is escaped and cut (issue 13)") {
  CHECK_THROWS_WITH_AS(parse_byte_size("\x1b[31m5G", "--memory-budget"),
                       "--memory-budget: '\\u001b[31m5G' is not a size; expected bytes such as 512M or 2G, or none", RangeError);
}

TEST_CASE("parse_byte_size: a fraction is exact, not rounded up through a double (issue 13)") {
  // 0.99999999999999999999 is 1 in a double: "0.99999999999999999999K" passed as a whole KiB.
  CHECK(parse_byte_size("0.99999999999999999999K", "b") == 1023);
  CHECK(parse_byte_size("1.99999999999999999999K", "b") == 2047);
  CHECK(parse_byte_size("0.5K", "b") == 512);
  CHECK(parse_byte_size("0.0009765625K", "b") == 1);  // 2^-10 KiB, exactly one byte
  CHECK(parse_byte_size("0.0009765624K", "b") == 0);
  CHECK(parse_byte_size("1.5", "b") == 1);  // bytes have no fraction
  CHECK(parse_byte_size("1." + std::string(10000, '9') + "T", "b") == (2ull << 40) - 1);
}

TEST_CASE("out_of_memory_error and with_memory_estimate: a std::bad_alloc becomes the model's figures (issue 13)") {
  MemoryEstimate need;
  need.weight_bytes = 500ull << 20;
  need.cache_bytes = 36ull << 20;
  need.batch = 2;
  need.context = 1024;
  const std::string message = "dir\\u001b: out of memory loading GPT-2 as float, which needs 536.0 MiB (562036736 bytes): 500.0 MiB "
                              "(524288000 bytes) of weights and 36.0 MiB (37748736 bytes) of KV cache (batch 2 x 1024 positions)";
  CHECK(std::string(out_of_memory_error(need, "dir\x1b", "loading GPT-2 as float").what()) == message);
  CHECK_THROWS_WITH_AS(with_memory_estimate(need, "dir\x1b", "loading GPT-2 as float", []() -> int { throw std::bad_alloc(); }), message.c_str(),
                       OutOfMemoryError);
  CHECK(with_memory_estimate(need, "dir", "loading", [] { return 7; }) == 7);  // passes the result through
  CHECK_THROWS_AS(with_memory_estimate(need, "dir", "loading", []() -> int { throw RangeError("other"); }), RangeError);  // only bad_alloc
}

TEST_CASE("training_state_memory: weights, gradients and AdamW's two moments, no KV cache") {
  MemoryEstimate inference;  // as estimate_gpt2_memory gives it for a batch of 2 x 16 positions
  inference.weight_bytes = 3'000'000, inference.cache_bytes = 40'000, inference.batch = 2, inference.context = 16;
  const MemoryEstimate training = training_state_memory(inference, "dir");
  CHECK(training.weight_bytes == 4 * inference.weight_bytes);
  CHECK(training.cache_bytes == 0);
  CHECK(training.total_bytes() == 4 * inference.weight_bytes);
  MemoryEstimate huge;
  huge.weight_bytes = detail::max_size_count;
  CHECK_THROWS_WITH_AS(training_state_memory(huge, "dir"), doctest::Contains("dir: the training state's size in bytes"), RangeError);
}

TEST_CASE("check_memory_ceiling: a model the machine could never hold is refused before it is allocated (harden-c)") {
  // Linux hands out memory it does not have: such a model was not a std::bad_alloc but a process killed half-way
  // through its initialisation (gpt2 --init-random with the largest sizes its options allow).
  MemoryEstimate need;
  need.weight_bytes = std::uint64_t(3) << 30;  // batch 0: no KV cache, the caller says what the bytes are
  const std::uint64_t ceiling = std::uint64_t(2) << 30;
  CHECK_THROWS_WITH_AS(check_memory_ceiling(need, "dir", "creating a random GPT-2 as float (its weights)", MemoryCeiling{ceiling, ""}),
                       ("dir: out of memory creating a random GPT-2 as float (its weights), which needs " + format_bytes(need.weight_bytes) +
                        "; this machine has " + format_bytes(ceiling) + " of memory and swap")
                           .c_str(),
                       OutOfMemoryError);
  CHECK_NOTHROW(check_memory_ceiling(need, "dir", "creating", MemoryCeiling{need.weight_bytes, ""}));
  CHECK_NOTHROW(check_memory_ceiling(need, "dir", "creating", MemoryCeiling{}));  // unknown: nothing to compare with
  CHECK(memory_ceiling_bytes() > 0);
  // Below the machine's memory, the message names the limit.
  CHECK_THROWS_WITH_AS(check_memory_ceiling(need, "dir", "creating", MemoryCeiling{ceiling, "the memory limit of its control group (cgroup)"}),
                       ("dir: out of memory creating, which needs " + format_bytes(need.weight_bytes) +
                        "; the memory limit of its control group (cgroup) is " + format_bytes(ceiling))
                           .c_str(),
                       OutOfMemoryError);
  // The budget says what is done when it is not loading.
  ModelLoadOptions budget;
  budget.memory_budget = 1024;
  CHECK_THROWS_WITH_AS(check_memory_budget(need, budget, "dir", "a random GPT-2 as float", "creating"),
                       ("dir: creating a random GPT-2 as float needs " + format_bytes(need.weight_bytes) + "; more than the memory budget of " +
                        format_bytes(1024))
                           .c_str(),
                       RangeError);
#ifndef EIGENFORMER_TEST_UNDER_ASAN  // AddressSanitizer reserves terabytes of address space
  // Under an address-space limit (ulimit -v), the limit is the ceiling, and the message says so.
  const std::string child = testing::run_with_address_limit(std::size_t(256) << 20, [&] {
    const std::uint64_t limit = memory_ceiling_bytes();
    MemoryEstimate huge;
    huge.weight_bytes = limit + 1;
    try {
      check_memory_ceiling(huge, "dir", "creating");
    } catch (const OutOfMemoryError& e) {
      return std::string(e.what()) == "dir: out of memory creating, which needs " + format_bytes(limit + 1) +
                                          "; the address-space limit (ulimit -v) is " + format_bytes(limit)
                 ? std::string("ok")
                 : std::string(e.what());
    }
    return std::string("no error");
  });
  CHECK(child == "ok");
#endif
}
