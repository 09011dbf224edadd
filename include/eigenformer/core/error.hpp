// core/error.hpp: the exceptions Eigenformer throws, and the internal-invariant check.
// Every error message has the form "where: what is wrong; what was expected" on one line, naming the
// file, tensor, shape or token at fault. Input from outside is always checked and reported with one of
// these types; EIGENFORMER_ASSERT guards invariants deep inside kernels (active in tests and debug builds).
#pragma once

#include <stdexcept>
#include <string>

namespace eigenformer {

// Base of every exception the library throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A tensor's shape does not fit the operation (wrong rank, wrong width, batch sizes that differ).
class ShapeError : public Error {
 public:
  using Error::Error;
};

// A value is outside its allowed range: a token id outside the vocabulary, a negative length.
class RangeError : public Error {
 public:
  using Error::Error;
};

// A file or document is malformed: a corrupt safetensors file, bad JSON, a missing config field.
class FormatError : public Error {
 public:
  using Error::Error;
};

// A file cannot be opened, mapped or written.
class IoError : public Error {
 public:
  using Error::Error;
};

// An internal invariant failed: a bug in Eigenformer, never the caller's input.
class InternalError : public Error {
 public:
  using Error::Error;
};

}  // namespace eigenformer

#if defined(EIGENFORMER_ENABLE_ASSERTS) || !defined(NDEBUG)
#define EIGENFORMER_ASSERT(cond, why)                                                              \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      throw ::eigenformer::InternalError(std::string(__FILE__) + ":" + std::to_string(__LINE__) + \
                                         ": internal check failed: " #cond "; " why);              \
  } while (false)
#else
#define EIGENFORMER_ASSERT(cond, why) \
  do {                                \
  } while (false)
#endif
