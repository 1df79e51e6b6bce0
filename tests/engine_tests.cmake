# Engine tests: they run LibTorch models, so they are labelled "engine" and
# run with one compute thread (OMP_NUM_THREADS=1 and EngineOptions threads).
rwkv_test(rwkv_engine_test
  SOURCES engine/rwkv_engine_test.cc engine/rwkv_parity_test.cc
  LIBS rwkv_engine rwkv_checkpoint nlohmann_json::nlohmann_json
  LABELS engine)

rwkv_test(state_toolkit_test
  SOURCES engine/state_toolkit_test.cc
  LIBS rwkv_engine rwkv_checkpoint nlohmann_json::nlohmann_json
  LABELS engine)

rwkv_test(prefix_cache_test
  SOURCES engine/prefix_cache_test.cc
  LIBS rwkv_engine
  LABELS engine)

rwkv_test(rwkv7_parity_test
  SOURCES engine/rwkv7_parity_test.cc
  LIBS rwkv_engine rwkv_checkpoint nlohmann_json::nlohmann_json
  LABELS engine)

# State uploads: size limit before parsing, health check, non-finite logits.
rwkv_test(state_upload_test
  SOURCES engine/state_upload_test.cc
  LIBS rwkv_engine rwkv_checkpoint rwkv_hostile_files rwkv_allocation_counter
  LABELS engine)

# The engine on CUDA vs the CPU engine (fp32, fp16, bf16; RWKV-4 and RWKV-7).
# Skips without a CUDA device; tools/cuda_check.sh runs it on a GPU machine.
rwkv_test(cuda_parity_test
  SOURCES engine/cuda_parity_test.cc
  LIBS rwkv_engine rwkv_checkpoint nlohmann_json::nlohmann_json
  LABELS engine)

rwkv_test(fused_forward_test
  SOURCES engine/fused_forward_test.cc
  LIBS rwkv_engine
  LABELS engine)

# The same suites on the portable path (RWKV_NO_AVX512=1: row-major weights,
# portable/AVX2 kernels and the one-lane build of the fused forward), as on
# a CPU without AVX-512: parity with the references and the bit-identical
# modes must hold there too.
foreach(t fused_forward_test rwkv_engine_test rwkv7_parity_test)
  gtest_discover_tests(${t} TEST_PREFIX "no_avx512/" DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "engine"
    ENVIRONMENT "OMP_NUM_THREADS=1;RWKV_NO_AVX512=1")
endforeach()
