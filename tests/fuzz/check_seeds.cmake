# fuzz_seeds_up_to_date: regenerates the seed corpus into OUT and compares it
# with the committed one (COMMITTED), file by file.
file(REMOVE_RECURSE ${OUT})
execute_process(COMMAND ${GENERATOR} ${OUT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "make_fuzz_seeds failed (${rc})")
endif()
file(GLOB_RECURSE generated RELATIVE ${OUT} ${OUT}/*)
file(GLOB_RECURSE committed RELATIVE ${COMMITTED} ${COMMITTED}/*)
list(SORT generated)
list(SORT committed)
if(NOT generated STREQUAL committed)
  message(FATAL_ERROR "tests/fuzz/corpus lists ${committed}, the generator "
    "writes ${generated}: regenerate with make_fuzz_seeds tests/fuzz/corpus")
endif()
foreach(f IN LISTS generated)
  file(SHA256 ${OUT}/${f} a)
  file(SHA256 ${COMMITTED}/${f} b)
  if(NOT a STREQUAL b)
    message(FATAL_ERROR "tests/fuzz/corpus/${f} differs from what "
      "make_fuzz_seeds writes: regenerate with make_fuzz_seeds tests/fuzz/corpus")
  endif()
endforeach()
message(STATUS "${CMAKE_CURRENT_LIST_DIR}: ${OUT} matches the committed corpus")
