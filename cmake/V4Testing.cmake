# v4_add_test(NAME SOURCES ... LIBS ... [LABELS unit|sandbox|slow|cuda ...] [TIMEOUT s])
# One GoogleTest binary; every test case becomes a CTest test carrying the labels
# (default label: unit). Tests run with the repository root as working directory so they
# can find tests/goldens and other checked-in data.
include(GoogleTest)

function(v4_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
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
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
    DISCOVERY_MODE PRE_TEST
    DISCOVERY_TIMEOUT 60)
endfunction()
