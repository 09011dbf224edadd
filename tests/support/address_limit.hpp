// tests/support/address_limit.hpp: runs a function in a child process whose address space (RLIMIT_AS) is what it
// already maps plus `extra` bytes, so that a test can make an allocation or a mapping fail, as on a machine without the
// memory, without allocating it. For the out-of-memory tests of issue 13.
#pragma once

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <exception>
#include <fstream>
#include <functional>
#include <string>

#if defined(__SANITIZE_ADDRESS__)
#define EIGENFORMER_TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EIGENFORMER_TEST_UNDER_ASAN 1
#endif
#endif
// (AddressSanitizer reserves terabytes of address space and aborts on a failed allocation: the tests that use this
// are left out under it, #ifndef EIGENFORMER_TEST_UNDER_ASAN.)

namespace eigenformer::testing {

// What f() returns, run in a child limited to its current address space plus `extra` bytes; an exception f() throws
// comes back as "exception: <what>". The child leaves with _exit, so nothing of the parent (doctest) runs twice;
// a child that dies or cannot set the limit gives a text that says so.
inline std::string run_with_address_limit(std::size_t extra, const std::function<std::string()>& f) {
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    ::close(fds[0]);
    std::size_t pages = 0;
    std::ifstream("/proc/self/statm") >> pages;  // the address space in use, in pages
    rlimit limit{};
    limit.rlim_cur = limit.rlim_max = pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) + extra;
    std::string result = "setrlimit failed";
    if (::setrlimit(RLIMIT_AS, &limit) == 0) {
      try {
        result = f();
      } catch (const std::exception& e) {
        result = std::string("exception: ") + e.what();
      }
    }
    const ssize_t written = ::write(fds[1], result.data(), result.size());
    ::_exit(written == static_cast<ssize_t>(result.size()) ? 0 : 1);
  }
  ::close(fds[1]);
  std::string result;
  char buf[512];
  for (ssize_t got; (got = ::read(fds[0], buf, sizeof buf)) > 0;) result.append(buf, static_cast<std::size_t>(got));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "the child failed (status " + std::to_string(status) + "): " + result;
  return result;
}

}  // namespace eigenformer::testing
