# rwkv_engine: the LibTorch part of engine/. Torch is linked PRIVATE and its
# headers appear only in engine/internal/ and .cc files, so server/ and
# client/ never compile against them.
add_library(rwkv_engine STATIC
  engine.cc
  logits.cc
  model_config.cc
  prefix_cache.cc
  prefix_forward.cc
  quantize_checkpoint.cc
  state.cc
  rwkv_engine.cc
  state_file.cc
  state_inspect.cc
  state_ops.cc
  internal/linear_layer.cc
  internal/model_fingerprint.cc
  internal/rwkv_model.cc
  internal/rwkv4_model.cc
  internal/rwkv7_model.cc
  internal/weights_loader.cc
  internal/wkv4_cpu.cc
)
target_include_directories(rwkv_engine PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(rwkv_engine
  PUBLIC rwkv_checkpoint absl::status absl::statusor absl::span
         absl::synchronization absl::flat_hash_map absl::function_ref
  PRIVATE ${TORCH_LIBRARIES} rwkv_kernels OpenMP::OpenMP_CXX absl::strings
          absl::cord)
target_compile_options(rwkv_engine PRIVATE -Wno-deprecated-declarations)
# libFuzzer coverage for the state file parser (sanitizer build; see
# engine/CMakeLists.txt for the other parsers).
if(RWKV_FUZZ_INSTRUMENT)
  set_source_files_properties(state_file.cc PROPERTIES
    COMPILE_OPTIONS "${RWKV_FUZZ_INSTRUMENT}")
endif()
