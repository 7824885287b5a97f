# cmake -DSRC_DIR=src -P check_style.cmake
# Bans the synchronization forms STYLE.md §10 rules out: implicit seq_cst
# atomics (every atomic op must be the _explicit form with a named order;
# the GCC __atomic builtins, which always name one, are allowed for plain
# fields of public structs such as the shared ring's header sections),
# __sync builtins, fences without a named order, volatile, and inline asm other than the CPU-relax hint.
file(GLOB_RECURSE files "${SRC_DIR}/*.c" "${SRC_DIR}/*.h")
set(bad "")
foreach(f ${files})
  file(STRINGS "${f}" lines)
  set(no 0)
  foreach(l IN LISTS lines)
    math(EXPR no "${no} + 1")
    # Fences have no _explicit form: they must name their order.
    set(fence_bad OFF)
    if(l MATCHES "atomic_(thread|signal)_fence[ ]*\\(" AND
       NOT l MATCHES "atomic_(thread|signal)_fence[ ]*\\([ ]*memory_order_[a-z_]+[ ]*\\)")
      set(fence_bad ON)
    endif()
    if(fence_bad
       OR l MATCHES "(^|[^_a-z])atomic_(load|store|exchange|fetch_[a-z]+|compare_exchange_(weak|strong))[ ]*\\("
       OR l MATCHES "__sync_"
       OR l MATCHES "(^|[^a-z_])volatile([^a-z_]|$)"
       OR (l MATCHES "(^|[^a-z_])(__asm__|asm)([^a-z_]|$)" AND NOT l MATCHES "\"(yield|pause)\""))
      list(APPEND bad "${f}:${no}: ${l}")
    endif()
  endforeach()
endforeach()
if(bad)
  string(REPLACE ";" "\n" bad "${bad}")
  message(FATAL_ERROR "banned synchronization forms:\n${bad}")
endif()
list(LENGTH files n)
message(STATUS "style check: ${n} files clean")
