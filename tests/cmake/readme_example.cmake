# The README shows examples/hello/hello.cpp; this fails when the two drift apart.
# Usage: cmake -DSOURCE_DIR=<repo> -P readme_example.cmake
file(READ "${SOURCE_DIR}/README.md" readme)
file(READ "${SOURCE_DIR}/examples/hello/hello.cpp" example)
string(FIND "${readme}" "${example}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "README.md does not contain examples/hello/hello.cpp verbatim; copy the file into the README's code block")
endif()
