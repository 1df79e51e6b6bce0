# rwkv-train (tools/train/): WKV autograd op, corpus, training module vs the
# engine, tiny training run, exact resume, state tuning output.
rwkv_test(train_test
  SOURCES train/wkv4_op_test.cc train/train_test.cc
  LIBS rwkv_train rwkv_engine
  LABELS engine)
target_compile_definitions(train_test PRIVATE
  RWKV_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

# The demo model with int8 / bf16 weights: greedy replies, bits per byte on
# held-out dialogues, quantized file == quantize at load.
rwkv_test(demo_quantized_test
  SOURCES train/demo_quantized_test.cc
  LIBS rwkv_train rwkv_engine rwkv_bits_per_byte rwkv_tokenizer
  LABELS engine)
target_compile_definitions(demo_quantized_test PRIVATE
  RWKV_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
