// ChatClient and ChatRepl against an in-process fake ChatService: streaming
// callbacks, cancellation, status mapping of real RPC failures, state files,
// the health check, and the REPL commands. No model or real server needed.
#include "client/chat_client.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/chat_options.h"
#include "client/chat_repl.h"
#include "client/grpc_load_target.h"
#include "client/load_generator.h"
#include "gmock/gmock.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "rwkv/v1/chat.grpc.pb.h"

namespace rwkv::client {
namespace {

using ::testing::HasSubstr;

// A ChatService that keeps sessions as {token_count, history text}. Chat
// replies with "You said: <message>" in three chunks; Generate with
// text "slow" streams until cancelled.
class FakeChatService final : public rwkv::v1::ChatService::Service {
 public:
  struct Session {
    int64_t tokens = 0;
    std::string history;
    int64_t ttl = 3600;
    std::string initial_state;  // the request's initial_state_name
  };

  grpc::Status CreateSession(grpc::ServerContext*,
                             const rwkv::v1::CreateSessionRequest* request,
                             rwkv::v1::SessionInfo* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::string id = request->session_id();
    if (id.empty()) id = absl::StrCat("gen-", ++generated_);
    // Like rwkv-server: the initial state's name is checked first.
    if (!request->initial_state_name().empty() &&
        request->initial_state_name() != "arr") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          "no server initial state named '" +
                              request->initial_state_name() + "'");
    }
    if (sessions_.count(id)) {
      return grpc::Status(grpc::StatusCode::ALREADY_EXISTS,
                          absl::StrCat("session '", id, "' already exists"));
    }
    Session& s = sessions_[id];
    if (request->ttl_seconds() > 0) s.ttl = request->ttl_seconds();
    s.initial_state = request->initial_state_name();
    Fill(id, s, response);
    return grpc::Status::OK;
  }

  grpc::Status GetSession(grpc::ServerContext*,
                          const rwkv::v1::GetSessionRequest* request,
                          rwkv::v1::SessionInfo* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    Session* s = Find(request->session_id());
    if (s == nullptr) return NotFound(request->session_id());
    Fill(request->session_id(), *s, response);
    return grpc::Status::OK;
  }

  grpc::Status ResetSession(grpc::ServerContext*,
                            const rwkv::v1::ResetSessionRequest* request,
                            rwkv::v1::SessionInfo* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    Session* s = Find(request->session_id());
    if (s == nullptr) return NotFound(request->session_id());
    s->tokens = 0;
    s->history.clear();
    Fill(request->session_id(), *s, response);
    return grpc::Status::OK;
  }

  grpc::Status TouchSession(grpc::ServerContext*,
                            const rwkv::v1::TouchSessionRequest* request,
                            rwkv::v1::SessionInfo* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    Session* s = Find(request->session_id());
    if (s == nullptr) return NotFound(request->session_id());
    if (request->ttl_seconds() > 0) s->ttl = request->ttl_seconds();
    Fill(request->session_id(), *s, response);
    return grpc::Status::OK;
  }

  grpc::Status ForkSession(grpc::ServerContext*,
                           const rwkv::v1::ForkSessionRequest* request,
                           rwkv::v1::SessionInfo* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    Session* s = Find(request->source_session_id());
    if (s == nullptr) return NotFound(request->source_session_id());
    std::string id = request->new_session_id();
    if (id.empty()) id = absl::StrCat("gen-", ++generated_);
    Session copy = *s;
    sessions_[id] = copy;
    Fill(id, copy, response);
    return grpc::Status::OK;
  }

  grpc::Status ExportState(grpc::ServerContext*,
                           const rwkv::v1::ExportStateRequest* request,
                           rwkv::v1::ExportStateResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    Session* s = Find(request->session_id());
    if (s == nullptr) return NotFound(request->session_id());
    response->set_state(absl::StrCat("STATE\n", s->tokens, "\n", s->history));
    response->set_token_count(s->tokens);
    return grpc::Status::OK;
  }

  grpc::Status ImportState(grpc::ServerContext*,
                           const rwkv::v1::ImportStateRequest* request,
                           rwkv::v1::SessionInfo* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::istringstream in(request->state());
    std::string magic;
    int64_t tokens = 0;
    if (!std::getline(in, magic) || magic != "STATE" || !(in >> tokens)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "not a state file");
    }
    in.get();
    std::string history((std::istreambuf_iterator<char>(in)),
                        std::istreambuf_iterator<char>());
    std::string id = request->session_id();
    if (sessions_.count(id) && !request->replace()) {
      return grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "exists");
    }
    Session& s = sessions_[id];
    s.tokens = tokens;
    s.history = history;
    Fill(id, s, response);
    return grpc::Status::OK;
  }

  grpc::Status InspectSession(
      grpc::ServerContext*, const rwkv::v1::InspectSessionRequest* request,
      rwkv::v1::InspectSessionResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    Session* s = Find(request->session_id());
    if (s == nullptr) return NotFound(request->session_id());
    response->set_session_id(request->session_id());
    response->set_healthy(true);
    response->set_report(absl::StrCat("tokens ", s->tokens, "\nhealthy\n"));
    return grpc::Status::OK;
  }

  grpc::Status GetModelInfo(grpc::ServerContext*,
                            const rwkv::v1::GetModelInfoRequest*,
                            rwkv::v1::ModelInfo* response) override {
    response->set_architecture("rwkv4");
    response->set_n_layer(2);
    response->set_n_embd(8);
    response->set_vocab_size(256);
    response->set_tokenizer("bytes");
    std::lock_guard<std::mutex> lock(mu_);
    response->set_decode_steps(decode_steps_);
    response->set_tokens_generated(tokens_generated_);
    return grpc::Status::OK;
  }

  grpc::Status DeleteSession(grpc::ServerContext*,
                             const rwkv::v1::DeleteSessionRequest* request,
                             rwkv::v1::DeleteSessionResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (sessions_.erase(request->session_id()) == 0) {
      return NotFound(request->session_id());
    }
    return grpc::Status::OK;
  }

  grpc::Status Chat(
      grpc::ServerContext*, const rwkv::v1::ChatRequest* request,
      grpc::ServerWriter<rwkv::v1::GenerateResponse>* writer) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (Find(request->session_id()) == nullptr) {
        return NotFound(request->session_id());
      }
    }
    if (request->message().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "empty message");
    }
    const std::string pieces[] = {" You", " said: ", request->message()};
    int64_t tokens = 0;
    for (const std::string& piece : pieces) {
      rwkv::v1::GenerateResponse chunk;
      chunk.set_text(piece);
      chunk.add_token_ids(static_cast<int32_t>(piece.size()));
      ++tokens;
      writer->Write(chunk);
    }
    std::lock_guard<std::mutex> lock(mu_);
    Session* s = Find(request->session_id());
    if (s == nullptr) return NotFound(request->session_id());
    s->tokens += tokens;
    s->history += request->message();
    decode_steps_ += tokens;
    tokens_generated_ += tokens;
    rwkv::v1::GenerateResponse last;
    last.set_finish_reason(rwkv::v1::FINISH_REASON_STOP);
    last.mutable_usage()->set_prompt_tokens(5);
    last.mutable_usage()->set_generated_tokens(static_cast<int32_t>(tokens));
    last.set_token_count(s->tokens);
    writer->Write(last);
    return grpc::Status::OK;
  }

  grpc::Status Generate(
      grpc::ServerContext* context, const rwkv::v1::GenerateRequest* request,
      grpc::ServerWriter<rwkv::v1::GenerateResponse>* writer) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (Find(request->session_id()) == nullptr) {
        return NotFound(request->session_id());
      }
    }
    const int n = request->max_tokens() > 0 ? request->max_tokens() : 4;
    for (int i = 0; i < n; ++i) {
      if (context->IsCancelled()) {
        return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
      }
      rwkv::v1::GenerateResponse chunk;
      chunk.set_text("x");
      chunk.add_token_ids(120);
      if (i == n - 1) {
        chunk.set_finish_reason(rwkv::v1::FINISH_REASON_LENGTH);
        chunk.mutable_usage()->set_prompt_tokens(
            static_cast<int32_t>(request->text().size()));
        chunk.mutable_usage()->set_generated_tokens(n);
      }
      writer->Write(chunk);
      if (request->text() == "slow") {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    decode_steps_ += n;
    tokens_generated_ += 2 * n;  // pretend an average batch of 2
    return grpc::Status::OK;
  }

  int64_t tokens(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    Session* s = Find(id);
    return s == nullptr ? -1 : s->tokens;
  }
  std::string initial_state(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    Session* s = Find(id);
    return s == nullptr ? "<none>" : s->initial_state;
  }
  bool has(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    return Find(id) != nullptr;
  }

 private:
  Session* Find(const std::string& id) {
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : &it->second;
  }
  static grpc::Status NotFound(const std::string& id) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("session '", id, "' not found"));
  }
  static void Fill(const std::string& id, const Session& s,
                   rwkv::v1::SessionInfo* info) {
    info->set_session_id(id);
    info->set_token_count(s.tokens);
    info->set_ttl_seconds(s.ttl);
  }

  std::mutex mu_;
  std::map<std::string, Session> sessions_;
  int generated_ = 0;
  int64_t decode_steps_ = 0;
  int64_t tokens_generated_ = 0;
};

class ChatClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    client_ = std::make_unique<ChatClient>(
        server_->InProcessChannel(grpc::ChannelArguments()));
  }
  void TearDown() override { server_->Shutdown(); }

  std::string TempPath(const std::string& name) {
    return absl::StrCat(::testing::TempDir(), "/client_test_", getpid(), "_",
                        name);
  }

  FakeChatService service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<ChatClient> client_;
};

TEST_F(ChatClientTest, ChatStreamsChunksInOrder) {
  ASSERT_TRUE(client_->GetOrCreateSession("alice", 0).ok());
  rwkv::v1::ChatRequest request;
  request.set_session_id("alice");
  request.set_message("hi");
  std::vector<std::string> seen;
  absl::StatusOr<TurnResult> result =
      client_->Chat(request, [&](const rwkv::v1::GenerateResponse& chunk) {
        seen.push_back(chunk.text());
        return true;
      });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(seen, (std::vector<std::string>{" You", " said: ", "hi", ""}));
  EXPECT_EQ(result->text, " You said: hi");
  EXPECT_EQ(result->token_ids.size(), 3u);
  EXPECT_EQ(result->chunks, 4);
  EXPECT_EQ(result->finish_reason, rwkv::v1::FINISH_REASON_STOP);
  EXPECT_EQ(result->usage.generated_tokens(), 3);
  EXPECT_EQ(result->token_count, 3);
}

TEST_F(ChatClientTest, ErrorsCarryTheGrpcCodeAndMessage) {
  rwkv::v1::ChatRequest request;
  request.set_session_id("nobody");
  request.set_message("hi");
  absl::StatusOr<TurnResult> result = client_->Chat(request, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(result.status().message(), "session 'nobody' not found");

  absl::StatusOr<rwkv::v1::SessionInfo> info = client_->GetSession("nobody");
  EXPECT_EQ(info.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->DeleteSession("nobody").code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ChatClientTest, GetOrCreateContinuesAnExistingSession) {
  bool created = false;
  ASSERT_TRUE(client_->GetOrCreateSession("bob", 0, &created).ok());
  EXPECT_TRUE(created);
  rwkv::v1::ChatRequest request;
  request.set_session_id("bob");
  request.set_message("one");
  ASSERT_TRUE(client_->Chat(request, nullptr).ok());
  absl::StatusOr<rwkv::v1::SessionInfo> again =
      client_->GetOrCreateSession("bob", 120, &created);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(created);
  EXPECT_EQ(again->token_count(), 3);
  EXPECT_EQ(again->ttl_seconds(), 120);
}

TEST_F(ChatClientTest, CallbackReturningFalseCancelsTheTurn) {
  ASSERT_TRUE(client_->GetOrCreateSession("c", 0).ok());
  rwkv::v1::GenerateRequest request;
  request.set_session_id("c");
  request.set_text("slow");
  request.set_max_tokens(100000);
  int chunks = 0;
  absl::StatusOr<TurnResult> result = client_->Generate(
      request, [&](const rwkv::v1::GenerateResponse&) { return ++chunks < 3; });
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(chunks, 3);
}

TEST_F(ChatClientTest, TurnCancellerCancelsFromAnotherThread) {
  ASSERT_TRUE(client_->GetOrCreateSession("t", 0).ok());
  rwkv::v1::GenerateRequest request;
  request.set_session_id("t");
  request.set_text("slow");
  request.set_max_tokens(100000);
  TurnCanceller canceller;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    canceller.Cancel();
  });
  absl::StatusOr<TurnResult> result =
      client_->Generate(request, nullptr, &canceller);
  stopper.join();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  // Cancelled before it starts: the next turn fails at once.
  result = client_->Generate(request, nullptr, &canceller);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  canceller.Reset();
  request.set_text("fast");
  request.set_max_tokens(3);
  EXPECT_TRUE(client_->Generate(request, nullptr, &canceller).ok());
}

TEST_F(ChatClientTest, ReplRequestCancelStopsTheReply) {
  ChatOptions options;
  options.session = "r";
  options.generate = true;
  options.max_tokens = 100000;
  std::ostringstream out, err;
  ChatRepl repl(client_.get(), options, &out, &err);
  ASSERT_TRUE(repl.Start().ok());
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    repl.RequestCancel();
  });
  absl::Status s = repl.SendMessage("slow");
  stopper.join();
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_THAT(err.str(), HasSubstr("[cancelled]"));
}

TEST_F(ChatClientTest, ExportAndImportThroughFiles) {
  ASSERT_TRUE(client_->GetOrCreateSession("src", 0).ok());
  rwkv::v1::ChatRequest request;
  request.set_session_id("src");
  request.set_message("remember me");
  ASSERT_TRUE(client_->Chat(request, nullptr).ok());
  const std::string path = TempPath("state.pth");
  absl::StatusOr<rwkv::v1::ExportStateResponse> exported =
      client_->ExportStateToFile("src", "", path);
  ASSERT_TRUE(exported.ok()) << exported.status();
  rwkv::v1::ImportStateRequest import;
  import.set_session_id("dst");
  absl::StatusOr<rwkv::v1::SessionInfo> info =
      client_->ImportStateFromFile(path, import);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->token_count(), 3);
  std::remove(path.c_str());

  EXPECT_EQ(
      client_->ImportStateFromFile(TempPath("missing"), import).status().code(),
      absl::StatusCode::kNotFound);
  EXPECT_FALSE(client_->ExportStateToFile("src", "", "").ok());
  EXPECT_FALSE(
      client_->ExportStateToFile("src", "", "/nonexistent-dir/x.pth").ok());
}

TEST_F(ChatClientTest, HealthCheck) {
  absl::StatusOr<HealthStatus> health = client_->CheckHealth("");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, HealthStatus::kServing);
  server_->GetHealthCheckService()->SetServingStatus(false);
  health = client_->CheckHealth("");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, HealthStatus::kNotServing);
  EXPECT_EQ(client_->CheckHealth("no.such.Service").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ChatClientTest, UnreachableServerIsUnavailable) {
  std::unique_ptr<ChatClient> client = ChatClient::Connect("127.0.0.1:1");
  client->set_unary_timeout(absl::Seconds(5));
  absl::StatusOr<rwkv::v1::ModelInfo> info = client->GetModelInfo();
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(ChatClientTest, ReplRunsCommandsAndMessages) {
  ChatOptions options;
  options.session = "repl";
  std::ostringstream out, err;
  ChatRepl repl(client_.get(), options, &out, &err);
  ASSERT_TRUE(repl.Start().ok());
  EXPECT_TRUE(service_.has("repl"));
  const std::string path = TempPath("repl.pth");
  std::istringstream in(
      absl::StrCat("Hello\n"
                   "/inspect\n"
                   "/export ",
                   path,
                   "\n"
                   "/fork repl-2\n"
                   "Again\n"
                   "/reset\n"
                   "/import ",
                   path,
                   "\n"
                   "/ttl 99\n"
                   "/bogus\n"
                   "/session other\n"
                   "/info\n"
                   "/new\n"
                   "/quit\n"
                   "never sent\n"));
  int failures = repl.Run(in, /*interactive=*/false);
  std::remove(path.c_str());
  EXPECT_EQ(failures, 1) << err.str();
  EXPECT_THAT(err.str(), HasSubstr("unknown command /bogus"));
  EXPECT_THAT(out.str(), HasSubstr("You said: Hello\n"));
  EXPECT_THAT(out.str(), HasSubstr("healthy"));
  EXPECT_THAT(out.str(), HasSubstr("forked repl -> repl-2"));
  EXPECT_THAT(out.str(), HasSubstr("session repl-2 now holds"));
  EXPECT_THAT(out.str(), HasSubstr("ttl 99 s"));
  EXPECT_THAT(out.str(), HasSubstr("session other"));
  EXPECT_THAT(out.str(), HasSubstr("model       rwkv4"));
  EXPECT_THAT(out.str(), HasSubstr("session gen-"));
  EXPECT_THAT(out.str(), ::testing::Not(HasSubstr("never sent")));
  EXPECT_EQ(service_.tokens("repl"), 3);
  // repl-2 got "Again" (3 tokens), was reset, then imported repl's 3 tokens.
  EXPECT_EQ(service_.tokens("repl-2"), 3);
}

TEST_F(ChatClientTest, ReplStartsNewSessionsFromTheNamedInitialState) {
  ChatOptions options;
  options.session = "pirate";
  options.initial_state = "arr";
  std::ostringstream out, err;
  ChatRepl repl(client_.get(), options, &out, &err);
  ASSERT_TRUE(repl.Start().ok());
  EXPECT_EQ(service_.initial_state("pirate"), "arr");
  std::istringstream in("/new\n/session pirate-2\n/quit\n");
  EXPECT_EQ(repl.Run(in, /*interactive=*/false), 0) << err.str();
  EXPECT_EQ(service_.initial_state("gen-1"), "arr");
  EXPECT_EQ(service_.initial_state("pirate-2"), "arr");
  // A name the server does not know: an existing session is still
  // continued, a new one is not created.
  ChatOptions unknown;
  unknown.session = "pirate";
  unknown.initial_state = "nope";
  ChatRepl repl3(client_.get(), unknown, &out, &err);
  EXPECT_TRUE(repl3.Start().ok());
  unknown.session = "brand-new";
  ChatRepl repl4(client_.get(), unknown, &out, &err);
  absl::Status s = repl4.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_FALSE(service_.has("brand-new"));
  // Without the option, sessions start from the fresh state.
  ChatOptions plain;
  plain.session = "plain";
  ChatRepl repl2(client_.get(), plain, &out, &err);
  ASSERT_TRUE(repl2.Start().ok());
  EXPECT_EQ(service_.initial_state("plain"), "");
}

TEST_F(ChatClientTest, ReplReportsServerErrorsAndGoesOn) {
  ChatOptions options;
  options.session = "gone";
  std::ostringstream out, err;
  ChatRepl repl(client_.get(), options, &out, &err);
  ASSERT_TRUE(repl.Start().ok());
  ASSERT_TRUE(client_->DeleteSession("gone").ok());
  std::istringstream in("Hello?\n/help\n");
  EXPECT_EQ(repl.Run(in, /*interactive=*/false), 1);
  EXPECT_THAT(err.str(),
              HasSubstr("Chat failed: NOT_FOUND: session 'gone' not found"));
  EXPECT_THAT(out.str(), HasSubstr("/fork [NEW_ID]"));
}

TEST_F(ChatClientTest, LoadGeneratorMeasuresAPhase) {
  LoadOptions options;
  options.tokens_per_stream = 20;
  options.prompt_tokens = 6;
  options.long_prompt_tokens = 50;
  options.warmup_tokens = 2;
  GrpcLoadTarget target(client_.get(), "in-process");
  LoadGenerator generator(&target, options);
  absl::StatusOr<PhaseResult> r = generator.RunPhase(3);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->errors, 0) << r->first_error;
  EXPECT_EQ(r->streams, 3);
  EXPECT_EQ(r->turns, 3);
  EXPECT_EQ(r->tokens, 60);
  EXPECT_EQ(r->prompt_tokens, 6);  // the fake's tokenizer is "bytes"
  EXPECT_EQ(r->ttft_ms.count(), 3u);
  EXPECT_EQ(r->inter_token_ms.count(), 57u);
  EXPECT_GT(r->tokens_per_second, 0);
  EXPECT_LE(r->steady_tokens, r->tokens);
  EXPECT_EQ(r->long_prompt_tokens, 50);
  EXPECT_GE(r->long_prompt_ttft_ms, 0);
  // The fake counts 2 tokens per decode step.
  EXPECT_DOUBLE_EQ(r->server_avg_batch, 2.0);
  // Its sessions are deleted afterwards.
  EXPECT_FALSE(service_.has("rwkv-load-" + std::to_string(getpid()) + "-1-0"));
}

TEST_F(ChatClientTest, LoadGeneratorTimedMode) {
  LoadOptions options;
  options.tokens_per_stream = 5;
  options.duration_seconds = 0.3;
  options.warmup_tokens = 0;
  GrpcLoadTarget target(client_.get(), "in-process");
  LoadGenerator generator(&target, options);
  absl::StatusOr<PhaseResult> r = generator.RunPhase(2);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->errors, 0) << r->first_error;
  EXPECT_GT(r->turns, 2);
  EXPECT_NEAR(r->seconds, 0.3, 0.25);
}

}  // namespace
}  // namespace rwkv::client
