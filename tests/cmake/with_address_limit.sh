#!/bin/sh
# tests/cmake/with_address_limit.sh KIB COMMAND [ARGS...]: runs COMMAND under an address-space limit of KIB kibibytes
# (ulimit -v), as on a machine without the memory, for the command-line tests of what the programs say then.
ulimit -v "$1" || exit 97
shift
exec "$@"
