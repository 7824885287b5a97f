# cmake -P cmake/run_tests.cmake
# Builds and runs the whole test suite in four configurations: normal (-O2),
# nodeps (-O2 without libnuma and liburing; the stress tests, which do not
# depend on either, run in the other three), AddressSanitizer+UBSan and
# ThreadSanitizer, each in build-test-<config>/ with -Werror, then checks that
# every configuration exports the same symbols. RMPSC_TEST_CONFIGS
# (environment, e.g. "normal;thread") picks a subset.
get_filename_component(src "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(configs normal nodeps address thread)
if(DEFINED ENV{RMPSC_TEST_CONFIGS})
  set(configs $ENV{RMPSC_TEST_CONFIGS})
endif()
cmake_host_system_information(RESULT ncpu QUERY NUMBER_OF_LOGICAL_CORES)

set(total_pass 0)
set(total_fail 0)
foreach(cfg ${configs})
  set(bdir "${src}/build-test-${cfg}")
  set(args -S "${src}" -B "${bdir}" -DRMPSC_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
  if(cfg STREQUAL "normal")
    list(APPEND args -DRMPSC_SANITIZE= -DRMPSC_BUILD_BENCH=ON)
  elseif(cfg STREQUAL "nodeps")
    list(APPEND args -DRMPSC_SANITIZE= -DRMPSC_BUILD_BENCH=OFF
         -DRMPSC_WITH_NUMA=OFF -DRMPSC_WITH_URING=OFF)
  elseif(cfg STREQUAL "address" OR cfg STREQUAL "thread")
    list(APPEND args -DRMPSC_SANITIZE=${cfg} -DRMPSC_BUILD_BENCH=OFF)
  else()
    message(FATAL_ERROR "unknown test config '${cfg}' (normal, nodeps, address, thread)")
  endif()
  message(STATUS "==== ${cfg}: configure and build")
  execute_process(COMMAND ${CMAKE_COMMAND} ${args} RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "${cfg}: configure failed")
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} --build "${bdir}" -j ${ncpu} RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "${cfg}: build failed")
  endif()
  message(STATUS "==== ${cfg}: ctest")
  # halt_on_error: a sanitizer report fails the test that triggered it.
  set(ENV{TSAN_OPTIONS} "halt_on_error=1:second_deadlock_stack=1")
  set(ENV{ASAN_OPTIONS} "halt_on_error=1:detect_leaks=1")
  set(ENV{UBSAN_OPTIONS} "halt_on_error=1:print_stacktrace=1")
  # nodeps differs from normal only in the optional libnuma/liburing glue,
  # which no stress test touches: it runs everything but the stress label.
  set(ctest_args --output-on-failure)
  if(cfg STREQUAL "nodeps")
    list(APPEND ctest_args -LE stress)
  endif()
  execute_process(COMMAND ${CMAKE_CTEST_COMMAND} ${ctest_args}
                  WORKING_DIRECTORY "${bdir}" RESULT_VARIABLE rc)
  execute_process(COMMAND ${CMAKE_CTEST_COMMAND} -N WORKING_DIRECTORY "${bdir}"
                  OUTPUT_VARIABLE listing)
  if(cfg STREQUAL "nodeps")
    execute_process(COMMAND ${CMAKE_CTEST_COMMAND} -N -LE stress WORKING_DIRECTORY "${bdir}"
                    OUTPUT_VARIABLE listing)
  endif()
  string(REGEX MATCH "Total Tests: ([0-9]+)" _ "${listing}")
  set(n ${CMAKE_MATCH_1})
  # The exported symbol set may not depend on the configuration.
  execute_process(COMMAND nm -D --defined-only "${bdir}/libringmpsc.so"
                  OUTPUT_VARIABLE syms)
  string(REGEX MATCHALL "rmpsc_[a-z0-9_]+" syms "${syms}")
  list(SORT syms)
  if(DEFINED first_syms AND NOT syms STREQUAL first_syms)
    message(STATUS "==== ${cfg}: exports differ from ${first_cfg}")
    set(rc 1)
  elseif(NOT DEFINED first_syms)
    set(first_syms "${syms}")
    set(first_cfg ${cfg})
  endif()
  if(rc)
    message(STATUS "==== ${cfg}: FAILED")
    math(EXPR total_fail "${total_fail} + 1")
  else()
    math(EXPR total_pass "${total_pass} + ${n}")
  endif()
endforeach()
message(STATUS "==== configs run: ${configs}")
if(total_fail)
  message(FATAL_ERROR "${total_fail} test configuration(s) failed")
endif()
message("suite: ${total_pass} passed, 0 failed")
