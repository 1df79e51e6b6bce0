// RecordingStream: a TurnStream for application-layer tests that records
// what the client would see (ids, text, the last chunk, the status);
// `first_chunk` and `finished` are notified as those arrive. Setting
// `cancelled` plays a client that leaves.
#ifndef RWKV_TESTS_TESTING_RECORDING_STREAM_H_
#define RWKV_TESTS_TESTING_RECORDING_STREAM_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "server/app/app_types.h"

namespace rwkv::testing {

class RecordingStream final : public server::TurnStream {
 public:
  bool IsCancelled() const override { return cancelled.load(); }
  void OnStarted() override { started.Notify(); }
  void OnChunk(server::TurnChunk chunk) override {
    absl::MutexLock lock(&mu);
    ids.insert(ids.end(), chunk.token_ids.begin(), chunk.token_ids.end());
    text += chunk.text;
    if (chunk.finish_reason != server::FinishReason::kNone) last = chunk;
    ++chunks;
    if (chunks == 1) first_chunk.Notify();
  }
  void OnFinish(const absl::Status& s) override {
    {
      absl::MutexLock lock(&mu);
      status = s;
    }
    if (!first_chunk.HasBeenNotified()) first_chunk.Notify();
    finished.Notify();
  }

  std::atomic<bool> cancelled{false};
  absl::Notification started;
  absl::Notification first_chunk;
  absl::Notification finished;
  absl::Mutex mu;
  std::vector<int32_t> ids ABSL_GUARDED_BY(mu);
  std::string text ABSL_GUARDED_BY(mu);
  server::TurnChunk last ABSL_GUARDED_BY(mu);
  int chunks ABSL_GUARDED_BY(mu) = 0;
  absl::Status status ABSL_GUARDED_BY(mu);
};

}  // namespace rwkv::testing

#endif  // RWKV_TESTS_TESTING_RECORDING_STREAM_H_
