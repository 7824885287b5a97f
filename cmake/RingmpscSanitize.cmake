# RMPSC_SANITIZE=address: AddressSanitizer + UndefinedBehaviorSanitizer;
# RMPSC_SANITIZE=thread: ThreadSanitizer. Applied to everything built here.
if(RMPSC_SANITIZE STREQUAL "address")
  set(_san -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
elseif(RMPSC_SANITIZE STREQUAL "thread")
  set(_san -fsanitize=thread -fno-omit-frame-pointer)
  # GCC 12 warns that TSan does not model atomic_thread_fence. The fences
  # here (src/internal.h, src/wait.c) order accesses that are all atomics,
  # so TSan misses no race on plain data through them; the warning would
  # only fail the -Werror build.
  include(CheckCCompilerFlag)
  check_c_compiler_flag(-Wno-tsan RMPSC_HAVE_WNO_TSAN)
  if(RMPSC_HAVE_WNO_TSAN)
    add_compile_options(-Wno-tsan)
  endif()
elseif(NOT RMPSC_SANITIZE STREQUAL "")
  message(FATAL_ERROR "RMPSC_SANITIZE must be address, thread or empty")
endif()
if(_san)
  # The sanitizer builds are the debug builds: internal assertions on
  # (RMPSC__ASSERT in src/internal.h), in the library and in the tests
  # that include its internal headers.
  add_compile_definitions(RMPSC_DEBUG_ASSERT=1)
  add_compile_options(${_san})
  add_link_options(${_san})
endif()
