#include "server/rpc/generate_reactor.h"

#include <utility>

#include "absl/time/clock.h"
#include "common/log.h"
#include "server/app/retry_hint.h"
#include "server/rpc/proto_convert.h"
#include "server/rpc/status_util.h"

namespace rwkv::server {

// The shared half. Decisions are taken under mu_; StartWrite/Finish are
// called after releasing it (Finish may run OnDone inline).
class GenerateReactor::Sink final : public TurnStream {
 public:
  Sink(GenerateReactor* reactor, grpc::CallbackServerContext* ctx,
       common::RequestLog log)
      : reactor_(reactor),
        ctx_(ctx),
        log_(std::move(log)),
        start_(absl::Now()) {}

  void SetTenant(const std::string& tenant) {
    absl::MutexLock lock(&mu_);
    log_.tenant = tenant;
  }

  bool IsCancelled() const override { return cancelled_.load(); }

  void OnChunk(TurnChunk chunk) override {
    if (chunk.finish_reason != FinishReason::kNone) {
      absl::MutexLock lock(&mu_);
      log_.prompt_tokens = chunk.prompt_tokens;
      log_.generated_tokens = chunk.generated_tokens;
      log_.cached_tokens = chunk.cached_tokens;
    }
    rwkv::v1::GenerateResponse msg = ToProto(std::move(chunk));
    const rwkv::v1::GenerateResponse* to_write = nullptr;
    {
      absl::MutexLock lock(&mu_);
      if (finishing_ || cancelled_.load()) return;
      queue_.push_back(std::move(msg));
      if (!writing_) {
        writing_ = true;
        to_write = &queue_.front();
      }
    }
    if (to_write != nullptr) reactor_->StartWrite(to_write);
  }

  void OnFinish(const absl::Status& status) override {
    Finish(ToGrpcStatus(status), RetryHintSeconds(status));
  }

  void Finish(const grpc::Status& status,
              std::optional<int64_t> retry_after = std::nullopt) {
    {
      absl::MutexLock lock(&mu_);
      if (finish_status_.has_value()) return;
      if (retry_after.has_value()) {
        ctx_->AddTrailingMetadata("retry-after", std::to_string(*retry_after));
      }
      finish_status_ = status;
      log_.status_code = static_cast<absl::StatusCode>(status.error_code());
      log_.status_message = status.error_message();
      log_.duration = absl::Now() - start_;
      common::LogRequest(log_);
      if (writing_) return;  // OnWriteDone finishes
      finishing_ = true;
    }
    reactor_->Finish(status);
  }

  void WriteDone(bool ok) {
    const rwkv::v1::GenerateResponse* to_write = nullptr;
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      queue_.pop_front();
      if (!ok) {
        cancelled_.store(true);
        queue_.clear();
      }
      if (!queue_.empty()) {
        to_write = &queue_.front();
      } else {
        writing_ = false;
        if (finish_status_.has_value() && !finishing_) {
          finishing_ = true;
          finish = finish_status_;
        }
      }
    }
    if (to_write != nullptr) {
      reactor_->StartWrite(to_write);
    } else if (finish.has_value()) {
      reactor_->Finish(*finish);
    }
  }

  void Cancel() { cancelled_.store(true); }

 private:
  GenerateReactor* const reactor_;  // valid until Finish() has been called
  grpc::CallbackServerContext* const ctx_;  // the same
  common::RequestLog log_ ABSL_GUARDED_BY(mu_);
  const absl::Time start_;
  std::atomic<bool> cancelled_{false};
  absl::Mutex mu_;
  std::deque<rwkv::v1::GenerateResponse> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  // Set once the turn is over (status to finish with).
  std::optional<grpc::Status> finish_status_ ABSL_GUARDED_BY(mu_);
  // True once reactor_->Finish has been (or is being) called.
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
};

namespace {

common::RequestLog NewLog(absl::string_view method,
                          absl::string_view session_id) {
  common::RequestLog log;
  log.method = std::string(method);
  log.session_id = std::string(session_id);
  return log;
}

}  // namespace

GenerateReactor::GenerateReactor(grpc::CallbackServerContext* ctx,
                                 const RpcEnv& env, absl::string_view method,
                                 absl::string_view session_id)
    : ctx_(ctx),
      env_(env),
      entered_(env.gate->Enter().ok()),
      sink_(std::make_shared<Sink>(this, ctx, NewLog(method, session_id))) {}

std::optional<Caller> GenerateReactor::Admit() {
  if (!entered_) {
    sink_->OnFinish(CallGate::ShuttingDown());
    return std::nullopt;
  }
  absl::StatusOr<Caller> caller = CallerOf(env_, *ctx_);
  if (!caller.ok()) {
    sink_->OnFinish(caller.status());
    return std::nullopt;
  }
  sink_->SetTenant(caller->tenant);
  return *std::move(caller);
}

std::shared_ptr<TurnStream> GenerateReactor::stream() const { return sink_; }

void GenerateReactor::FinishNow(const grpc::Status& status) {
  sink_->Finish(status);
}

void GenerateReactor::OnWriteDone(bool ok) { sink_->WriteDone(ok); }

void GenerateReactor::OnCancel() { sink_->Cancel(); }

void GenerateReactor::OnDone() {
  if (entered_) env_.gate->Leave();
  delete this;
}

}  // namespace rwkv::server
