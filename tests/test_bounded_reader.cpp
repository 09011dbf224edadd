// core/bounded_reader.hpp: paths that are not regular files refused by name before reading, caps checked as the
// bytes arrive, a failed read reported as an error and never as the end of the input. Every input is made here.
#include "eigenformer/core/bounded_reader.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "support/temp_file.hpp"

using namespace eigenformer;
using eigenformer::testing::TempDir;
using eigenformer::testing::TempFile;

namespace {

// A source that hands out `text` in pieces of at most `piece` bytes, then fails with `error` (0: ends cleanly).
BoundedReader::Source pieces(std::string text, std::size_t piece, int error = 0) {
  auto pos = std::make_shared<std::size_t>(0);
  return [text, piece, error, pos](char* buf, std::size_t n) -> long {
    if (*pos == text.size()) {
      if (error == 0) return 0;
      errno = error;
      return -1;
    }
    const std::size_t k = std::min({n, piece, text.size() - *pos});
    std::memcpy(buf, text.data() + *pos, k);
    *pos += k;
    return static_cast<long>(k);
  };
}

std::vector<std::string> all_lines(BoundedReader& r, std::uint64_t max_line = 1000) {
  std::vector<std::string> lines;
  for (std::string line; r.read_line(line, max_line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("read_file_bounded: a regular file whole, its bytes exactly") {
  std::string bytes(200000, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7);
  TempFile f(bytes);
  CHECK(read_file_bounded(f.path(), "a test file", bytes.size()) == bytes);
  TempFile empty("");
  CHECK(read_file_bounded(empty.path(), "a test file", 0).empty());
}

TEST_CASE("read_file_bounded: refuses what is not a regular file, by name, before reading") {
  const TempDir dir;
  CHECK_THROWS_WITH_AS(read_file_bounded(dir.path(), "a config.json", 100), (dir.path() + ": is a directory, not a file").c_str(), IoError);
  // A FIFO with no writer: opening it for reading would block forever; it is refused at once.
  const std::string fifo = dir.path() + "/fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(read_file_bounded(fifo, "a config.json", 100, "JSON file"), (fifo + ": is a FIFO (named pipe), not a JSON file").c_str(), IoError);
  // Endless (/dev/zero) and empty (/dev/null) devices: refused, not read up to the cap.
  CHECK_THROWS_WITH_AS(read_file_bounded("/dev/zero", "a vocab.json", 100), "/dev/zero: is a character device, not a file", IoError);
  struct stat null_stat {};
  if (::stat("/dev/null", &null_stat) == 0 && S_ISCHR(null_stat.st_mode))
    CHECK_THROWS_WITH_AS(read_file_bounded("/dev/null", "a vocab.json", 100), "/dev/null: is a character device, not a file", IoError);
  else  // a program run as root can leave a regular file there (renaming its output over the device)
    MESSAGE("skipped: /dev/null is not a character device on this machine");
  CHECK_THROWS_WITH_AS(read_file_bounded(dir.path() + "/missing", "a vocab.json", 100),
                       (dir.path() + "/missing: cannot open: No such file or directory").c_str(), IoError);
}

TEST_CASE("read_file_bounded: a file over the cap is refused, from its size and as it is read") {
  TempFile f(std::string(101, 'x'));
  CHECK(read_file_bounded(f.path(), "a test file", 101).size() == 101);
  CHECK_THROWS_WITH_AS(read_file_bounded(f.path(), "a test file", 100), (f.path() + ": is larger than 100 bytes; a test file may be at most that").c_str(),
                       FormatError);
  f.write(std::string((std::size_t(4) << 20) + 1, 'x'));
  CHECK_THROWS_WITH_AS(read_file_bounded(f.path(), "a config.json", std::uint64_t(4) << 20),
                       (f.path() + ": is larger than 4 MiB (4194304 bytes); a config.json may be at most that").c_str(), FormatError);
  // /proc files say they have 0 bytes and then hold more: the cap holds as the bytes arrive.
  CHECK_THROWS_WITH_AS(read_file_bounded("/proc/self/status", "a test file", 10), "/proc/self/status: is larger than 10 bytes; a test file may be at most that",
                       FormatError);
}

TEST_CASE("BoundedReader: a read that fails is an IoError, at the start or half-way, never the end of the input") {
  BoundedReader at_once(pieces("", 1, EIO), "standard input", "standard input", 1000);
  CHECK_THROWS_WITH_AS(at_once.read_all(), "standard input: cannot read: Input/output error", IoError);
  // Two whole lines arrive, then the read fails: both lines are returned, then the error, not "no more lines".
  BoundedReader midway(pieces("1 2\n3 4\n5", 3, EIO), "standard input", "standard input", 1000);
  std::string line;
  CHECK(midway.read_line(line, 100));
  CHECK(line == "1 2");
  CHECK(midway.read_line(line, 100));
  CHECK(line == "3 4");
  CHECK_THROWS_WITH_AS(midway.read_line(line, 100), "standard input: cannot read: Input/output error", IoError);
  // A directory's descriptor read as standard input would be: EISDIR.
  const TempDir dir;
  const int fd = ::open(dir.path().c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  BoundedReader from_dir = BoundedReader::from_fd(fd, "standard input", "standard input", 1000);
  CHECK_THROWS_WITH_AS(from_dir.read_line(line, 100), "standard input: cannot read: Is a directory", IoError);
  ::close(fd);
}

TEST_CASE("BoundedReader::read_line: lines as std::getline gives them, whatever the read sizes") {
  for (std::size_t piece : {1, 2, 5, 1000}) {
    CAPTURE(piece);
    BoundedReader a(pieces("a\n\nbc\nd", piece), "in", "the input", 1000);
    CHECK(all_lines(a) == std::vector<std::string>{"a", "", "bc", "d"});
    CHECK(a.lines() == 4);
    BoundedReader b(pieces("a\n", piece), "in", "the input", 1000);
    CHECK(all_lines(b) == std::vector<std::string>{"a"});
    BoundedReader c(pieces("", piece), "in", "the input", 1000);
    CHECK(all_lines(c).empty());
  }
}

TEST_CASE("BoundedReader::read_line: a line over its cap, and input over the total cap, stop the reading") {
  BoundedReader r(pieces("12345\n123456\n", 4), "standard input", "standard input", 1000);
  std::string line;
  CHECK(r.read_line(line, 5));
  CHECK_THROWS_WITH_AS(r.read_line(line, 5), "standard input: line 2 is longer than 5 bytes; a line of standard input may be at most that long", FormatError);
  // A line without end is refused once it passes the cap, not read to the end first.
  BoundedReader endless([](char* buf, std::size_t n) -> long { std::memset(buf, 'x', n); return static_cast<long>(n); }, "standard input",
                        "standard input", std::uint64_t(1) << 40);
  CHECK_THROWS_WITH_AS(endless.read_line(line, std::uint64_t(1) << 20),
                       "standard input: line 1 is longer than 1 MiB (1048576 bytes); a line of standard input may be at most that long", FormatError);
  BoundedReader total(pieces("1\n2\n3\n4\n", 3), "standard input", "standard input", 5);
  CHECK(total.read_line(line, 5));
  CHECK_THROWS_WITH_AS(all_lines(total), "standard input: is larger than 5 bytes; standard input may be at most that", FormatError);
}

TEST_CASE("detail::byte_count_str: binary units when exact") {
  CHECK(detail::byte_count_str(1000) == "1000 bytes");
  CHECK(detail::byte_count_str(2048) == "2 KiB (2048 bytes)");
  CHECK(detail::byte_count_str(std::uint64_t(64) << 20) == "64 MiB (67108864 bytes)");
  CHECK(detail::byte_count_str(std::uint64_t(3) << 30) == "3 GiB (3221225472 bytes)");
}

TEST_CASE("read_file_bounded: a file name with control bytes is escaped in messages (issue 13)") {
  CHECK_THROWS_WITH_AS(read_file_bounded("/nonexistent/\x1b[31m\x7f", "a vocab.json", 100), "/nonexistent/\\u001b[31m\\u007f: cannot open: No such file or directory",
                       IoError);
  BoundedReader r([](char*, std::size_t) -> long { errno = EIO; return -1; }, "in\x1b", "the input", 10);
  CHECK_THROWS_WITH_AS(r.read_all(), "in\\u001b: cannot read: Input/output error", IoError);
}
