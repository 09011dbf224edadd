// core/bounded_reader.hpp: the one way Eigenformer reads a file or a stream whole or line by line (config.json,
// vocab.json, merges.txt, the examples' text files and standard input). BoundedReader refuses, by name and before
// reading a byte, a path that is not a regular file (a directory, a FIFO, /dev/zero: open_regular_file never blocks
// on a FIFO); stops as soon as more bytes than the caller's cap arrive, so that nothing grows past it; and turns a
// failed read (EIO, EISDIR ...) into an IoError, never into an early end of input. Safetensors files are mapped, not
// read, but are opened through open_regular_file too. POSIX only, as the memory-mapped safetensors reader.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <utility>

#include "eigenformer/core/error.hpp"

namespace eigenformer {

namespace detail {

// "64 MiB (67108864 bytes)", or "1000 bytes" below a KiB or off the binary units.
inline std::string byte_count_str(std::uint64_t n) {
  const char* units[] = {"GiB", "MiB", "KiB"};
  for (int i = 0; i < 3; ++i) {
    const std::uint64_t unit = std::uint64_t(1) << (10 * (3 - i));
    if (n >= unit && n % unit == 0) return std::to_string(n / unit) + " " + units[i] + " (" + std::to_string(n) + " bytes)";
  }
  return std::to_string(n) + " bytes";
}

// What a stat's st_mode is, when it is not a regular file: "a directory", "a FIFO (named pipe)", ...
inline std::string file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "a special file";
}

}  // namespace detail

// Opens `path` for reading and returns its descriptor (the caller closes it) and, in *st, its fstat. IoError
// "<path>: cannot open: <reason>", or "<path>: is a directory, not a <noun>" (a FIFO, a device, a socket) when it
// is not a regular file. Opened non-blocking, so that a FIFO without a writer is refused, not waited on; reads of a
// regular file never block anyway.
inline int open_regular_file(const std::string& path, const std::string& noun, struct stat* st) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    const int err = errno;
    throw IoError(detail::printable(path) + ": cannot open: " + std::strerror(err));
  }
  if (::fstat(fd, st) != 0) {
    const int err = errno;
    ::close(fd);
    throw IoError(detail::printable(path) + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st->st_mode)) {
    ::close(fd);
    throw IoError(detail::printable(path) + ": is " + detail::file_kind(st->st_mode) + ", not a " + noun);
  }
  return fd;
}

// Reads bytes from a descriptor, or any source, at most `max_bytes` of them, whole or line by line.
class BoundedReader {
 public:
  // Fills buf with up to n bytes; returns how many, 0 at the end, -1 with errno set when the read failed.
  using Source = std::function<long(char* buf, std::size_t n)>;

  // `name` (escaped by detail::printable) stands for the source in messages ("dir/vocab.json", "standard input"); `what` says what it should be,
  // for the cap's message ("a vocab.json", "standard input").
  BoundedReader(Source source, std::string name, std::string what, std::uint64_t max_bytes)
      : source_(std::move(source)), name_(detail::printable(name)), what_(std::move(what)), max_bytes_(max_bytes) {}

  // A regular file, opened now (open_regular_file) and closed when the reader is destroyed; a file whose size is
  // already over the cap is refused before reading.
  static BoundedReader open_file(const std::string& path, const std::string& what, std::uint64_t max_bytes, const std::string& noun = "file") {
    struct stat st {};
    const int fd = open_regular_file(path, noun, &st);
    BoundedReader r(fd_source(fd), path, what, max_bytes);
    r.fd_ = fd;
    if (static_cast<std::uint64_t>(st.st_size) > max_bytes) throw r.too_large();  // ~BoundedReader closes fd
    return r;
  }
  // An open descriptor that stays the caller's (standard input: 0). Not checked to be a regular file: a pipe is fine.
  static BoundedReader from_fd(int fd, const std::string& name, const std::string& what, std::uint64_t max_bytes) {
    return BoundedReader(fd_source(fd), name, what, max_bytes);
  }

  BoundedReader(BoundedReader&& o) noexcept { *this = std::move(o); }
  BoundedReader& operator=(BoundedReader&& o) noexcept {
    if (this != &o) {
      close();
      source_ = std::move(o.source_);
      name_ = std::move(o.name_);
      what_ = std::move(o.what_);
      max_bytes_ = o.max_bytes_;
      fd_ = std::exchange(o.fd_, -1);
      buffer_ = std::move(o.buffer_);
      begin_ = o.begin_;
      total_ = o.total_;
      line_ = o.line_;
      ended_ = o.ended_;
    }
    return *this;
  }
  BoundedReader(const BoundedReader&) = delete;
  BoundedReader& operator=(const BoundedReader&) = delete;
  ~BoundedReader() { close(); }

  const std::string& name() const { return name_; }
  // Lines returned so far by read_line.
  std::uint64_t lines() const { return line_; }

  // Everything left. IoError if a read fails; FormatError "<name>: is larger than <cap>; <what> may be at most
  // <cap>" as soon as more than max_bytes have come in.
  std::string read_all() {
    std::string out(buffer_, begin_, std::string::npos);
    buffer_.clear();
    begin_ = 0;
    while (fill(out)) {
    }
    return out;
  }

  // The next line, without its '\n' (as std::getline: a last line without '\n' counts, an empty input has no line).
  // false at the end of the input. FormatError "<name>: line N is longer than <cap>; ..." as soon as a line passes
  // max_line_bytes; IoError and the total cap as read_all.
  bool read_line(std::string& line, std::uint64_t max_line_bytes) {
    line.clear();
    for (;;) {
      const std::size_t newline = buffer_.find('\n', begin_);
      const std::size_t end = newline == std::string::npos ? buffer_.size() : newline;
      if (line.size() + (end - begin_) > max_line_bytes)
        throw FormatError(name_ + ": line " + std::to_string(line_ + 1) + " is longer than " + detail::byte_count_str(max_line_bytes) +
                          "; a line of " + what_ + " may be at most that long");
      line.append(buffer_, begin_, end - begin_);
      if (newline != std::string::npos) {
        begin_ = newline + 1;
        ++line_;
        return true;
      }
      buffer_.clear();
      begin_ = 0;
      if (!fill(buffer_)) {
        if (line.empty()) return false;
        ++line_;
        return true;
      }
    }
  }

 private:
  static Source fd_source(int fd) {
    return [fd](char* buf, std::size_t n) -> long {
      for (;;) {
        const ssize_t got = ::read(fd, buf, n);
        if (got >= 0) return static_cast<long>(got);
        if (errno == EAGAIN || errno == EWOULDBLOCK) {  // a non-blocking pipe handed to us: wait for it
          pollfd p{fd, POLLIN, 0};
          if (::poll(&p, 1, -1) < 0 && errno != EINTR) return -1;
        } else if (errno != EINTR) {
          return -1;
        }
      }
    };
  }

  FormatError too_large() const {
    return FormatError(name_ + ": is larger than " + detail::byte_count_str(max_bytes_) + "; " + what_ + " may be at most that");
  }

  // Appends one read's bytes to `out`; false at the end of the input.
  bool fill(std::string& out) {
    if (ended_) return false;
    char chunk[1 << 16];
    const long got = source_(chunk, sizeof chunk);
    if (got < 0) {
      const int err = errno;
      throw IoError(name_ + ": cannot read: " + std::strerror(err));
    }
    if (got == 0) {
      ended_ = true;
      return false;
    }
    total_ += static_cast<std::uint64_t>(got);
    if (total_ > max_bytes_) throw too_large();
    out.append(chunk, static_cast<std::size_t>(got));
    return true;
  }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  Source source_;
  std::string name_, what_;
  std::uint64_t max_bytes_ = 0;
  int fd_ = -1;             // owned by open_file's reader; -1 otherwise
  std::string buffer_;      // bytes read but not yet returned start at begin_
  std::size_t begin_ = 0;
  std::uint64_t total_ = 0;  // bytes read from the source so far
  std::uint64_t line_ = 0;   // lines returned by read_line
  bool ended_ = false;       // the source said end of input
};

// The whole regular file `path`, at most max_bytes; see BoundedReader::open_file and read_all.
inline std::string read_file_bounded(const std::string& path, const std::string& what, std::uint64_t max_bytes, const std::string& noun = "file") {
  return BoundedReader::open_file(path, what, max_bytes, noun).read_all();
}

}  // namespace eigenformer
