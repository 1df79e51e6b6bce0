#include "server/app/chat_template.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace rwkv::server {
namespace {

constexpr char kSlot[] = "{message}";
constexpr size_t kSlotSize = sizeof(kSlot) - 1;

// Blank lines collapse to one newline.
std::string CollapseBlankLines(std::string text) {
  while (text.find("\n\n") != std::string::npos) {
    text = absl::StrReplaceAll(text, {{"\n\n", "\n"}});
  }
  return text;
}

// A message as it goes into the template: CRLF as LF, no blank lines.
std::string CleanMessage(absl::string_view message) {
  return CollapseBlankLines(absl::StrReplaceAll(message, {{"\r\n", "\n"}}));
}

std::string Fill(absl::string_view pattern, absl::string_view message) {
  return absl::StrReplaceAll(pattern, {{kSlot, CleanMessage(message)}});
}

}  // namespace

ChatTemplate::ChatTemplate(std::string pattern, std::vector<std::string> stops,
                           std::string system_pattern)
    : pattern_(std::move(pattern)),
      stops_(std::move(stops)),
      system_pattern_(std::move(system_pattern)) {
  const size_t slot = pattern_.find(kSlot);
  if (!stops_.empty()) separator_ = stops_.front();
  if (slot == std::string::npos || separator_.empty()) return;
  const absl::string_view after =
      absl::string_view(pattern_).substr(slot + kSlotSize);
  if (!absl::StartsWith(after, separator_)) return;
  splits_ = true;
  user_prefix_ = pattern_.substr(0, slot);
  assistant_prefix_ = std::string(after.substr(separator_.size()));
}

std::string ChatTemplate::Format(absl::string_view message) const {
  return Fill(pattern_, message);
}

std::string ChatTemplate::UserMessage(absl::string_view message) const {
  if (!splits_) return Format(message);
  return absl::StrCat(user_prefix_, CleanMessage(message), separator_);
}

std::string ChatTemplate::SystemMessage(absl::string_view message) const {
  return Fill(system_pattern_, message);
}

std::string ChatTemplate::Reply(absl::string_view text) const {
  return absl::StrCat(CollapseBlankLines(std::string(text)), separator_);
}

}  // namespace rwkv::server
