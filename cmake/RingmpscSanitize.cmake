# RMPSC_SANITIZE=address: AddressSanitizer + UndefinedBehaviorSanitizer;
# RMPSC_SANITIZE=thread: ThreadSanitizer. Applied to everything built here.
if(RMPSC_SANITIZE STREQUAL "address")
  set(_san -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
elseif(RMPSC_SANITIZE STREQUAL "thread")
  set(_san -fsanitize=thread -fno-omit-frame-pointer)
elseif(NOT RMPSC_SANITIZE STREQUAL "")
  message(FATAL_ERROR "RMPSC_SANITIZE must be address, thread or empty")
endif()
if(_san)
  add_compile_options(${_san})
  add_link_options(${_san})
endif()
