// ConversationRenderer and the chat template's pieces: what each message
// renders to, the prefix property (a conversation's tokens are a prefix of
// its continuation's, also with a BPE tokenizer that merges across piece
// boundaries when the whole text is tokenized at once), and errors that
// name the field.
#include "server/app/conversation_renderer.h"

#include <memory>
#include <string>
#include <vector>

#include "engine/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/app/field_error.h"
#include "tests/testing/shared_data.h"

namespace rwkv::server {
namespace {

using ::testing::HasSubstr;
using Role = ChatMessage::Role;

class Renderer {
 public:
  explicit Renderer(std::unique_ptr<engine::Tokenizer> tokenizer,
                    std::string pattern = "User: {message}\n\nAssistant:",
                    int max_tokens = 1000)
      : tokenizer_(std::move(tokenizer)),
        template_(std::move(pattern), {"\n\n"}),
        prompts_(tokenizer_.get(), 1000, 1 << 20),
        renderer_(&template_, &prompts_, max_tokens) {}

  absl::StatusOr<std::vector<int32_t>> Render(
      const std::vector<ChatMessage>& m) const {
    return renderer_.Render(m, "messages");
  }
  std::string Text(const std::vector<ChatMessage>& m) const {
    absl::StatusOr<std::vector<int32_t>> ids = Render(m);
    EXPECT_TRUE(ids.ok()) << ids.status();
    return ids.ok() ? *tokenizer_->Decode(*ids) : "";
  }
  const ConversationRenderer& get() const { return renderer_; }
  const engine::Tokenizer& tokenizer() const { return *tokenizer_; }

 private:
  std::unique_ptr<engine::Tokenizer> tokenizer_;
  ChatTemplate template_;
  PromptTokenizer prompts_;
  ConversationRenderer renderer_;
};

ChatMessage M(Role role, std::string content) {
  return ChatMessage{role, std::move(content), "messages[i].content"};
}

TEST(ConversationRendererTest, RendersEachRoleInTheTemplate) {
  Renderer r(*engine::Tokenizer::Load("bytes"));
  EXPECT_EQ(r.Text({M(Role::kUser, "Hi")}), "User: Hi\n\nAssistant:");
  EXPECT_EQ(r.Text({M(Role::kSystem, "Be brief."), M(Role::kUser, "Hi"),
                    M(Role::kAssistant, " Hello."), M(Role::kUser, "Bye")}),
            "System: Be brief.\n\nUser: Hi\n\nAssistant: Hello.\n\n"
            "User: Bye\n\nAssistant:");
  // A user message the assistant does not answer next has no assistant
  // prefix; a reply that follows no user message gets one, and so does the
  // turn asked for after a non-user message.
  EXPECT_EQ(r.Text({M(Role::kUser, "a"), M(Role::kUser, "b")}),
            "User: a\n\nUser: b\n\nAssistant:");
  EXPECT_EQ(r.Text({M(Role::kSystem, "S"), M(Role::kAssistant, " r")}),
            "System: S\n\nAssistant: r\n\nAssistant:");
  // Blank lines inside a message cannot end its turn early.
  EXPECT_EQ(r.Text({M(Role::kUser, "a\r\n\r\n\nb")}),
            "User: a\nb\n\nAssistant:");
  // A reply may be empty (the model ended its turn at once).
  EXPECT_EQ(r.Text({M(Role::kUser, "a"), M(Role::kAssistant, ""),
                    M(Role::kUser, "b")}),
            "User: a\n\nAssistant:\n\nUser: b\n\nAssistant:");
}

TEST(ConversationRendererTest, ATemplateThatDoesNotSplitStillRenders) {
  Renderer r(*engine::Tokenizer::Load("bytes"), "Q: {message} A:");
  EXPECT_EQ(r.Text({M(Role::kUser, "x"), M(Role::kAssistant, " y"),
                    M(Role::kUser, "z")}),
            "Q: x A: y\n\nQ: z A:");
}

TEST(ConversationRendererTest, ErrorsNameTheField) {
  Renderer r(*engine::Tokenizer::Load("bytes"), "User: {message}\n\nAssistant:",
             /*max_tokens=*/40);
  EXPECT_THAT(std::string(r.Render({}).status().message()),
              HasSubstr("messages is empty"));
  EXPECT_EQ(ErrorField(r.Render({}).status()), "messages");
  absl::Status s =
      r.Render({ChatMessage{Role::kUser, "", "messages[3].content"}}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("messages[3].content is empty"));
  // The field is also attached (the HTTP front's "param").
  EXPECT_EQ(ErrorField(s), "messages[3].content");
  s = r.Render({ChatMessage{Role::kSystem, "\xc3(", "messages[0].content"}})
          .status();
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("messages[0].content is not valid UTF-8"));
  EXPECT_EQ(ErrorField(s), "messages[0].content");
  s = r.Render({ChatMessage{Role::kUser, std::string(20, 'a'), "m0"},
                ChatMessage{Role::kAssistant, " b", "messages[1].content"}})
          .status();
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("conversation is too long: more than 40 tokens at "
                        "messages[1].content"));
  EXPECT_EQ(ErrorField(s), "messages[1].content");
}

// The prefix property, checked with the GPT-NeoX BPE tokenizer, which merges
// across pieces (".\n\n" is one token) when a whole text is tokenized.
TEST(ConversationRendererTest, AConversationsTokensArePrefixOfItsContinuation) {
  const std::string path =
      rwkv::testing::SharedFile("tokenizers/20B_tokenizer.json");
  if (path.empty())
    GTEST_SKIP() << "no ../shared/tokenizers/20B_tokenizer.json";
  Renderer r(*engine::Tokenizer::Load(path));
  std::vector<ChatMessage> conversation = {
      M(Role::kSystem, "You answer in one sentence.")};
  const std::vector<std::string> replies = {" Paris.", " It is 42!", " Well...",
                                            " Yes.\nNo.", " ok"};
  std::vector<int32_t> previous;
  for (size_t i = 0; i < replies.size(); ++i) {
    conversation.push_back(
        M(Role::kUser, "Question " + std::to_string(i) + "?"));
    absl::StatusOr<std::vector<int32_t>> now = r.Render(conversation);
    ASSERT_TRUE(now.ok()) << now.status();
    ASSERT_GE(now->size(), previous.size());
    EXPECT_TRUE(std::equal(previous.begin(), previous.end(), now->begin()))
        << "turn " << i;
    // The reply as a resent history renders it follows the prompt exactly.
    absl::StatusOr<std::vector<int32_t>> reply =
        r.get().RenderReply(replies[i]);
    ASSERT_TRUE(reply.ok());
    previous = *now;
    previous.insert(previous.end(), reply->begin(), reply->end());
    conversation.push_back(M(Role::kAssistant, replies[i]));
  }
  // Tokenizing the whole text at once would not have the property: "\n\n"
  // at the end of a text is one token, before "User" two.
  const std::string before = "User: Hi\n\nAssistant: Paris.\n\n";
  std::vector<int32_t> whole_before = *r.tokenizer().Encode(before);
  std::vector<int32_t> whole_after =
      *r.tokenizer().Encode(before + "User: Bye\n\nAssistant:");
  EXPECT_FALSE(std::equal(whole_before.begin(), whole_before.end(),
                          whole_after.begin()));
}

}  // namespace
}  // namespace rwkv::server
