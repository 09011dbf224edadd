// core/output_file.hpp: the one way Eigenformer writes a file (safetensors files, config.json, vocabularies, the
// explain page, a training run's files). check_output_path refuses, by name and before anything is written, a path
// that exists and is not a regular file: a directory, a FIFO (writing would block until someone reads it), a device
// such as /dev/null or /dev/full (the bytes would vanish, or fail half-way), a socket. write_file_atomically checks
// that, writes PATH.tmp-<pid> beside it and renames it over PATH, so that a reader never sees half a file and a
// failure leaves what was there. The rename is what makes the check necessary: run as root, renaming over /dev/null
// would replace the device itself. POSIX only, as core/bounded_reader.hpp.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "eigenformer/core/bounded_reader.hpp"
#include "eigenformer/core/error.hpp"

namespace eigenformer {

// IoError "<path>: is a FIFO (named pipe), not a regular file; refusing to write over it" when `path` exists (a
// symbolic link: what it points to) and is not a regular file. A path that does not exist yet passes.
inline void check_output_path(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode)) return;
  throw IoError(detail::printable(path) + ": is " + detail::file_kind(st.st_mode) + ", not a regular file; refusing to write over it");
}

// Where a file written to `path` goes: `path` itself, or, when it is a symbolic link to something that exists, what
// the link resolves to. A rename replaces the link, not its target: writing --explain /dev/stdout with standard
// output redirected to a file would otherwise have replaced /dev's link (as root) instead of filling the file.
inline std::string output_target(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return path;
  std::error_code ec;
  const std::filesystem::path resolved = std::filesystem::canonical(path, ec);
  return ec ? path : resolved.string();
}

// Writes a file through check_output_path, output_target, TARGET.tmp-<pid> and a rename. write(std::FILE*) writes the contents and
// returns false if a write failed (errno set). IoError naming `path`: "cannot open for writing: <reason>" (its
// directory missing, no permission), "cannot write: <reason>" (disk full), "cannot rename the new file over it:
// <reason>"; no temporary is left behind, and a file already at `path` is unchanged.
template <typename Write, typename = std::enable_if_t<std::is_invocable_r_v<bool, Write&, std::FILE*>>>
void write_file_atomically(const std::string& path, Write&& write) {
  check_output_path(path);
  const std::string target = output_target(path);
  const std::string temporary = target + ".tmp-" + std::to_string(::getpid());
  // A stale temporary of the same name (a crashed run with this pid) is replaced; O_EXCL then makes sure that what is
  // opened is the new file, never a FIFO or a link put there meanwhile.
  ::unlink(temporary.c_str());
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  std::FILE* f = fd < 0 ? nullptr : ::fdopen(fd, "wb");
  if (!f) {
    const int err = errno;
    if (fd >= 0) {
      ::close(fd);
      std::remove(temporary.c_str());
    }
    throw IoError(detail::printable(path) + ": cannot open for writing: " + std::strerror(err));
  }
  const bool written = write(f);
  const int write_errno = errno;
  const bool closed = std::fclose(f) == 0;
  const int close_errno = errno;
  if (!written || !closed) {
    std::remove(temporary.c_str());
    throw IoError(detail::printable(path) + ": cannot write: " + std::strerror(!written ? write_errno : close_errno));
  }
  if (std::rename(temporary.c_str(), target.c_str()) != 0) {
    const int err = errno;
    std::remove(temporary.c_str());
    throw IoError(detail::printable(path) + ": cannot rename the new file over it: " + std::strerror(err));
  }
}

// The same for bytes in memory.
inline void write_file_atomically(const std::string& path, std::string_view bytes) {
  write_file_atomically(path, [&](std::FILE* f) { return bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size(); });
}

}  // namespace eigenformer
