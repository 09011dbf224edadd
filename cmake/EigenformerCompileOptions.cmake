# Compile options for Eigenformer's own programs (tests, examples, benchmarks); never put on the
# library target, so users keep their own flags.

# eigenformer_warnings(<target>): -Wall -Wextra -Wpedantic (/W4 on MSVC), plus -Werror when
# EIGENFORMER_WERROR is on. Eigen and the other dependencies come in through imported targets,
# so their headers are SYSTEM includes and cannot trip these flags.
function(eigenformer_warnings target)
  if(MSVC)
    target_compile_options(${target} PRIVATE /W4 $<$<BOOL:${EIGENFORMER_WERROR}>:/WX>)
  else()
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic $<$<BOOL:${EIGENFORMER_WERROR}>:-Werror>)
    # A user's own -march=native (or -mavx512f) in CMAKE_CXX_FLAGS turns AVX-512 on for every target: the same GCC 12
    # header warning as below, which -Werror must not make fatal.
    if(CMAKE_CXX_FLAGS MATCHES "-march=|-mavx512")
      eigenformer_avx512_warnings(${target})
    endif()
  endif()
endfunction()

# eigenformer_fast(<target>): -O3 outside Debug builds, and -march=native when EIGENFORMER_NATIVE is
# on. For examples and benchmarks only: tests stay portable.
function(eigenformer_fast target)
  if(NOT MSVC)
    target_compile_options(${target} PRIVATE $<$<NOT:$<CONFIG:Debug>>:-O3>)
    if(EIGENFORMER_NATIVE)
      target_compile_options(${target} PRIVATE -march=native)
      eigenformer_avx512_warnings(${target})  # native may include AVX-512
    endif()
  endif()
endfunction()

# eigenformer_avx512_warnings(<target>): for a target compiled with AVX-512 on. GCC 12's own avx512fintrin.h
# initialises a variable with itself in _mm512_undefined_* (GCC bug 105593, fixed in GCC 13), and once Eigen's
# AVX-512 packets inline it GCC warns "'__Y' may be used uninitialized" (-O3) or "is used uninitialized" (-O1): a
# warning about the compiler's header, not ours, which -Werror would make fatal. The tests built with AVX-512 are
# also built without it (eigenformer_tests), where these warnings stay on.
function(eigenformer_avx512_warnings target)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-uninitialized -Wno-maybe-uninitialized)
  endif()
endfunction()

# eigenformer_sanitize(<target>): when EIGENFORMER_SANITIZE is on, AddressSanitizer (out-of-bounds reads and writes,
# use after free or after scope, leaks; a null dereference is its SEGV report) and UndefinedBehaviorSanitizer
# (overflow of signed integers, shifts, out-of-range float to integer casts, misaligned accesses, ...) on <target>.
# -fno-sanitize-recover=all makes the first report end the program with a failure, so undefined behaviour fails the
# test rather than printing a line nobody reads; -g1 gives the reports file:line.
# Three of UBSan's checks are left out: null, object-size and pointer-overflow. AddressSanitizer already reports the
# accesses the first two look for, and with all three the build took half as long again (a test file: 89 s of CPU with
# them, 61 s without; docs/reliability.md).
function(eigenformer_sanitize target)
  if(NOT EIGENFORMER_SANITIZE)
    return()
  endif()
  if(MSVC)
    message(FATAL_ERROR "eigenformer: EIGENFORMER_SANITIZE needs GCC or Clang (AddressSanitizer and UndefinedBehaviorSanitizer)")
  endif()
  set(flags -fsanitize=address,undefined,float-cast-overflow -fno-sanitize=null,object-size,pointer-overflow
            -fno-sanitize-recover=all -fno-omit-frame-pointer)
  # -O1 outside Debug, for the examples too (after eigenformer_fast's -O3, so it wins): this build checks, it is not
  # timed.
  target_compile_options(${target} PRIVATE ${flags} -g1 $<$<NOT:$<CONFIG:Debug>>:-O1>)
  target_link_options(${target} PRIVATE ${flags})
endfunction()
