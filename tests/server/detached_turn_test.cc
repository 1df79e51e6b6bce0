// Detached turns through ChatApp over the FakeEngine: stateless
// conversations that are resent in full every turn compute only what is new
// (the prefix cache holds the state after each reply), turns continued from
// a session leave it unchanged and may keep their result as a new session,
// and a cancelled turn keeps nothing. Also chat turns on a session given as
// message lists (the HTTP front's X-Session-Id).
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "engine/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/app/chat_app.h"
#include "server/session/memory_session_store.h"
#include "tests/testing/fake_engine.h"
#include "tests/testing/recording_stream.h"

namespace rwkv::server {
namespace {

// A server without API keys: the anonymous tenant, which sees everything.
const Caller kCaller = Caller::Anonymous();

using ::rwkv::testing::FakeEngine;
using ::rwkv::testing::RecordingStream;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using Role = ChatMessage::Role;

std::vector<int32_t> Tokens(const std::string& text) {
  return std::vector<int32_t>(text.begin(), text.end());
}

class DetachedTurnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SessionManagerOptions so;
    so.sweep_interval = absl::ZeroDuration();
    sessions_ = std::make_unique<SessionManager>(so, &store_);
    SchedulerOptions sched;
    sched.chunk_size = 8;
    scheduler_ = std::make_unique<Scheduler>(&engine_, tokenizer_.get(), sched);
    cache_ = std::make_unique<engine::PrefixCache>();
    app_ = std::make_unique<ChatApp>(engine_.shared_model(), tokenizer_.get(),
                                     sessions_.get(), scheduler_.get(),
                                     cache_.get(), AppOptions());
  }
  void TearDown() override { scheduler_->Stop(); }

  static TurnRequest Chat(std::vector<ChatMessage> messages, int max_tokens) {
    TurnRequest t;
    t.chat = true;
    t.messages = std::move(messages);
    t.sampling.temperature = 0;
    t.max_tokens = max_tokens;
    return t;
  }
  std::shared_ptr<RecordingStream> Run(DetachedTurnRequest r) {
    auto stream = std::make_shared<RecordingStream>();
    app_->StartDetachedTurn(kCaller, std::move(r), stream);
    stream->finished.WaitForNotification();
    return stream;
  }
  std::shared_ptr<RecordingStream> RunSessionTurn(TurnRequest r) {
    auto stream = std::make_shared<RecordingStream>();
    app_->StartTurn(kCaller, std::move(r), stream);
    stream->finished.WaitForNotification();
    return stream;
  }
  absl::StatusOr<SessionInfo> Create(const std::string& id,
                                     const std::string& prefix) {
    CreateSessionRequest r;
    r.session_id = id;
    r.prefix = prefix;
    absl::Notification done;
    absl::StatusOr<SessionInfo> out = absl::UnknownError("no answer");
    app_->CreateSession(kCaller, std::move(r),
                        [&](absl::StatusOr<SessionInfo> info) {
                          out = std::move(info);
                          done.Notify();
                        });
    done.WaitForNotification();
    return out;
  }
  size_t Rendered(const std::vector<ChatMessage>& messages) {
    return app_->renderer().Render(messages, "messages")->size();
  }

  // Vocabulary 128: every reply is ASCII, so its text is exactly its bytes.
  FakeEngine engine_{128};
  std::unique_ptr<engine::Tokenizer> tokenizer_ =
      *engine::Tokenizer::Load("bytes");
  MemorySessionStore store_;
  std::unique_ptr<SessionManager> sessions_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<engine::PrefixCache> cache_;
  std::unique_ptr<ChatApp> app_;
};

TEST_F(DetachedTurnTest, AResentConversationComputesOnlyTheNewMessage) {
  std::vector<ChatMessage> history;
  size_t previous_state_tokens = 0;  // rendered history + reply fed
  for (int turn = 0; turn < 10; ++turn) {
    const std::string message = "Message number " + std::to_string(turn);
    history.push_back({Role::kUser, message, "messages[].content"});
    const int64_t fed_before = engine_.tokens_fed();
    DetachedTurnRequest r;
    r.turn = Chat(history, 12);
    auto s = Run(std::move(r));
    absl::MutexLock lock(&s->mu);
    ASSERT_TRUE(s->status.ok()) << s->status;
    const TurnChunk usage = s->last;  // a copy, read under the lock
    const size_t rendered = Rendered(history);
    EXPECT_EQ(usage.prompt_tokens, static_cast<int32_t>(rendered));
    // Everything up to the previous reply came from the cache ...
    EXPECT_EQ(usage.cached_tokens, static_cast<int32_t>(previous_state_tokens))
        << "turn " << turn;
    const int64_t computed_prompt = usage.prompt_tokens - usage.cached_tokens;
    // ... so the engine fed only the new message in its template (plus the
    // separator the previous reply did not end with) and the reply.
    const size_t new_and_template =
        ChatTemplate("User: {message}\n\nAssistant:", {"\n\n"})
            .Format(message)
            .size() +
        2;
    if (turn > 0) {
      EXPECT_LE(computed_prompt, static_cast<int64_t>(new_and_template));
    }
    EXPECT_EQ(engine_.tokens_fed() - fed_before,
              computed_prompt + usage.generated_tokens);
    history.push_back({Role::kAssistant, s->text, "messages[].content"});
    previous_state_tokens = rendered + s->ids.size();
  }
  // A cold start of the same history (the cache cleared) computes all of
  // it: the cache is what made the difference.
  cache_->Clear();
  history.push_back({Role::kUser, "One more", "messages[].content"});
  DetachedTurnRequest r;
  r.turn = Chat(history, 4);
  auto s = Run(std::move(r));
  absl::MutexLock lock(&s->mu);
  ASSERT_TRUE(s->status.ok()) << s->status;
  EXPECT_EQ(s->last.cached_tokens, 0);
  EXPECT_EQ(s->last.prompt_tokens, static_cast<int32_t>(Rendered(history)));
}

TEST_F(DetachedTurnTest, AResentReplyThatDiffersStillReusesItsPrompt) {
  // A client that resends a reply other than the tokens the model chose
  // (edited, or a tokenizer that spells it differently) still finds the
  // state after the previous prompt: it computes that reply and the new
  // message, not the whole history.
  std::vector<ChatMessage> history = {{Role::kUser, "Hello", "m"}};
  DetachedTurnRequest r;
  r.turn = Chat(history, 6);
  auto first = Run(std::move(r));
  {
    absl::MutexLock lock(&first->mu);
    ASSERT_TRUE(first->status.ok());
  }
  const size_t prompt = Rendered(history);
  history.push_back({Role::kAssistant, " an edited reply", "m"});
  history.push_back({Role::kUser, "Next", "m"});
  DetachedTurnRequest next;
  next.turn = Chat(history, 2);
  auto second = Run(std::move(next));
  absl::MutexLock lock(&second->mu);
  ASSERT_TRUE(second->status.ok()) << second->status;
  EXPECT_EQ(second->last.cached_tokens, static_cast<int32_t>(prompt));
}

TEST_F(DetachedTurnTest, TheReplyIsTheSessionTurnsReply) {
  // The same conversation as a stateless request and as a session turn
  // gives the same greedy reply: both feed the same tokens.
  ASSERT_TRUE(Create("s", "").ok());
  auto on_session = RunSessionTurn([] {
    TurnRequest t = Chat({{Role::kUser, "Hello there", "m"}}, 8);
    t.session_id = "s";
    return t;
  }());
  DetachedTurnRequest r;
  r.turn = Chat({{Role::kUser, "Hello there", "m"}}, 8);
  auto detached = Run(std::move(r));
  absl::MutexLock l1(&on_session->mu);
  absl::MutexLock l2(&detached->mu);
  ASSERT_TRUE(on_session->status.ok()) << on_session->status;
  const uint32_t h =
      FakeEngine::Hash(0, Tokens("User: Hello there\n\nAssistant:"));
  std::vector<int32_t> greedy;
  for (uint32_t x = h; greedy.size() < 8;) {
    greedy.push_back(engine_.GreedyAfter(x));
    x = FakeEngine::Hash(x, {greedy.back()});
  }
  // (A reply can end early at "\n\n"; the tokens sent are a prefix.)
  EXPECT_THAT(on_session->ids,
              ElementsAreArray(greedy.begin(),
                               greedy.begin() + on_session->ids.size()));
  EXPECT_EQ(detached->ids, on_session->ids);
}

TEST_F(DetachedTurnTest, ContinuingFromASessionKeepsItAndStoresANewOne) {
  ASSERT_TRUE(Create("base", "Hello").ok());
  DetachedTurnRequest r;
  r.turn = Chat({{Role::kUser, "Hi", "input"}}, 5);
  r.turn.session_id = "base";
  r.keep_as =
      KeepAs{"resp_1", 0, [](const std::string& reply, const TurnChunk& last) {
               return "note:" + std::to_string(reply.size()) + ":" +
                      std::to_string(last.generated_tokens);
             }};
  auto s = Run(std::move(r));
  absl::MutexLock lock(&s->mu);
  ASSERT_TRUE(s->status.ok()) << s->status;
  EXPECT_EQ(s->last.cached_tokens, 5);  // the base state's tokens
  EXPECT_EQ(
      s->last.prompt_tokens,
      5 + static_cast<int32_t>(std::string("User: Hi\n\nAssistant:").size()));
  EXPECT_EQ(app_->GetSession(kCaller, "base")->token_count, 5);  // unchanged
  absl::StatusOr<SessionInfo> kept = app_->GetSession(kCaller, "resp_1");
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->token_count, s->last.token_count);
  EXPECT_EQ(kept->note, "note:" + std::to_string(s->text.size()) + ":" +
                            std::to_string(s->last.generated_tokens));
  // Continuing from the kept session starts where that reply ended.
  DetachedTurnRequest next;
  next.turn = Chat({{Role::kUser, "More", "input"}}, 3);
  next.turn.session_id = "resp_1";
  auto s2 = Run(std::move(next));
  absl::MutexLock lock2(&s2->mu);
  ASSERT_TRUE(s2->status.ok()) << s2->status;
  EXPECT_EQ(s2->last.cached_tokens, kept->token_count);
}

TEST_F(DetachedTurnTest, ACancelledTurnKeepsNothing) {
  engine_.set_before_call([] { absl::SleepFor(absl::Milliseconds(1)); });
  DetachedTurnRequest r;
  r.turn = Chat({{Role::kUser, "Go on", "input"}}, 4000);
  r.turn.ignore_eos = true;
  r.turn.stop = {};
  r.keep_as = KeepAs{"kept", 0, nullptr};
  auto stream = std::make_shared<RecordingStream>();
  const int64_t inserts = cache_->stats().inserts;
  app_->StartDetachedTurn(kCaller, std::move(r), stream);
  stream->first_chunk.WaitForNotification();
  stream->cancelled = true;
  stream->finished.WaitForNotification();
  absl::MutexLock lock(&stream->mu);
  // (The template's "\n\n" could end the reply before the cancel; the fake
  // model's greedy path from this prompt does not produce it.)
  EXPECT_EQ(stream->status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(app_->GetSession(kCaller, "kept").status().code(),
            absl::StatusCode::kNotFound);
  // Only the prompt's state, computed before the client left, was cached.
  EXPECT_EQ(cache_->stats().inserts, inserts + 1);
}

TEST_F(DetachedTurnTest, KeepingAsATakenIdIsRefusedBeforeComputing) {
  ASSERT_TRUE(Create("taken", "").ok());
  DetachedTurnRequest r;
  r.turn = Chat({{Role::kUser, "Hi", "input"}}, 4);
  r.keep_as = KeepAs{"taken", 0, nullptr};
  const int64_t fed = engine_.tokens_fed();
  auto s = Run(std::move(r));
  absl::MutexLock lock(&s->mu);
  EXPECT_EQ(s->status.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(engine_.tokens_fed(), fed);
}

TEST_F(DetachedTurnTest, ContinuingFromAnUnknownSessionIsNotFound) {
  DetachedTurnRequest r;
  r.turn = Chat({{Role::kUser, "Hi", "input"}}, 4);
  r.turn.session_id = "nope";
  auto s = Run(std::move(r));
  absl::MutexLock lock(&s->mu);
  EXPECT_EQ(s->status.code(), absl::StatusCode::kNotFound);
}

TEST_F(DetachedTurnTest, ARawTextTurnCachesItsPromptAndReply) {
  DetachedTurnRequest r;
  r.turn.text = "Once upon a time";
  r.turn.sampling.temperature = 0;
  r.turn.max_tokens = 6;
  r.turn.ignore_eos = true;
  auto first = Run(r);
  std::string continued;
  {
    absl::MutexLock lock(&first->mu);
    ASSERT_TRUE(first->status.ok()) << first->status;
    continued = r.turn.text + first->text + " and then";
  }
  DetachedTurnRequest next = r;
  next.turn.text = continued;
  auto second = Run(std::move(next));
  absl::MutexLock lock(&second->mu);
  ASSERT_TRUE(second->status.ok()) << second->status;
  EXPECT_EQ(second->last.cached_tokens, 16 + 6);
}

TEST_F(DetachedTurnTest, MessageListsContinueASession) {
  ASSERT_TRUE(Create("s", "").ok());
  TurnRequest t = Chat({{Role::kSystem, "Be brief.", "messages[0].content"},
                        {Role::kUser, "Hi", "messages[1].content"}},
                       3);
  t.session_id = "s";
  auto s = RunSessionTurn(std::move(t));
  absl::MutexLock lock(&s->mu);
  ASSERT_TRUE(s->status.ok()) << s->status;
  const std::string prompt = "System: Be brief.\n\nUser: Hi\n\nAssistant:";
  EXPECT_EQ(s->last.prompt_tokens, static_cast<int32_t>(prompt.size()));
  EXPECT_EQ(app_->GetSession(kCaller, "s")->token_count,
            static_cast<int64_t>(prompt.size() + s->ids.size()));
}

TEST_F(DetachedTurnTest, BadMessagesNameTheirField) {
  auto check = [&](std::vector<ChatMessage> messages, const std::string& want) {
    DetachedTurnRequest r;
    r.turn = Chat(std::move(messages), 4);
    auto s = Run(std::move(r));
    absl::MutexLock lock(&s->mu);
    EXPECT_EQ(s->status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s->status.message()), HasSubstr(want));
  };
  check({}, "message is empty");  // no list: the (empty) text is the message
  check({{Role::kUser, "", "messages[0].content"}},
        "messages[0].content is empty");
  check({{Role::kUser, "ok", "messages[0].content"},
         {Role::kUser, "bad \xff byte", "messages[1].content"}},
        "messages[1].content is not valid UTF-8");
}

}  // namespace
}  // namespace rwkv::server
