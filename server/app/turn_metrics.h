// TurnMetrics: where the application layer reports every turn's timings and
// outcome, labelled by the front it came through (the server's Prometheus
// metrics implement it; server/metrics). Reported by MeteredTurnStream.
// Implementations must be thread-safe and must not block.
#ifndef RWKV_SERVER_APP_TURN_METRICS_H_
#define RWKV_SERVER_APP_TURN_METRICS_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "server/app/app_types.h"

namespace rwkv::server {

// How a turn ended and what it cost.
struct TurnOutcome {
  // "stop", "length" or "eos" for a completed turn; "cancelled" (the client
  // left), "aborted" (the session was deleted), "unavailable" (shutdown)
  // or "error" (refused or failed) otherwise.
  std::string reason;
  absl::Duration e2e;  // from the request to the turn's end
  // Usage of a completed turn (0 otherwise).
  int64_t prompt_tokens = 0;  // cached ones included
  int64_t cached_tokens = 0;
  int64_t generated_tokens = 0;
};

class TurnMetrics {
 public:
  virtual ~TurnMetrics() = default;
  // From the request until the scheduler began its prompt.
  virtual void ObserveQueueTime(Front front, absl::Duration d) = 0;
  // From the request until the first chunk of the reply.
  virtual void ObserveTimeToFirstToken(Front front, absl::Duration d) = 0;
  // The time between two chunks, attributed evenly to the chunk's
  // `tokens` tokens (one observation each).
  virtual void ObserveInterToken(Front front, absl::Duration d, int tokens) = 0;
  virtual void ObserveFinished(Front front, const TurnOutcome& outcome) = 0;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_APP_TURN_METRICS_H_
