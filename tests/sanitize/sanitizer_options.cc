// Default options of the sanitizer runtimes for every program of the
// sanitizer build (tests/sanitize/sanitize.cmake links this in), so that the
// tests, gtest discovery and the fuzzers behave the same whether or not the
// environment sets ASAN_OPTIONS (the environment still overrides these).
//
// Leak suppressions: only allocations made inside the uninstrumented
// libraries listed below, which keep per-thread or per-process caches alive
// until exit by design (LibTorch's thread pools and allocator caches, the
// OpenMP runtimes' thread teams, OpenBLAS buffers; c-ares, gRPC's DNS
// resolver, left 10 bytes from a channel to "localhost" that gRPC's resolver
// still held at exit in security_process_test's TLS name checks). A leak whose allocation
// stack passes through our code is still reported unless the frame that
// allocates is inside one of these libraries.

extern "C" {

// detect_leaks: LeakSanitizer at exit. detect_odr_violation=0: LibTorch and
// the gRPC/protobuf libraries are uninstrumented shared libraries that
// define a few identical globals; ODR checks only make sense for code we
// build. strict_string_checks: catch reads past a string's end.
const char* __asan_default_options() {
  return "detect_leaks=1:detect_odr_violation=0:strict_string_checks=1:"
         "detect_stack_use_after_return=1:check_initialization_order=1:"
         "abort_on_error=0:print_summary=1";
}

const char* __ubsan_default_options() {
  return "print_stacktrace=1:halt_on_error=1";
}

const char* __lsan_default_suppressions() {
  return "leak:libtorch_cpu.so\n"
         "leak:libc10.so\n"
         "leak:libgomp.so\n"
         "leak:libomp.so\n"
         "leak:libopenblas\n"
         "leak:libdnnl.so\n"
         "leak:libcares.so\n";
}

}  // extern "C"
