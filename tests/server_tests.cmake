# Server tests (unit and end to end over loopback gRPC). They create states
# with a small random-weight engine, so they are labelled "engine".
rwkv_test(state_manager_test
  SOURCES server/state_manager_test.cc server/stop_matcher_test.cc
          server/status_util_test.cc
  LIBS rwkv_server
  LABELS engine)

rwkv_test(server_e2e_test
  SOURCES server/server_e2e_test.cc
  LIBS rwkv_server
  LABELS engine)

if(NOT RWKV_SANITIZE)
  add_test(NAME rwkv_server_cli_test
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/server/rwkv_server_cli_test.sh
            $<TARGET_FILE:rwkv-server>)
  set_tests_properties(rwkv_server_cli_test PROPERTIES LABELS engine
    ENVIRONMENT "OMP_NUM_THREADS=1" TIMEOUT 300)
endif()

# Issue 6's promise through the real server: the demo model remembers a name
# across two separate Chat calls (skips without models/demo/).
rwkv_test(demo_memory_e2e_test
  SOURCES server/demo_memory_e2e_test.cc
  LIBS rwkv_server rwkv_train
  LABELS engine)
target_compile_definitions(demo_memory_e2e_test PRIVATE
  RWKV_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
