#include "tools/bits_per_byte.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace rwkv::tools {
namespace {

// -log2 softmax(logits)[target], in double.
double Bits(absl::Span<const float> logits, int32_t target) {
  double max = -INFINITY;
  for (float v : logits) max = std::max(max, static_cast<double>(v));
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - max);
  const double logp = static_cast<double>(logits[target]) - max - std::log(sum);
  return -logp / std::log(2.0);
}

struct Doc {
  std::vector<int32_t> ids;
  std::vector<int64_t> bytes;  // of each token
  size_t next = 1;             // index of the next token to score
  engine::State state;
};

}  // namespace

absl::StatusOr<BitsPerByte> MeasureBitsPerByte(
    engine::Engine& engine, const engine::Tokenizer& tokenizer,
    const std::vector<std::string>& texts, int batch) {
  BitsPerByte out;
  batch = std::max(1, batch);
  for (size_t begin = 0; begin < texts.size(); begin += batch) {
    const size_t end = std::min(texts.size(), begin + batch);
    std::vector<Doc> docs;
    for (size_t i = begin; i < end; ++i) {
      absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(texts[i]);
      if (!ids.ok()) return ids.status();
      if (ids->size() < 2) continue;
      Doc d;
      d.ids = *std::move(ids);
      for (int32_t id : d.ids) {
        absl::StatusOr<std::string> b =
            tokenizer.Decode(absl::MakeConstSpan(&id, 1));
        if (!b.ok()) return b.status();
        d.bytes.push_back(static_cast<int64_t>(b->size()));
      }
      d.state = engine.NewState();
      docs.push_back(std::move(d));
    }
    out.texts += static_cast<int64_t>(docs.size());
    // Step 0 feeds every text's first token; each later step scores the
    // next token of every text that has one, then feeds it.
    std::vector<int32_t> feed;
    std::vector<engine::State*> states;
    std::vector<Doc*> active;
    for (Doc& d : docs) {
      feed.push_back(d.ids[0]);
      states.push_back(&d.state);
      active.push_back(&d);
    }
    while (!active.empty()) {
      absl::StatusOr<engine::Logits> logits = engine.ForwardBatch(feed, states);
      if (!logits.ok()) return logits.status();
      std::vector<Doc*> still;
      feed.clear();
      states.clear();
      for (size_t r = 0; r < active.size(); ++r) {
        Doc& d = *active[r];
        const int32_t target = d.ids[d.next];
        out.bits += Bits(logits->Row(static_cast<int>(r)), target);
        out.tokens_scored += 1;
        out.bytes_scored += d.bytes[d.next];
        d.next += 1;
        if (d.next < d.ids.size()) {
          feed.push_back(target);
          states.push_back(&d.state);
          still.push_back(&d);
        }
      }
      active = std::move(still);
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> ReadJsonlTexts(const std::string& path,
                                                        int64_t max_texts) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::vector<std::string> texts;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("text") ||
        !j["text"].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_no,
                       ": expected a JSON object with a string \"text\""));
    }
    texts.push_back(j["text"].get<std::string>());
    if (max_texts > 0 && static_cast<int64_t>(texts.size()) >= max_texts) {
      break;
    }
  }
  return texts;
}

}  // namespace rwkv::tools
