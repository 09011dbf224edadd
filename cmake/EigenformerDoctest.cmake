# eigenformer_discover_doctests(<target> [PREFIX <text>]): after each build of <target>, list its doctest cases and
# register each one as a ctest test (label "unit"), so ctest counts and runs them one by one. PREFIX goes before each
# test's name, for an executable that builds some of the same cases again (ctest names must be unique).
#
# Why not doctest_discover_tests() from doctest's own doctest.cmake (2.4.9, as Debian ships it): it
# splits the listing as a CMake list, so a case name with ';' or an unbalanced '[' ("lengths[b]",
# "p must lie in [0, 1)") swallows the following names into one bogus test. Here the listing is
# escaped before it is split, and each name is written back verbatim inside a bracket argument.
#
# This file is both the module (include it, call the function) and the POST_BUILD script that the
# function runs (cmake -P this file).

if(NOT CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  set(_eigenformer_doctest_script "${CMAKE_CURRENT_LIST_FILE}")

  function(eigenformer_discover_doctests target)
    cmake_parse_arguments(arg "" "PREFIX" "" ${ARGN})
    set(tests_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_tests.cmake")
    set(include_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_include.cmake")
    add_custom_command(TARGET ${target} POST_BUILD
      BYPRODUCTS "${tests_file}"
      COMMAND "${CMAKE_COMMAND}"
              -D "TEST_EXECUTABLE=$<TARGET_FILE:${target}>"
              -D "WORKING_DIR=${CMAKE_CURRENT_BINARY_DIR}"
              -D "CTEST_FILE=${tests_file}"
              -D "TEST_PREFIX=${arg_PREFIX}"
              -P "${_eigenformer_doctest_script}"
      COMMENT "Listing the doctest cases of ${target} for ctest"
      VERBATIM)
    file(WRITE "${include_file}"
      "if(EXISTS \"${tests_file}\")\n"
      "  include(\"${tests_file}\")\n"
      "else()\n"
      "  add_test(${target}_NOT_BUILT ${target}_NOT_BUILT)\n"
      "endif()\n")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${include_file}")
  endfunction()
  return()
endif()

# Script mode: -D TEST_EXECUTABLE=... -D WORKING_DIR=... -D CTEST_FILE=... -D TEST_PREFIX=...
execute_process(COMMAND "${TEST_EXECUTABLE}" --list-test-cases --no-version=true
  WORKING_DIRECTORY "${WORKING_DIR}"
  RESULT_VARIABLE result OUTPUT_VARIABLE listing ERROR_VARIABLE error)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "Listing the test cases of '${TEST_EXECUTABLE}' failed (${result}):\n${listing}${error}")
endif()

# Hide the characters that CMake lists treat specially, split into lines, restore them per name.
string(ASCII 1 semicolon)
string(ASCII 2 open)
string(ASCII 3 close)
string(REPLACE ";" "${semicolon}" listing "${listing}")
string(REPLACE "[" "${open}" listing "${listing}")
string(REPLACE "]" "${close}" listing "${listing}")
string(REPLACE "\r" "" listing "${listing}")
string(REPLACE "\n" ";" lines "${listing}")

set(script "")
set(seen "")
foreach(line IN LISTS lines)
  if(line STREQUAL "" OR line MATCHES "^=+$" OR line MATCHES "^${open}doctest${close} ")
    continue()
  endif()
  if(line MATCHES "${close}==${close}")
    message(FATAL_ERROR "Test case name contains ']==]', which this script cannot quote: ${line}")
  endif()
  list(FIND seen "${line}" at)
  if(at GREATER -1)
    continue()  # two cases with one name: the filter below runs both, so register the name once
  endif()
  list(APPEND seen "${line}")
  string(REPLACE "${semicolon}" ";" name "${line}")
  string(REPLACE "${open}" "[" name "${name}")
  string(REPLACE "${close}" "]" name "${name}")
  string(REPLACE "," "\\," filter "${name}")  # doctest splits --test-case filters on unescaped commas
  string(APPEND script
    "add_test([==[${TEST_PREFIX}${name}]==] [==[${TEST_EXECUTABLE}]==] [==[--test-case=${filter}]==] --case-sensitive=true --no-version=true)\n"
    # A filter that matched nothing would pass silently: doctest then reports "test cases: 0 |".
    "set_tests_properties([==[${TEST_PREFIX}${name}]==] PROPERTIES WORKING_DIRECTORY [==[${WORKING_DIR}]==] LABELS unit"
    " FAIL_REGULAR_EXPRESSION [==[test cases: +0 [|]]==])\n")
endforeach()
file(WRITE "${CTEST_FILE}" "${script}")
