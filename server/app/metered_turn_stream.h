// MeteredTurnStream: a TurnStream decorator that times a turn for
// TurnMetrics (queue time, time to first token, inter-token latency,
// end-to-end latency, outcome and usage) and passes everything on to the
// front's stream. The application layer wraps every front's stream in one,
// so gRPC and HTTP turns are measured in one place. Thread-safe.
#ifndef RWKV_SERVER_APP_METERED_TURN_STREAM_H_
#define RWKV_SERVER_APP_METERED_TURN_STREAM_H_

#include <functional>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/app/app_types.h"
#include "server/app/turn_metrics.h"

namespace rwkv::server {

class MeteredTurnStream final : public TurnStream {
 public:
  using Clock = std::function<absl::Time()>;

  // `metrics` must outlive the stream; `clock` defaults to absl::Now. The
  // request's time is the construction time.
  MeteredTurnStream(std::shared_ptr<TurnStream> inner, TurnMetrics* metrics,
                    Front front, Clock clock = nullptr);

  bool IsCancelled() const override { return inner_->IsCancelled(); }
  void OnStarted() override ABSL_LOCKS_EXCLUDED(mu_);
  void OnChunk(TurnChunk chunk) override ABSL_LOCKS_EXCLUDED(mu_);
  void OnFinish(const absl::Status& status) override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Time Now() const { return clock_ ? clock_() : absl::Now(); }

  const std::shared_ptr<TurnStream> inner_;
  TurnMetrics* const metrics_;
  const Front front_;
  const Clock clock_;
  const absl::Time start_;

  absl::Mutex mu_;
  // When the last chunk with tokens arrived (unset before the first).
  std::optional<absl::Time> last_token_ ABSL_GUARDED_BY(mu_);
  // The last chunk's usage, once it has come.
  std::optional<TurnChunk> last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_APP_METERED_TURN_STREAM_H_
