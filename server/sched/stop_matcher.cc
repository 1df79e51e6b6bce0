#include "server/sched/stop_matcher.h"

#include <algorithm>
#include <utility>

namespace rwkv::server {

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (std::string& s : stops) {
    if (!s.empty()) stops_.push_back(std::move(s));
  }
}

std::string StopMatcher::Push(const std::string& text) {
  if (stopped_) return "";
  held_ += text;
  if (stops_.empty()) return std::exchange(held_, "");
  // Earliest complete stop string.
  size_t first = std::string::npos;
  for (const std::string& s : stops_) {
    first = std::min(first, held_.find(s));
  }
  if (first != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, first);
    held_.clear();
    return out;
  }
  // Hold back the longest suffix that is a proper prefix of a stop string.
  size_t keep = 0;
  for (const std::string& s : stops_) {
    const size_t max_len = std::min(s.size() - 1, held_.size());
    for (size_t len = max_len; len > keep; --len) {
      if (held_.compare(held_.size() - len, len, s, 0, len) == 0) {
        keep = len;
        break;
      }
    }
  }
  // Never split a UTF-8 character: move the cut back to a character start.
  size_t cut = held_.size() - keep;
  while (cut > 0 && cut < held_.size() &&
         (static_cast<unsigned char>(held_[cut]) & 0xC0) == 0x80) {
    --cut;
  }
  std::string out = held_.substr(0, cut);
  held_.erase(0, cut);
  return out;
}

std::string StopMatcher::Flush() { return std::exchange(held_, ""); }

}  // namespace rwkv::server
