# RWKV_SANITIZE=ON: the sanitizer build CI runs next to the Release build
# (setup.sh configures it in build/sanitize with clang-16). Every target is
# compiled with AddressSanitizer + UndefinedBehaviorSanitizer (any report
# aborts the program) and, being a clang build, with -Wthread-safety
# -Werror=thread-safety (top-level CMakeLists.txt). tests/CMakeLists.txt then
# registers the unit tests as "asan.*" and the fuzz runs as "fuzz.*".
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "RWKV_SANITIZE=ON needs clang: configure with "
                      "-DCMAKE_CXX_COMPILER=clang++-16")
endif()

add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                    -fno-omit-frame-pointer -gline-tables-only)
add_link_options(-fsanitize=address,undefined)

# Sanitizer runtime defaults and the (narrow, documented) leak suppressions
# for uninstrumented LibTorch / OpenMP, linked into every program of this
# build (link_libraries applies to the targets defined after this point).
# An OBJECT library, so the object is always in the link: from a static
# archive the linker never took it, because the sanitizer runtime already
# defines these hooks (weakly), and the options silently did not apply.
add_library(rwkv_sanitizer_options OBJECT
  ${PROJECT_SOURCE_DIR}/tests/sanitize/sanitizer_options.cc)
link_libraries(rwkv_sanitizer_options)

# The fuzz targets' libraries carry libFuzzer's coverage instrumentation
# (engine/CMakeLists.txt adds it to the parsers only, so that the engine's
# kernels, which the sanitizer unit tests run, stay fast).
set(RWKV_FUZZ_INSTRUMENT -fsanitize=fuzzer-no-link)
