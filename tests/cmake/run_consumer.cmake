# Packaging tests, run by ctest as `cmake -D... -DMODE=<mode> -P run_consumer.cmake`:
#   install           configure the repository alone (tests and examples off) and install it into
#                     WORK_DIR/prefix; the fixture the next two tests need
#   add_subdirectory  build and run tests/cmake/add_subdirectory (the repository as a subproject);
#                     check that none of Eigenformer's tests or examples were built
#   find_package      build and run tests/cmake/find_package against WORK_DIR/prefix
#   pkgconfig         compile and run tests/cmake/main.cpp with `pkg-config --cflags --libs eigenformer`
# Every step echoes its command; any failure ends the test with FATAL_ERROR.
cmake_minimum_required(VERSION 3.16)

foreach(var SOURCE_DIR WORK_DIR MODE GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT CONFIG)
  set(CONFIG Release)
endif()
set(consumers "${SOURCE_DIR}/tests/cmake")
set(prefix "${WORK_DIR}/prefix")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result COMMAND_ECHO STDOUT)
  if(NOT result EQUAL 0)
    list(JOIN ARGN " " command)
    message(FATAL_ERROR "run_consumer.cmake (${MODE}): failed with '${result}': ${command}")
  endif()
endfunction()

# configure_and_build(<source> <build> [cache args...]): a fresh configure and build of <source>.
function(configure_and_build source build)
  set(args -DCMAKE_BUILD_TYPE=${CONFIG} -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
  foreach(var Eigen3_DIR nlohmann_json_DIR)
    if(${var})
      list(APPEND args -D${var}=${${var}})
    endif()
  endforeach()
  if(DEFINED USE_OPENMP)
    list(APPEND args -DEIGENFORMER_USE_OPENMP=${USE_OPENMP})
  endif()
  file(REMOVE_RECURSE "${build}")
  run("${CMAKE_COMMAND}" -S "${source}" -B "${build}" -G "${GENERATOR}" ${args} ${ARGN})
  run("${CMAKE_COMMAND}" --build "${build}" --config ${CONFIG})
endfunction()

if(MODE STREQUAL "install")
  file(REMOVE_RECURSE "${prefix}")
  configure_and_build("${SOURCE_DIR}" "${WORK_DIR}/install-build"
    -DEIGENFORMER_BUILD_TESTS=OFF -DEIGENFORMER_BUILD_EXAMPLES=OFF -DEIGENFORMER_BUILD_BENCHMARKS=OFF
    -DEIGENFORMER_INSTALL=ON "-DCMAKE_INSTALL_PREFIX=${prefix}")
  run("${CMAKE_COMMAND}" --install "${WORK_DIR}/install-build" --config ${CONFIG})
  foreach(file include/eigenformer/core/tensor.hpp)
    if(NOT EXISTS "${prefix}/${file}")
      message(FATAL_ERROR "run_consumer.cmake (install): ${prefix}/${file} was not installed")
    endif()
  endforeach()

elseif(MODE STREQUAL "add_subdirectory")
  set(build "${WORK_DIR}/add_subdirectory")
  configure_and_build("${consumers}/add_subdirectory" "${build}" "-DEIGENFORMER_SOURCE_DIR=${SOURCE_DIR}")
  run("${build}/bin/consumer")
  # A subproject builds the library only: nothing of our tests or examples may appear.
  file(GLOB_RECURSE unwanted "${build}/*eigenformer_tests*" "${build}/*showcase*" "${build}/eigenformer-build/tests/*")
  if(unwanted)
    list(JOIN unwanted "\n  " unwanted)
    message(FATAL_ERROR "run_consumer.cmake (add_subdirectory): Eigenformer as a subproject built its tests or examples:\n  ${unwanted}")
  endif()

elseif(MODE STREQUAL "find_package")
  set(build "${WORK_DIR}/find_package")
  configure_and_build("${consumers}/find_package" "${build}" "-DCMAKE_PREFIX_PATH=${prefix}")
  # The package must be the one just installed, not one found elsewhere on the system.
  file(STRINGS "${build}/CMakeCache.txt" found REGEX "^eigenformer_DIR:")
  string(FIND "${found}" "${prefix}/" at)
  if(NOT at GREATER -1)
    message(FATAL_ERROR "run_consumer.cmake (find_package): found '${found}', not the package in ${prefix}")
  endif()
  run("${build}/bin/consumer")

elseif(MODE STREQUAL "pkgconfig")
  find_program(PKG_CONFIG_EXECUTABLE NAMES pkg-config pkgconf)
  if(NOT PKG_CONFIG_EXECUTABLE)
    message(FATAL_ERROR "run_consumer.cmake (pkgconfig): pkg-config not found (./setup.sh installs it)")
  endif()
  file(GLOB_RECURSE pc_files "${prefix}/*/eigenformer.pc")
  if(NOT pc_files)
    message(FATAL_ERROR "run_consumer.cmake (pkgconfig): no eigenformer.pc under ${prefix}")
  endif()
  list(GET pc_files 0 pc_file)
  get_filename_component(pc_dir "${pc_file}" DIRECTORY)
  if(DEFINED ENV{PKG_CONFIG_PATH} AND NOT "$ENV{PKG_CONFIG_PATH}" STREQUAL "")
    set(ENV{PKG_CONFIG_PATH} "${pc_dir}:$ENV{PKG_CONFIG_PATH}")
  else()
    set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
  endif()
  execute_process(COMMAND "${PKG_CONFIG_EXECUTABLE}" --cflags --libs eigenformer
    RESULT_VARIABLE result OUTPUT_VARIABLE flags ERROR_VARIABLE error OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "run_consumer.cmake (pkgconfig): pkg-config --cflags --libs eigenformer failed (PKG_CONFIG_PATH=$ENV{PKG_CONFIG_PATH}):\n${error}")
  endif()
  message(STATUS "pkg-config --cflags --libs eigenformer: ${flags}")
  separate_arguments(flags UNIX_COMMAND "${flags}")
  set(build "${WORK_DIR}/pkgconfig")
  file(REMOVE_RECURSE "${build}")
  file(MAKE_DIRECTORY "${build}")
  run("${CXX_COMPILER}" -std=c++17 ${flags} "${consumers}/main.cpp" -o "${build}/consumer")
  run("${build}/consumer")

else()
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE '${MODE}'; expected install, add_subdirectory, find_package or pkgconfig")
endif()
