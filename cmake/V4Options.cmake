# Compiler flags shared by every target: warnings, CPU features, sanitizers.

add_compile_options(-Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)
# No silent a*b+c -> fma contraction: gcc and clang default differently, and the engine's
# bit-exactness tests (SIMD kernels == scalar oracles, chunked == one-shot prefill) rely on one
# rounding order everywhere.
add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-ffp-contract=off>)
if(V4_NATIVE)
  include(CheckCXXCompilerFlag)
  check_cxx_compiler_flag(-march=native V4_HAS_MARCH_NATIVE)
  if(V4_HAS_MARCH_NATIVE)
    add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-march=native>)
  endif()
endif()

if(V4_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
  add_compile_definitions(V4_SANITIZE_BUILD=1)
endif()

# Every module library gets the repository root on its include path, so includes read
# "engine/checkpoint/safetensors.h" and the include-rule test can check them by folder.
set(V4_ROOT ${CMAKE_SOURCE_DIR})

# v4_add_module(NAME SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# Defines library target v4_<NAME>. Only module libraries named in PUBLIC_DEPS are visible to
# users of this module; third-party libraries belong in PRIVATE_DEPS (the adapter rule).
function(v4_add_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(v4_${name} STATIC ${ARG_SOURCES})
  target_include_directories(v4_${name} PUBLIC ${V4_ROOT})
  target_link_libraries(v4_${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  v4_use_pch(v4_${name} module)
endfunction()

# Fuzz builds instrument every library for coverage so libFuzzer can steer into module code;
# only the fuzz_* executables link the libFuzzer driver (fuzz/CMakeLists.txt).
if(V4_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# v4_existing_module_libs(OUT): every module library defined so far, in dependency order.
# The executables that may use any module (apps, bench, fuzz) link this list.
function(v4_existing_module_libs out)
  set(libs v4_common)
  foreach(m engine dsml sandbox policies tools agent batch pipeline server)
    if(TARGET v4_${m})
      list(APPEND libs v4_${m})
    endif()
  endforeach()
  set(${out} ${libs} PARENT_SCOPE)
endfunction()
