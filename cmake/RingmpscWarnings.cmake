# Warning flags for the library, tests, examples and benchmarks.
set(RMPSC_WARNINGS -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes)
if(RMPSC_WERROR)
  list(APPEND RMPSC_WARNINGS -Werror)
endif()
