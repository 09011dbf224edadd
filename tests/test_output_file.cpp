// core/output_file.hpp: a path that exists and is not a regular file is refused by name before anything is written; a
// file is written whole through a temporary and a rename, or not at all, with nothing left behind. Every path is
// made here. (Devices are only stat'ed, never written: run as root, a rename over /dev/null replaces it.)
#include "eigenformer/core/output_file.hpp"

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "support/temp_file.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

TEST_CASE("check_output_path: a new path or a regular file passes; a directory, FIFO, device or socket is refused by name") {
  TempDir dir;
  CHECK_NOTHROW(check_output_path(dir.path() + "/new.bin"));
  write_text_file(dir.path() + "/old.bin", "x");
  CHECK_NOTHROW(check_output_path(dir.path() + "/old.bin"));
  CHECK_THROWS_WITH_AS(check_output_path(dir.path()), (dir.path() + ": is a directory, not a regular file; refusing to write over it").c_str(), IoError);
  const std::string fifo = dir.path() + "/fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(check_output_path(fifo), (fifo + ": is a FIFO (named pipe), not a regular file; refusing to write over it").c_str(), IoError);
  // Devices, those of them that are devices on this machine (a program run as root once left a regular file at /dev/null).
  std::string device;
  for (const char* candidate : {"/dev/null", "/dev/full", "/dev/zero"}) {
    struct stat st {};
    if (::stat(candidate, &st) != 0 || !S_ISCHR(st.st_mode)) continue;
    device = candidate;
    CHECK_THROWS_WITH_AS(check_output_path(candidate), (device + ": is a character device, not a regular file; refusing to write over it").c_str(), IoError);
  }
  REQUIRE_FALSE(device.empty());
  // A symbolic link is judged by what it points to.
  const std::string link = dir.path() + "/link";
  REQUIRE(::symlink(device.c_str(), link.c_str()) == 0);
  CHECK_THROWS_WITH_AS(check_output_path(link), (link + ": is a character device, not a regular file; refusing to write over it").c_str(), IoError);
  const std::string socket_path = dir.path() + "/sock";
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  REQUIRE(socket_path.size() < sizeof address.sun_path);
  std::strcpy(address.sun_path, socket_path.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  CHECK_THROWS_WITH_AS(check_output_path(socket_path), (socket_path + ": is a socket, not a regular file; refusing to write over it").c_str(), IoError);
  ::close(fd);
  // A name with control characters is escaped, as every quoted path is.
  const std::string odd = dir.path() + "/a\x1b[2J";
  REQUIRE(::mkfifo(odd.c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(check_output_path(odd), (detail::printable(odd) + ": is a FIFO (named pipe), not a regular file; refusing to write over it").c_str(),
                       IoError);
}

TEST_CASE("write_file_atomically: writes or replaces a file whole; refuses what is not a file, leaving it as it was") {
  TempDir dir;
  const std::string path = dir.path() + "/out.txt";
  write_file_atomically(path, std::string("first"));
  CHECK(read_text_file(path) == "first");
  write_file_atomically(path, std::string("second, longer"));
  CHECK(read_text_file(path) == "second, longer");
  write_file_atomically(path, std::string());
  CHECK(read_text_file(path).empty());
  CHECK(files_in(dir.path()) == std::vector<std::string>{"out.txt"});

  // A FIFO would block the writer (or, renamed over, vanish); a directory cannot be replaced by a file.
  const std::string fifo = dir.path() + "/fifo", sub = dir.path() + "/sub";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::filesystem::create_directory(sub);
  CHECK_THROWS_WITH_AS(write_file_atomically(fifo, std::string("x")), (fifo + ": is a FIFO (named pipe), not a regular file; refusing to write over it").c_str(),
                       IoError);
  CHECK_THROWS_WITH_AS(write_file_atomically(sub, std::string("x")), (sub + ": is a directory, not a regular file; refusing to write over it").c_str(), IoError);
  struct stat st {};
  REQUIRE(::stat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  CHECK(std::filesystem::is_empty(sub));
  // The writer is not even called when the path is refused.
  bool called = false;
  CHECK_THROWS_AS(write_file_atomically(fifo, [&](std::FILE*) { return called = true; }), IoError);
  CHECK_FALSE(called);

  // Its directory missing: named, nothing created.
  const std::string missing = dir.path() + "/no/such/file";
  CHECK_THROWS_WITH_AS(write_file_atomically(missing, std::string("x")), (missing + ": cannot open for writing: No such file or directory").c_str(), IoError);
  // A write that fails half-way (the file size limit below the text): the old file stays, no temporary is left.
  std::string message;
  {  // the write then fails with EFBIG
    FileSizeLimit limit(4096);
    REQUIRE(limit.ok());
    try {
      write_file_atomically(path, std::string(1 << 20, 'y'));
    } catch (const IoError& e) {
      message = e.what();
    }
  }
  CHECK(message == path + ": cannot write: " + std::strerror(EFBIG));
  CHECK(read_text_file(path).empty());
  CHECK(files_in(dir.path()) == std::vector<std::string>{"fifo", "out.txt", "sub"});
}

TEST_CASE("write_file_atomically: through a symbolic link, the file it points to is replaced, not the link") {
  // The rename would otherwise replace the link itself (--explain /dev/stdout with standard output in a file, as root).
  TempDir dir;
  const std::string real = dir.path() + "/real.txt", link = dir.path() + "/link.txt";
  write_text_file(real, "old");
  REQUIRE(::symlink(real.c_str(), link.c_str()) == 0);
  write_file_atomically(link, std::string("new"));
  CHECK(read_text_file(real) == "new");
  struct stat st {};
  REQUIRE(::lstat(link.c_str(), &st) == 0);
  CHECK(S_ISLNK(st.st_mode));
  CHECK(output_target(link) == std::filesystem::canonical(real).string());
  CHECK(output_target(real) == real);
  CHECK(files_in(dir.path()) == std::vector<std::string>{"link.txt", "real.txt"});
}
