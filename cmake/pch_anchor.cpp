// The one source file of the v4_pch_* targets (cmake/V4Pch.cmake): they exist to compile the
// shared precompiled headers, which CMake builds only for a target with a source to compile.
