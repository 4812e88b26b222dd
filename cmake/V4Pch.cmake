# Precompiled headers shared by every module library and every test binary.
#
# Most sources include nlohmann::json through common/json.h, about 2 s of parsing each at -O2
# (`g++ -std=c++20 -O2 -I. -c` of a file holding only that include: 2.7 s, against 0.7 s for
# status.h and two standard headers), and a clean build is most of a CI run. Measured by
# `bash .ci/run` on a clean clone: the clang ASan build 10.2 -> 8.0 min, the gcc build
# unchanged within noise. One header set per kind of target is compiled once (v4_pch_module,
# v4_pch_test) and reused by all targets of that kind; the flags are global (V4Options.cmake),
# so the reuse is valid for gcc and clang alike. The headers stay ordinary includes in every
# source file: a build with -DCMAKE_DISABLE_PRECOMPILE_HEADERS=ON (or -DV4_PCH=OFF) still
# compiles, which is how a missing include is caught.
option(V4_PCH "Share precompiled headers across module libraries and test binaries" ON)

set(_v4_pch_std
    <algorithm> <array> <atomic> <chrono> <cstddef> <cstdint> <cstring> <filesystem>
    <functional> <map> <memory> <mutex> <optional> <span> <string> <string_view>
    <unordered_map> <utility> <vector>)

# v4_define_pch_targets(): call once, after GTest and nlohmann_json are found.
function(v4_define_pch_targets)
  if(NOT V4_PCH OR TARGET v4_pch_module)
    return()
  endif()
  add_library(v4_pch_module STATIC ${V4_ROOT}/cmake/pch_anchor.cpp)
  target_include_directories(v4_pch_module PRIVATE ${V4_ROOT})
  target_link_libraries(v4_pch_module PRIVATE nlohmann_json::nlohmann_json)
  target_precompile_headers(v4_pch_module PRIVATE ${_v4_pch_std} "${V4_ROOT}/common/status.h"
                            "${V4_ROOT}/common/json.h")

  add_library(v4_pch_test STATIC ${V4_ROOT}/cmake/pch_anchor.cpp)
  target_include_directories(v4_pch_test PRIVATE ${V4_ROOT})
  target_link_libraries(v4_pch_test PRIVATE nlohmann_json::nlohmann_json GTest::gtest)
  target_compile_definitions(v4_pch_test PRIVATE V4_SOURCE_DIR="${V4_ROOT}"
                                                 V4_BINARY_DIR="${CMAKE_BINARY_DIR}")
  target_precompile_headers(v4_pch_test PRIVATE ${_v4_pch_std} <gtest/gtest.h>
                            "${V4_ROOT}/common/status.h" "${V4_ROOT}/common/json.h")
endfunction()

# v4_use_pch(TARGET KIND): KIND is module or test.
function(v4_use_pch target kind)
  if(TARGET v4_pch_${kind})
    target_precompile_headers(${target} REUSE_FROM v4_pch_${kind})
  endif()
endfunction()
