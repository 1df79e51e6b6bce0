// The HTTP front end to end: real HTTP on loopback (cpp-httplib's client)
// against an RwkvServer that runs the FakeEngine, so timing can be
// controlled (a slow engine makes "during a turn" certain). Covers the SSE
// and JSON formats, every error class with its HTTP code and named field,
// client disconnects (rolled back), the Responses API chain, sessions over
// HTTP, metrics from both fronts, readiness and shutdown, and the page.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client/http_load_target.h"
#include "client/load_generator.h"
#include "engine/state_file.h"
#include "engine/tokenizer.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "rwkv/v1/chat.grpc.pb.h"
#include "server/rwkv_server.h"
#include "tests/testing/fake_engine.h"

namespace rwkv::server {
namespace {

namespace pb = ::rwkv::v1;
using json = nlohmann::json;
using ::rwkv::testing::FakeEngine;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// The data payloads of an SSE body, in order.
std::vector<std::string> SseData(const std::string& body) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (absl::StartsWith(line, "data: ")) out.emplace_back(line.substr(6));
  }
  return out;
}

json Chat(const std::string& content, int max_tokens, bool stream = false) {
  return {{"model", "fake"},
          {"messages", {{{"role", "user"}, {"content", content}}}},
          {"temperature", 0},
          {"max_tokens", max_tokens},
          {"stream", stream}};
}

class HttpE2eTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(Options()); }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(5));
  }

  static ServerOptions Options() {
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.http.listen = "127.0.0.1:0";
    o.http.max_body_bytes = 64 << 10;
    o.http.model_name = "fake";
    o.store = "memory";
    o.sessions.sweep_interval = absl::Hours(1);
    o.scheduler.chunk_size = 4;
    return o;
  }
  void Start(ServerOptions o) {
    auto engine = std::make_unique<FakeEngine>();
    engine_ = engine.get();
    auto server = RwkvServer::Start(std::move(engine),
                                    *engine::Tokenizer::Load("bytes"), o);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  std::unique_ptr<httplib::Client> Client() const {
    auto c =
        std::make_unique<httplib::Client>("127.0.0.1", server_->http_port());
    c->set_read_timeout(30, 0);
    return c;
  }
  httplib::Result Post(const std::string& path, const std::string& body,
                       const httplib::Headers& headers = {}) const {
    return Client()->Post(path.c_str(), headers, body, "application/json");
  }
  httplib::Result Get(const std::string& path) const {
    return Client()->Get(path.c_str());
  }
  // Each engine call takes `ms` milliseconds.
  void SlowDown(int ms) {
    engine_->set_before_call([ms] { absl::SleepFor(absl::Milliseconds(ms)); });
  }
  SessionInfo Session(const std::string& id) {
    absl::StatusOr<SessionInfo> info =
        server_->app().GetSession(Caller::Anonymous(), id);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? *info : SessionInfo();
  }
  // Waits until the session's turn has ended (committed or rolled back).
  SessionInfo IdleSession(const std::string& id) {
    for (int i = 0; i < 3000 && Session(id).busy; ++i) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    return Session(id);
  }
  std::string Metrics() { return Get("/metrics")->body; }
  // Sends `request` in one write on a new connection and returns all the
  // server sends back until it closes.
  std::string RawExchange(const std::string& request) const {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(server_->http_port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string out;
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        write(fd, request.data(), request.size()) ==
            static_cast<ssize_t>(request.size())) {
      char buf[4096];
      for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) out.append(buf, n);
    }
    close(fd);
    return out;
  }

  FakeEngine* engine_ = nullptr;
  std::unique_ptr<RwkvServer> server_;
};

TEST_F(HttpE2eTest, StreamedChatIsOpenAIsServerSentEvents) {
  json req = Chat("Hello", 6, /*stream=*/true);
  req["stream_options"] = {{"include_usage", true}};
  httplib::Result res = Post("/v1/chat/completions", req.dump());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->get_header_value("Content-Type"),
              StartsWith("text/event-stream"));
  std::vector<std::string> data = SseData(res->body);
  ASSERT_GE(data.size(), 4u);
  EXPECT_EQ(data.back(), "[DONE]");
  json first = json::parse(data.front());
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  json usage = json::parse(data[data.size() - 2]);
  EXPECT_EQ(usage["choices"], json::array());
  const std::string prompt = "User: Hello\n\nAssistant:";
  EXPECT_EQ(usage["usage"]["prompt_tokens"], prompt.size());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 6);
  json finish = json::parse(data[data.size() - 3]);
  EXPECT_EQ(finish["choices"][0]["finish_reason"], "length");
  std::string streamed;
  for (size_t i = 1; i + 3 < data.size(); ++i) {
    streamed += json::parse(data[i])["choices"][0]["delta"]["content"]
                    .get<std::string>();
  }
  // The same request without streaming gives the same greedy reply.
  httplib::Result whole = Post("/v1/chat/completions", Chat("Hello", 6).dump());
  ASSERT_TRUE(whole);
  ASSERT_EQ(whole->status, 200) << whole->body;
  json body = json::parse(whole->body);
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["model"], "fake");
  EXPECT_EQ(body["choices"][0]["message"]["content"], streamed);
  EXPECT_EQ(body["usage"]["total_tokens"], prompt.size() + 6);
}

TEST_F(HttpE2eTest, ABurstOfConnectionsIsServed) {
  // httplib 0.11 listens with a backlog of 5; the server raises it, so 64
  // clients connecting at once are all served.
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 64; ++i) {
    clients.emplace_back([&] {
      httplib::Result r = Post("/v1/chat/completions", Chat("Hi", 2).dump());
      if (r && r->status == 200) ++ok;
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(ok.load(), 64);
}

TEST_F(HttpE2eTest, BadRequestsAre400NamingTheField) {
  struct Case {
    std::string body;
    std::string message;
    std::string param;  // "" = null
  };
  const std::string big(70 << 10, 'x');
  const std::vector<Case> cases = {
      {"{", "not valid JSON at byte offset 1", ""},
      {"[1]", "must be a JSON object, got an array", ""},
      {R"({"messages": "hi"})", "messages must be an array of messages",
       "messages"},
      {R"({"messages": []})", "messages is empty", "messages"},
      {R"({"model": "m"})", "messages is missing", "messages"},
      {R"({"messages": [{"role": "user", "content": ""}]})",
       "messages[0].content is empty", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"})",
       "temperature must be a number, got a string", "temperature"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stream": 1})",
       "stream must be a boolean", "stream"},
      {"{\"messages\": [{\"role\": \"user\", \"content\": \"\xc3\x28\"}]}",
       "(in messages[0].content)", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": "x"}], "n": 2})",
       "n is not supported: one choice per request", "n"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tools": [{}]})",
       "tools is not supported: this server has no tool calling", "tools"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logprobs": true})",
       "logprobs is not supported", "logprobs"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 99999})",
       "max_tokens must be at most 4096", "max_tokens"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stop": [1]})",
       "stop[0] must be a string", "stop[0]"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stream": true,
           "stream_options": {"include_usage": "yes"}})",
       "stream_options.include_usage must be a boolean",
       "stream_options.include_usage"},
      {std::string(40, '[') + std::string(40, ']'), "nested deeper than 32",
       ""},
      {"{\"messages\": \"" + big + "\"}", "larger than the limit of 65536", ""},
  };
  for (const Case& c : cases) {
    httplib::Result res = Post("/v1/chat/completions", c.body);
    ASSERT_TRUE(res) << c.message;
    EXPECT_EQ(res->status, 400) << c.message << ": " << res->body;
    json e = json::parse(res->body)["error"];
    EXPECT_THAT(e["message"].get<std::string>(), HasSubstr(c.message));
    EXPECT_EQ(e["type"], "invalid_request_error");
    EXPECT_EQ(e["code"], "invalid_argument");
    if (c.param.empty()) {
      EXPECT_TRUE(e["param"].is_null()) << c.message;
    } else {
      EXPECT_EQ(e["param"], c.param);
    }
  }
}

TEST_F(HttpE2eTest, BodiesOfUnboundedSizeAreRefusedBeforeReading) {
  // Chunked: httplib would read it whole, past --http-max-body-bytes; the
  // server wants a Content-Length (411). Sent in one write on a raw socket
  // that asks to close after the answer, so the server has it all before it
  // answers (a client still writing a big body when the connection closes
  // sees it reset).
  const std::string body = Chat("Hi", 2).dump();
  const std::string answer = RawExchange(absl::StrCat(
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
      "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n",
      absl::Hex(body.size()), "\r\n", body, "\r\n0\r\n\r\n"));
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 411 "));
  const json e =
      json::parse(answer.substr(answer.find("\r\n\r\n") + 4))["error"];
  EXPECT_THAT(e["message"].get<std::string>(),
              HasSubstr("must come with a Content-Length"));
  EXPECT_EQ(e["type"], "invalid_request_error");
  // Compressed: httplib would decompress it whole (415).
  httplib::Result gzip = Post("/v1/chat/completions", Chat("Hi", 2).dump(),
                              {{"Content-Encoding", "gzip"}});
  ASSERT_TRUE(gzip);
  EXPECT_EQ(gzip->status, 415);
  EXPECT_THAT(gzip->body,
              HasSubstr("Content-Encoding 'gzip' are not accepted"));
  EXPECT_EQ(engine_->tokens_fed(), 0);
  // Counted, and the server goes on serving.
  EXPECT_THAT(Metrics(),
              HasSubstr("rwkv_http_requests_total{code=\"411\",method=\"POST\","
                        "route=\"(refused)\"} 1"));
  EXPECT_EQ(Post("/v1/chat/completions", Chat("Hi", 2).dump())->status, 200);
}

TEST_F(HttpE2eTest, SessionErrorsAre404And409) {
  httplib::Result res = Post("/v1/chat/completions", Chat("Hi", 4).dump(),
                             {{"X-Session-Id", "nobody"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_THAT(res->body, HasSubstr("not found (unknown id)"));
  ASSERT_EQ(Post("/v1/sessions", R"({"session_id": "s"})")->status, 200);
  SlowDown(2);
  std::thread first([&] {
    Post("/v1/chat/completions", Chat("Hi", 300).dump(),
         {{"X-Session-Id", "s"}});
  });
  while (!Session("s").busy) absl::SleepFor(absl::Milliseconds(1));
  res = Post("/v1/chat/completions", Chat("Again", 4).dump(),
             {{"X-Session-Id", "s"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 409);
  EXPECT_EQ(json::parse(res->body)["error"]["code"], "failed_precondition");
  first.join();
}

TEST_F(HttpE2eTest, AFullQueueIs429WithRetryAfter) {
  server_->Shutdown(absl::Seconds(1));
  ServerOptions o = Options();
  o.scheduler.max_jobs = 1;
  Start(o);
  SlowDown(2);
  std::thread first(
      [&] { Post("/v1/chat/completions", Chat("Hi", 300).dump()); });
  while (server_->scheduler().stats().running +
             server_->scheduler().stats().waiting ==
         0) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  httplib::Result res = Post("/v1/chat/completions", Chat("Hi", 4).dump());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 429);
  EXPECT_EQ(res->get_header_value("Retry-After"), "1");
  EXPECT_EQ(json::parse(res->body)["error"]["type"], "rate_limit_error");
  first.join();
}

TEST_F(HttpE2eTest, AClientThatLeavesMidStreamRollsTheTurnBack) {
  ASSERT_EQ(
      Post("/v1/sessions", R"({"session_id": "s", "prefix": "Hi"})")->status,
      200);
  const int64_t before = Session("s").token_count;
  SlowDown(2);
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = Chat("Tell me everything", 4000, /*stream=*/true).dump();
  req.set_header("Content-Type", "application/json");
  req.set_header("X-Session-Id", "s");
  int chunks = 0;
  req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
    return ++chunks < 3;  // read a little, then hang up
  };
  httplib::Result res = Client()->send(req);
  EXPECT_GE(chunks, 3);
  const SessionInfo after = IdleSession("s");
  EXPECT_FALSE(after.busy);
  EXPECT_EQ(after.token_count, before);  // rolled back
  EXPECT_LT(engine_->tokens_fed(), 1000);
  EXPECT_THAT(Metrics(), HasSubstr("rwkv_turns_finished_total{front=\"http\","
                                   "reason=\"cancelled\"} 1"));
}

TEST_F(HttpE2eTest, AClientThatLeavesBeforeAWholeReplyStopsIt) {
  ASSERT_EQ(Post("/v1/sessions", R"({"session_id": "s"})")->status, 200);
  SlowDown(2);
  auto client = Client();
  client->set_read_timeout(0, 200000);  // gives up after 0.2 s
  httplib::Result res =
      client->Post("/v1/chat/completions", {{"X-Session-Id", "s"}},
                   Chat("Go on", 4000).dump(), "application/json");
  EXPECT_FALSE(res);
  client.reset();
  const SessionInfo after = IdleSession("s");
  EXPECT_EQ(after.token_count, 0);
  EXPECT_LT(engine_->tokens_fed(), 2000);
}

TEST_F(HttpE2eTest, ResponsesChainFromStoredStates) {
  httplib::Result r1 =
      Post("/v1/responses",
           R"({"model": "fake", "input": "Hello", "instructions": "Be brief.",
          "max_output_tokens": 5, "temperature": 0})");
  ASSERT_TRUE(r1);
  ASSERT_EQ(r1->status, 200) << r1->body;
  json first = json::parse(r1->body);
  const std::string id = first["id"];
  EXPECT_THAT(id, StartsWith("resp_"));
  EXPECT_EQ(first["object"], "response");
  EXPECT_EQ(first["output"][0]["content"][0]["type"], "output_text");
  // Stored: GET gives the same object.
  httplib::Result got = Get("/v1/responses/" + id);
  ASSERT_EQ(got->status, 200);
  EXPECT_EQ(json::parse(got->body), first);
  // Continuing costs only the new input: everything before is cached.
  json next = {{"input", "And then?"},
               {"previous_response_id", id},
               {"max_output_tokens", 3},
               {"temperature", 0}};
  httplib::Result r2 = Post("/v1/responses", next.dump());
  ASSERT_EQ(r2->status, 200) << r2->body;
  json second = json::parse(r2->body);
  const int64_t stored_tokens = first["usage"]["total_tokens"];
  EXPECT_EQ(second["usage"]["input_tokens_details"]["cached_tokens"],
            stored_tokens);
  EXPECT_EQ(
      second["usage"]["input_tokens"],
      stored_tokens + static_cast<int64_t>(
                          std::string("User: And then?\n\nAssistant:").size()));
  EXPECT_EQ(second["previous_response_id"], id);
  // The first response is unchanged and can be branched from again.
  EXPECT_EQ(Session(id).token_count, stored_tokens);
  // DELETE removes it; then it is 404 (also as a previous response).
  httplib::Result del = Client()->Delete(("/v1/responses/" + id).c_str());
  ASSERT_EQ(del->status, 200);
  EXPECT_EQ(json::parse(del->body)["deleted"], true);
  EXPECT_EQ(Get("/v1/responses/" + id)->status, 404);
  httplib::Result orphan = Post("/v1/responses", next.dump());
  EXPECT_EQ(orphan->status, 404);
  EXPECT_THAT(orphan->body, HasSubstr("response '" + id + "' not found"));
  // store: false keeps nothing; a plain session is not a response.
  httplib::Result unstored =
      Post("/v1/responses", R"({"input": "x", "store": false})");
  ASSERT_EQ(unstored->status, 200);
  EXPECT_EQ(Get("/v1/responses/" +
                json::parse(unstored->body)["id"].get<std::string>())
                ->status,
            404);
  ASSERT_EQ(Post("/v1/sessions", R"({"session_id": "plain"})")->status, 200);
  EXPECT_EQ(Get("/v1/responses/plain")->status, 404);
}

TEST_F(HttpE2eTest, StreamedResponsesEndWithCompleted) {
  httplib::Result res =
      Post("/v1/responses",
           R"({"input": [{"role": "user", "content": [{"type": "input_text",
          "text": "Hi"}]}], "stream": true, "max_output_tokens": 4})");
  ASSERT_EQ(res->status, 200);
  std::vector<std::string> data = SseData(res->body);
  ASSERT_GE(data.size(), 9u);
  EXPECT_EQ(json::parse(data.front())["type"], "response.created");
  json done = json::parse(data.back());
  EXPECT_EQ(done["type"], "response.incomplete");  // cut by max_output_tokens
  EXPECT_EQ(done["response"]["usage"]["output_tokens"], 4);
  EXPECT_EQ(
      Get("/v1/responses/" + done["response"]["id"].get<std::string>())->status,
      200);
}

TEST_F(HttpE2eTest, SessionsOverHttpAreTheGrpcSessions) {
  httplib::Result created =
      Post("/v1/sessions", R"({"session_id": "s", "prefix": "Hello"})");
  ASSERT_EQ(created->status, 200) << created->body;
  EXPECT_EQ(json::parse(created->body)["token_count"], 5);
  httplib::Result res = Post("/v1/chat/completions", Chat("Hi", 3).dump(),
                             {{"X-Session-Id", "s"}});
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("X-Session-Id"), "s");
  const int64_t turned = 5 + std::string("User: Hi\n\nAssistant:").size() + 3;
  EXPECT_EQ(Session("s").token_count, turned);
  // Fork, reset, state download.
  httplib::Result fork =
      Post("/v1/sessions/s/fork", R"({"new_session_id": "f"})");
  ASSERT_EQ(fork->status, 200);
  EXPECT_EQ(json::parse(fork->body)["token_count"], turned);
  httplib::Result state = Get("/v1/sessions/f/state");
  ASSERT_EQ(state->status, 200);
  EXPECT_EQ(state->get_header_value("Content-Type"),
            "application/octet-stream");
  EXPECT_EQ(state->get_header_value("X-Token-Count"), std::to_string(turned));
  absl::StatusOr<engine::State> parsed =
      engine::ParseState(state->body, "download", server_->engine().model());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->token_count(), turned);
  httplib::Result reset = Post("/v1/sessions/s/reset", "");
  ASSERT_EQ(reset->status, 200);
  EXPECT_EQ(json::parse(reset->body)["token_count"], 5);
  httplib::Result list = Get("/v1/sessions");
  EXPECT_EQ(json::parse(list->body)["total"], 2);
  EXPECT_EQ(Client()->Delete("/v1/sessions/f")->status, 200);
  EXPECT_EQ(Get("/v1/sessions/f")->status, 404);
}

TEST_F(HttpE2eTest, MetricsCoverBothFronts) {
  auto stub = pb::ChatService::NewStub(grpc::CreateChannel(
      server_->address(), grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext ctx;
    pb::CreateSessionRequest req;
    req.set_session_id("g");
    pb::SessionInfo info;
    ASSERT_TRUE(stub->CreateSession(&ctx, req, &info).ok());
  }
  {
    grpc::ClientContext ctx;
    pb::ChatRequest req;
    req.set_session_id("g");
    req.set_message("Hi");
    req.set_max_tokens(3);
    auto reader = stub->Chat(&ctx, req);
    pb::GenerateResponse resp;
    while (reader->Read(&resp)) {
    }
    ASSERT_TRUE(reader->Finish().ok());
  }
  ASSERT_EQ(Post("/v1/chat/completions", Chat("Hi", 3).dump())->status, 200);
  const std::string m = Metrics();
  for (const std::string& want : {
           std::string(
               "rwkv_turns_finished_total{front=\"grpc\",reason=\"length\"} 1"),
           std::string(
               "rwkv_turns_finished_total{front=\"http\",reason=\"length\"} 1"),
           std::string(
               "rwkv_time_to_first_token_seconds_count{front=\"http\"} 1"),
           std::string(
               "rwkv_time_to_first_token_seconds_count{front=\"grpc\"} 1"),
           std::string("rwkv_generation_tokens_total{front=\"http\"} 3"),
           std::string(
               "rwkv_request_queue_time_seconds_count{front=\"grpc\"} 1"),
           std::string(
               "rwkv_inter_token_latency_seconds_count{front=\"http\"} 2"),
           std::string("rwkv_sessions{where=\"ram\"} 1"),
           std::string("rwkv_sessions{where=\"store\"} 1"),
           std::string("rwkv_num_requests_running 0"),
           std::string("rwkv_prefix_cache_queries_total"),
           std::string("rwkv_batch_size_bucket{le=\"1\"}"),
           std::string("rwkv_http_requests_total{code=\"200\",method=\"POST\","
                       "route=\"/v1/chat/completions\"} 1"),
       }) {
    EXPECT_THAT(m, HasSubstr(want));
  }
}

TEST(HttpLifecycleTest, ProbesAnswerBeforeTheModelAndDuringShutdown) {
  ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.http.listen = "127.0.0.1:0";
  o.store = "memory";
  absl::StatusOr<std::unique_ptr<RwkvServer>> server = RwkvServer::Listen(o);
  ASSERT_TRUE(server.ok()) << server.status();
  httplib::Client c("127.0.0.1", (*server)->http_port());
  EXPECT_EQ(c.Get("/healthz")->status, 200);
  httplib::Result ready = c.Get("/readyz");
  EXPECT_EQ(ready->status, 503);
  EXPECT_THAT(ready->body, HasSubstr("still loading"));
  EXPECT_EQ(c.Get("/v1/models")->status, 503);
  EXPECT_EQ(c.Get("/metrics")->status, 200);
  auto engine = std::make_unique<FakeEngine>();
  FakeEngine* fake = engine.get();
  ASSERT_TRUE(
      (*server)
          ->Serve(std::move(engine), *engine::Tokenizer::Load("bytes"), o)
          .ok());
  EXPECT_EQ(c.Get("/readyz")->status, 200);
  // A stream still running when the grace period ends is cut with 503's
  // error, and rolled back.
  fake->set_before_call([] { absl::SleepFor(absl::Milliseconds(2)); });
  absl::Notification streaming;
  std::string body;
  std::thread client([&] {
    httplib::Client sc("127.0.0.1", (*server)->http_port());
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.body = Chat("Go", 4000, /*stream=*/true).dump();
    req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
      body.append(d, n);
      if (!streaming.HasBeenNotified()) streaming.Notify();
      return true;
    };
    sc.send(req);
  });
  streaming.WaitForNotification();
  std::thread stopper([&] { (*server)->Shutdown(absl::Milliseconds(300)); });
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(c.Get("/readyz")->status, 503);
  EXPECT_EQ(
      c.Post("/v1/chat/completions", Chat("x", 1).dump(), "application/json")
          ->status,
      503);
  stopper.join();
  client.join();
  std::vector<std::string> data = SseData(body);
  ASSERT_GE(data.size(), 2u);
  EXPECT_EQ(data.back(), "[DONE]");
  json error = json::parse(data[data.size() - 2])["error"];
  EXPECT_EQ(error["code"], "unavailable");
  EXPECT_THAT(error["message"].get<std::string>(), HasSubstr("shutting down"));
}

TEST_F(HttpE2eTest, ServesThePageAndJsonErrorsForUnknownRoutes) {
  httplib::Result page = Get("/");
  ASSERT_EQ(page->status, 200);
  EXPECT_THAT(page->get_header_value("Content-Type"), StartsWith("text/html"));
  EXPECT_THAT(page->get_header_value("Content-Security-Policy"),
              HasSubstr("default-src 'self'"));
  EXPECT_THAT(page->body, HasSubstr("<title>rwkv-server chat</title>"));
  EXPECT_THAT(Get("/app.js")->body, HasSubstr("/v1/chat/completions"));
  EXPECT_EQ(Get("/style.css")->status, 200);
  httplib::Result missing = Get("/nothing.js");
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(json::parse(missing->body)["error"]["code"], "not_found");
  httplib::Result route = Get("/v2/whatever");
  EXPECT_EQ(route->status, 404);
  EXPECT_THAT(json::parse(route->body)["error"]["message"].get<std::string>(),
              HasSubstr("no route for GET '/v2/whatever'"));
  httplib::Result models = Get("/v1/models");
  EXPECT_EQ(json::parse(models->body)["data"][0]["id"], "fake");
  EXPECT_EQ(Get("/v1/models/fake")->status, 200);
  EXPECT_EQ(Get("/v1/models/gpt-4")->status, 404);
}

TEST_F(HttpE2eTest, TheLoadGeneratorRunsOverHttp) {
  absl::StatusOr<std::unique_ptr<client::HttpLoadTarget>> target =
      client::HttpLoadTarget::Create(server_->http_address());
  ASSERT_TRUE(target.ok()) << target.status();
  client::LoadOptions options;
  options.tokens_per_stream = 20;
  options.prompt_tokens = 6;
  options.warmup_tokens = 2;
  client::LoadGenerator generator(target->get(), options);
  absl::StatusOr<client::PhaseResult> r = generator.RunPhase(3);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->errors, 0) << r->first_error;
  EXPECT_EQ(r->turns, 3);
  // Every token counted (the fake's bytes >= 128 add no text: the ids do).
  EXPECT_EQ(r->tokens, 60);
  EXPECT_EQ(r->prompt_tokens, 6);
  EXPECT_EQ(r->inter_token_ms.count(), 57u);
  EXPECT_GT(r->server_avg_batch, 0);
  // Its sessions are deleted afterwards.
  EXPECT_EQ(server_->sessions().session_count(), 0);
}

TEST_F(HttpE2eTest, CompletionsTakeARawPrompt) {
  httplib::Result res = Post(
      "/v1/completions",
      R"({"prompt": "Once upon a time", "max_tokens": 4, "temperature": 0})");
  ASSERT_EQ(res->status, 200) << res->body;
  json body = json::parse(res->body);
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["usage"]["prompt_tokens"], 16);
  EXPECT_EQ(Post("/v1/completions", R"({"prompt": [1, 2]})")->status, 400);
  httplib::Result empty = Post("/v1/completions", R"({"prompt": ""})");
  EXPECT_EQ(empty->status, 400);
  json error = json::parse(empty->body)["error"];
  EXPECT_EQ(error["message"], "prompt is empty");
  EXPECT_EQ(error["param"], "prompt");
  EXPECT_EQ(Post("/v1/completions", R"({"prompt": "x", "echo": true})")->status,
            400);
}

}  // namespace
}  // namespace rwkv::server
