# Server tests (unit and end to end over loopback gRPC). They create states
# with a small random-weight engine, so they are labelled "engine".
rwkv_test(state_manager_test
  SOURCES server/stop_matcher_test.cc server/status_util_test.cc
  LIBS rwkv_server
  LABELS fast)

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

# Flags from a config file and RWKV_* variables, their precedence, --help
# defaults and --log-format json, on the real program.
if(NOT RWKV_SANITIZE)
  add_test(NAME rwkv_server_flags_test
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/server/rwkv_server_flags_test.sh
            $<TARGET_FILE:rwkv-server>)
  set_tests_properties(rwkv_server_flags_test PROPERTIES LABELS engine
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

# Fast unit tests of the server's layers on the FakeEngine (no real model).
add_library(rwkv_fake_engine STATIC testing/fake_engine.cc)
target_include_directories(rwkv_fake_engine PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(rwkv_fake_engine PUBLIC rwkv_engine absl::synchronization
  PRIVATE ${TORCH_LIBRARIES})
target_compile_options(rwkv_fake_engine PRIVATE -Wno-deprecated-declarations)

rwkv_test(server_layers_test
  SOURCES server/batch_planner_test.cc server/turn_runner_test.cc
          server/scheduler_test.cc server/session_manager_test.cc
          server/chat_app_test.cc server/detached_turn_test.cc
          server/conversation_renderer_test.cc
          server/metered_turn_stream_test.cc
  LIBS rwkv_server_app rwkv_fake_engine
  LABELS fast)

# API keys, tenants and quotas through gRPC (FakeEngine, in-process server).
rwkv_test(tenant_e2e_test
  SOURCES server/tenant_e2e_test.cc server/api_key_table_test.cc
  LIBS rwkv_server rwkv_fake_engine rwkv_client gRPC::grpc++
  LABELS fast)

rwkv_test(server_defects_e2e_test
  SOURCES server/server_defects_e2e_test.cc
  LIBS rwkv_server rwkv_fake_engine
  LABELS fast)

# Issue 15 through the real server: hostile and unhealthy state uploads,
# non-finite turns (random RWKV-4 engine over loopback gRPC).
rwkv_test(state_upload_e2e_test
  SOURCES server/state_upload_e2e_test.cc
  LIBS rwkv_server rwkv_hostile_files
  LABELS engine)

# The HTTP front: fast unit tests of its parts, the front end to end over
# the FakeEngine (real HTTP on loopback), and real clients (curl, promtool,
# the openai npm package, puppeteer-core + Chromium) against rwkv-server.
rwkv_test(http_units_test
  SOURCES http/json_body_parser_test.cc http/openai_request_test.cc
          http/reply_format_test.cc
  LIBS rwkv_server_http
  LABELS fast)

rwkv_test(http_e2e_test
  SOURCES http/http_e2e_test.cc
  LIBS rwkv_server rwkv_fake_engine rwkv_client
  LABELS fast)

# API keys, tenants and quotas on the HTTP front (FakeEngine, loopback).
rwkv_test(http_tenant_e2e_test
  SOURCES http/http_tenant_e2e_test.cc
  LIBS rwkv_server rwkv_fake_engine
  LABELS fast)

# Real clients against rwkv-server (the committed demo model, one thread):
# curl -N and promtool; the openai npm package; Chromium via puppeteer-core
# (its screenshot: build/http_page_test.png). setup.sh installs them all.
if(NOT RWKV_SANITIZE)
  set(RWKV_WITH_SERVER ${CMAKE_CURRENT_SOURCE_DIR}/http/with_server.sh
      $<TARGET_FILE:rwkv-server> --)
  add_test(NAME http_curl_promtool_test
    COMMAND ${RWKV_WITH_SERVER} ${CMAKE_CURRENT_SOURCE_DIR}/http/curl_promtool_test.sh)
  add_test(NAME http_openai_sdk_test
    COMMAND ${RWKV_WITH_SERVER} ${CMAKE_CURRENT_SOURCE_DIR}/http/node_test.sh
            openai_sdk_test.mjs)
  add_test(NAME http_page_test
    COMMAND ${RWKV_WITH_SERVER} ${CMAKE_CURRENT_SOURCE_DIR}/http/node_test.sh
            page_test.mjs ${CMAKE_BINARY_DIR}/http_page_test.png)
  set_tests_properties(http_curl_promtool_test http_openai_sdk_test http_page_test
    PROPERTIES LABELS engine ENVIRONMENT "OMP_NUM_THREADS=1" TIMEOUT 300)
endif()

# The durable session store on a real RocksDB (temp directories).
find_path(ROCKSDB_TEST_INCLUDE_DIR rocksdb/db.h REQUIRED)
rwkv_test(rocksdb_store_test
  SOURCES server/rocksdb_store_test.cc
  LIBS rwkv_server_session rwkv_fake_engine ${ROCKSDB_LIBRARY}
  LABELS fast)
target_include_directories(rocksdb_store_test PRIVATE ${ROCKSDB_TEST_INCLUDE_DIR})

# kill -9 under load, 20 times: no acknowledged change is lost (RocksDB store).
add_library(rwkv_server_process STATIC testing/server_process.cc)
target_include_directories(rwkv_server_process PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(rwkv_server_process PUBLIC absl::status absl::time
  absl::strings)
rwkv_test(crash_recovery_test
  SOURCES server/crash_recovery_test.cc
  LIBS rwkv_server_process rwkv_proto rwkv_engine gRPC::grpc++
  LABELS engine)
target_compile_definitions(crash_recovery_test PRIVATE
  RWKV_SERVER_BIN="$<TARGET_FILE:rwkv-server>")
add_dependencies(crash_recovery_test rwkv-server)

# TLS/mTLS handshakes (certificates made by openssl at test time), SIGHUP key
# reloads and the SIGTERM race, on rwkv-server child processes.
rwkv_test(security_process_test
  SOURCES server/security_process_test.cc
  LIBS rwkv_server_process rwkv_server_auth rwkv_client gRPC::grpc++
  LABELS engine)
target_compile_definitions(security_process_test PRIVATE
  RWKV_SERVER_BIN="$<TARGET_FILE:rwkv-server>")
add_dependencies(security_process_test rwkv-server)

# Real redis-server and haproxy children for the replica tests (by pid, on
# free loopback ports, data in temp directories).
add_library(rwkv_test_processes STATIC testing/child_process.cc
  testing/haproxy_process.cc testing/redis_process.cc)
target_include_directories(rwkv_test_processes PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(rwkv_test_processes PUBLIC absl::status absl::time
  absl::strings)

# The Redis session store against a real redis-server, alone and under two
# SessionManagers acting as replicas.
rwkv_test(redis_store_test
  SOURCES server/redis_store_test.cc
  LIBS rwkv_server_session rwkv_fake_engine rwkv_test_processes
  LABELS fast)

# Replicas sharing sessions through a real redis-server behind a real haproxy
# (docker/haproxy.cfg): alternating turns, concurrency, races, kill -9 of a
# replica and of Redis, Redis down, affinity.
rwkv_test(replicas_e2e_test
  SOURCES server/replicas_e2e_test.cc
  LIBS rwkv_client rwkv_server_session rwkv_server_process rwkv_test_processes
       rwkv_train rwkv_engine
  LABELS engine)
target_compile_definitions(replicas_e2e_test PRIVATE
  RWKV_SERVER_BIN="$<TARGET_FILE:rwkv-server>"
  RWKV_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(replicas_e2e_test rwkv-server)

# replica-bench: the figures of README "Running several replicas" (a program,
# run by hand); ctest runs a quick smoke pass so it keeps working.
add_executable(replica-bench bench/replica_bench.cc)
target_link_libraries(replica-bench PRIVATE rwkv_client rwkv_server_session
  rwkv_server_process rwkv_test_processes rwkv_flags rwkv_engine)
target_include_directories(replica-bench PRIVATE ${PROJECT_SOURCE_DIR})
target_compile_definitions(replica-bench PRIVATE
  RWKV_SERVER_BIN="$<TARGET_FILE:rwkv-server>"
  RWKV_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(replica-bench rwkv-server)
if(NOT RWKV_SANITIZE)
  add_test(NAME replica_bench_smoke
    COMMAND replica-bench --quick --streams 4 --seconds 1)
  set_tests_properties(replica_bench_smoke PROPERTIES LABELS engine
    ENVIRONMENT "OMP_NUM_THREADS=1" TIMEOUT 300)
endif()

# store-bench: the durable store's throughput, latency, restart and bytes
# figures through real rwkv-server processes (a program, not a test).
add_executable(store-bench bench/store_bench.cc)
target_link_libraries(store-bench PRIVATE rwkv_server_process rwkv_client
  rwkv_proto gRPC::grpc++ nlohmann_json::nlohmann_json absl::strings
  absl::time)
target_include_directories(store-bench PRIVATE ${PROJECT_SOURCE_DIR})
add_dependencies(store-bench rwkv-server)
