// StopMatcher: finds stop strings in streamed text and decides how much of
// the text may be sent now. Text that could still become the start of a stop
// string is held back until it cannot. Thread-compatible (one per stream).
#ifndef RWKV_SERVER_SCHED_STOP_MATCHER_H_
#define RWKV_SERVER_SCHED_STOP_MATCHER_H_

#include <string>
#include <vector>

namespace rwkv::server {

class StopMatcher {
 public:
  // Empty strings in `stops` are ignored.
  explicit StopMatcher(std::vector<std::string> stops);

  // Appends `text` (complete UTF-8). Returns the text that is safe to send.
  // If a stop string completed, stopped() is true and the returned text is
  // everything before it (the stop string and anything after it are dropped).
  std::string Push(const std::string& text);
  // Everything still held back (call at the end of a turn without stop).
  std::string Flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SCHED_STOP_MATCHER_H_
