# Which unit tests the sanitizer build runs (rwkv_sanitize_filter, used by
# rwkv_test in tests/CMakeLists.txt). Every test binary is built there (so
# -Wthread-safety checks all code); this chooses the gtest filter each binary
# runs under ASan + UBSan: "*" = all, "-" = none, else a gtest filter.
function(rwkv_sanitize_filter name out)
  set(filter "*")
  set(${out} "${filter}" PARENT_SCOPE)
endfunction()
