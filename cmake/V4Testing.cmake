# v4_add_test(NAME SOURCES ... LIBS ... [LABELS unit|sandbox|slow|cuda ...] [TIMEOUT s]
#             [COST n])
# One GoogleTest binary; every test case becomes a CTest test carrying the labels
# (default label: unit). Tests run with the repository root as working directory so they
# can find tests/goldens and other checked-in data. COST (default 0) orders the binary's tests
# on a run without timing data (CI's clean checkout): higher starts first. A binary holding a
# test of 30 s or more takes one, so its long test does not start last and run on alone.
include(GoogleTest)

function(v4_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT;COST" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  if(NOT ARG_COST)
    set(ARG_COST 0)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  # The unit_tests target builds only these (the sanitizer stage of scripts/test.sh runs only
  # the unit label, so it need not build the sandbox and slow binaries).
  if("unit" IN_LIST ARG_LABELS)
    set_property(GLOBAL APPEND PROPERTY V4_UNIT_TEST_TARGETS ${name})
  endif()
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gtest_main Threads::Threads)
  target_include_directories(${name} PRIVATE ${V4_ROOT})
  target_compile_definitions(${name} PRIVATE V4_SOURCE_DIR="${V4_ROOT}"
                                             V4_BINARY_DIR="${CMAKE_BINARY_DIR}")
  v4_use_pch(${name} test)
  gtest_discover_tests(${name}
    WORKING_DIRECTORY ${V4_ROOT}
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT} COST ${ARG_COST}
    DISCOVERY_MODE PRE_TEST
    DISCOVERY_TIMEOUT 60)
endfunction()
