// RecordingSink: a TurnSink for scheduler tests. Records every chunk, the
// final state's hash (FakeEngine) and token count, or the error; `finished`
// is notified when the turn ends. Check() says CANCELLED once cancel() is
// called (or once `cancel_after_chunks` chunks have arrived).
#ifndef RWKV_TESTS_TESTING_RECORDING_SINK_H_
#define RWKV_TESTS_TESTING_RECORDING_SINK_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "server/sched/job.h"
#include "tests/testing/fake_engine.h"

namespace rwkv::testing {

struct TurnRecord {
  absl::Notification finished;
  absl::Mutex mu;
  std::vector<server::TurnChunk> chunks ABSL_GUARDED_BY(mu);
  std::vector<int32_t> ids ABSL_GUARDED_BY(mu);
  std::string text ABSL_GUARDED_BY(mu);
  absl::Status status ABSL_GUARDED_BY(mu);
  bool completed ABSL_GUARDED_BY(mu) = false;
  uint32_t final_hash ABSL_GUARDED_BY(mu) = 0;
  int64_t final_tokens ABSL_GUARDED_BY(mu) = 0;
  server::FinishReason finish ABSL_GUARDED_BY(mu) = server::FinishReason::kNone;
  std::atomic<bool> cancelled{false};
  int cancel_after_chunks = -1;
};

class RecordingSink final : public server::TurnSink {
 public:
  explicit RecordingSink(std::shared_ptr<TurnRecord> record)
      : record_(std::move(record)) {}

  absl::Status Check() const override {
    return record_->cancelled.load() ? absl::CancelledError("test cancelled")
                                     : absl::OkStatus();
  }
  void OnChunk(server::TurnChunk chunk) override {
    absl::MutexLock lock(&record_->mu);
    Add(chunk);
    record_->chunks.push_back(std::move(chunk));
    if (record_->cancel_after_chunks >= 0 &&
        static_cast<int>(record_->chunks.size()) >=
            record_->cancel_after_chunks) {
      record_->cancelled = true;
    }
  }
  void OnComplete(engine::State final_state, absl::Span<const float>,
                  server::TurnChunk last) override {
    {
      absl::MutexLock lock(&record_->mu);
      Add(last);
      record_->completed = true;
      record_->finish = last.finish_reason;
      record_->final_hash = FakeEngine::HashOf(final_state);
      record_->final_tokens = final_state.token_count();
      record_->chunks.push_back(std::move(last));
    }
    record_->finished.Notify();
  }
  void OnError(absl::Status status) override {
    {
      absl::MutexLock lock(&record_->mu);
      record_->status = status;
    }
    record_->finished.Notify();
  }

 private:
  void Add(const server::TurnChunk& c)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(record_->mu) {
    record_->ids.insert(record_->ids.end(), c.token_ids.begin(),
                        c.token_ids.end());
    record_->text += c.text;
  }
  std::shared_ptr<TurnRecord> record_;
};

}  // namespace rwkv::testing

#endif  // RWKV_TESTS_TESTING_RECORDING_SINK_H_
