#include "server/http/openai_request.h"

#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"
#include "server/quote.h"

namespace rwkv::server {

using json = nlohmann::json;

absl::Status CheckObject(const json& body) {
  if (!body.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the request body must be a JSON object, got ", JsonTypeName(body)));
  }
  return absl::OkStatus();
}

absl::Status RejectUnsupported(const JsonFields& body,
                               const std::vector<Unsupported>& list) {
  for (const Unsupported& u : list) {
    const json* v = body.Find(u.name);
    if (v != nullptr && u.refuses(*v)) {
      return FieldError(body.Path(u.name),
                        absl::StrCat("is not supported: ", u.why));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadSampling(const JsonFields& body, SamplingRequest& sampling) {
  absl::StatusOr<std::optional<double>> temperature =
      body.Number("temperature", 0, 2);
  if (!temperature.ok()) return temperature.status();
  absl::StatusOr<std::optional<double>> top_p = body.Number("top_p", 0, 1);
  if (!top_p.ok()) return top_p.status();
  absl::StatusOr<std::optional<double>> presence =
      body.Number("presence_penalty", -2, 2);
  if (!presence.ok()) return presence.status();
  absl::StatusOr<std::optional<double>> frequency =
      body.Number("frequency_penalty", -2, 2);
  if (!frequency.ok()) return frequency.status();
  absl::StatusOr<std::optional<int64_t>> seed =
      body.Integer("seed", 0, std::numeric_limits<int64_t>::max());
  if (!seed.ok()) return seed.status();
  absl::StatusOr<std::optional<int64_t>> top_k =
      body.Integer("top_k", 0, std::numeric_limits<int32_t>::max());
  if (!top_k.ok()) return top_k.status();
  if (*temperature) sampling.temperature = static_cast<float>(**temperature);
  if (*top_p) sampling.top_p = static_cast<float>(**top_p);
  if (*presence) sampling.presence_penalty = static_cast<float>(**presence);
  if (*frequency) sampling.frequency_penalty = static_cast<float>(**frequency);
  if (*seed) sampling.seed = static_cast<uint64_t>(**seed);
  if (*top_k) sampling.top_k = static_cast<int32_t>(**top_k);
  return absl::OkStatus();
}

absl::StatusOr<int32_t> ReadMaxTokens(const JsonFields& body,
                                      const std::vector<const char*>& names,
                                      int32_t limit) {
  for (const char* name : names) {
    absl::StatusOr<std::optional<int64_t>> n = body.Integer(name, 1, limit);
    if (!n.ok()) return n.status();
    if (n->has_value()) return static_cast<int32_t>(**n);
  }
  return 0;
}

absl::StatusOr<std::vector<std::string>> ReadStop(const JsonFields& body) {
  const json* stop = body.Find("stop");
  if (stop == nullptr) return std::vector<std::string>();
  if (stop->is_string())
    return std::vector<std::string>{stop->get<std::string>()};
  if (!stop->is_array()) {
    return FieldError("stop", absl::StrCat("must be a string or an array of "
                                           "strings, got ",
                                           JsonTypeName(*stop)));
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < stop->size(); ++i) {
    if (!(*stop)[i].is_string()) {
      return FieldError(
          absl::StrCat("stop[", i, "]"),
          absl::StrCat("must be a string, got ", JsonTypeName((*stop)[i])));
    }
    out.push_back((*stop)[i].get<std::string>());
  }
  return out;
}

absl::StatusOr<std::string> ReadContent(const json& content,
                                        const std::string& path) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) {
    return FieldError(path, absl::StrCat("must be a string or an array of "
                                         "text parts, got ",
                                         JsonTypeName(content)));
  }
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string part_path = absl::StrCat(path, "[", i, "]");
    const json& part = content[i];
    if (!part.is_object()) {
      return FieldError(part_path, absl::StrCat("must be an object, got ",
                                                JsonTypeName(part)));
    }
    JsonFields fields(part, part_path);
    absl::StatusOr<std::optional<std::string>> type = fields.String("type");
    if (!type.ok()) return type.status();
    const std::string t = type->value_or("");
    if (t != "text" && t != "input_text" && t != "output_text") {
      return FieldError(fields.Path("type"),
                        absl::StrCat(Quote(t),
                                     " is not supported: only text "
                                     "parts (text, input_text, "
                                     "output_text)"));
    }
    absl::StatusOr<std::optional<std::string>> part_text =
        fields.String("text");
    if (!part_text.ok()) return part_text.status();
    if (!part_text->has_value()) {
      return FieldError(fields.Path("text"), "is missing");
    }
    text += **part_text;
  }
  return text;
}

namespace {

absl::StatusOr<ChatMessage::Role> ReadRole(const JsonFields& fields) {
  absl::StatusOr<std::optional<std::string>> role = fields.String("role");
  if (!role.ok()) return role.status();
  if (!role->has_value()) return FieldError(fields.Path("role"), "is missing");
  const std::string& r = **role;
  if (r == "system" || r == "developer") return ChatMessage::Role::kSystem;
  if (r == "user") return ChatMessage::Role::kUser;
  if (r == "assistant") return ChatMessage::Role::kAssistant;
  if (r == "tool" || r == "function") {
    return FieldError(fields.Path("role"),
                      absl::StrCat(Quote(r),
                                   " is not supported: this server "
                                   "has no tool calling"));
  }
  return FieldError(fields.Path("role"),
                    absl::StrCat("must be system, developer, user or "
                                 "assistant, got ",
                                 Quote(r)));
}

}  // namespace

absl::StatusOr<std::vector<ChatMessage>> ReadMessages(const json& list,
                                                      const std::string& path) {
  if (!list.is_array()) {
    return FieldError(path, absl::StrCat("must be an array of messages, got ",
                                         JsonTypeName(list)));
  }
  if (list.empty()) return FieldError(path, "is empty");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string item = absl::StrCat(path, "[", i, "]");
    if (!list[i].is_object()) {
      return FieldError(
          item, absl::StrCat("must be an object, got ", JsonTypeName(list[i])));
    }
    JsonFields fields(list[i], item);
    if (fields.Find("tool_calls") != nullptr ||
        fields.Find("function_call") != nullptr) {
      return FieldError(fields.Path("tool_calls"),
                        "is not supported: this server has no tool calling");
    }
    absl::StatusOr<ChatMessage::Role> role = ReadRole(fields);
    if (!role.ok()) return role.status();
    ChatMessage m;
    m.role = *role;
    m.field = fields.Path("content");
    if (const json* content = fields.Find("content")) {
      absl::StatusOr<std::string> text = ReadContent(*content, m.field);
      if (!text.ok()) return text.status();
      m.content = *std::move(text);
    } else if (m.role != ChatMessage::Role::kAssistant) {
      return FieldError(m.field, "is missing");
    }
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace rwkv::server
