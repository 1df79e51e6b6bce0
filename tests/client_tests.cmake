# Client tests: the client library's pieces that need no server, and
# ChatClient / ChatRepl / LoadGenerator against an in-process fake
# ChatService. rwkv_chat_e2e runs rwkv-chat against a real rwkv-server.
rwkv_test(client_units_test
  SOURCES client/client_units_test.cc
  LIBS rwkv_client rwkv_chat_flags rwkv_load_flags
  LABELS fast)

rwkv_test(chat_client_test
  SOURCES client/chat_client_test.cc
  LIBS rwkv_client
  LABELS fast)

if(TARGET rwkv-server AND NOT RWKV_SANITIZE)
  add_test(NAME rwkv_chat_e2e
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/client/rwkv_chat_e2e.sh
            $<TARGET_FILE:rwkv-server> $<TARGET_FILE:rwkv-chat>
            $<TARGET_FILE:rwkv-load>)
  set_tests_properties(rwkv_chat_e2e PROPERTIES LABELS engine
    ENVIRONMENT "OMP_NUM_THREADS=1"
    TIMEOUT 300)
endif()
