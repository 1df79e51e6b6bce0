// GenerateReactor: the server-streaming reactor of one Generate/Chat call and
// the TurnStream the application layer writes into. Chunks are queued and
// written one at a time (one StartWrite in flight, gRFC L67); Finish() is
// called exactly once, after the last write, also for cancelled calls; OnDone()
// deletes the reactor. The sink part is shared with the scheduler (shared_ptr)
// and outlives the reactor: once the call is done, late chunks are dropped.
// Admission as UnaryCall's: the constructor enters the call gate, Admit()
// authenticates (or ends the call).
// Thread-safe; never blocks in a reaction.
#ifndef RWKV_SERVER_RPC_GENERATE_REACTOR_H_
#define RWKV_SERVER_RPC_GENERATE_REACTOR_H_

#include <atomic>
#include <deque>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "rwkv/v1/chat.pb.h"
#include "server/app/app_types.h"
#include "server/rpc/rpc_env.h"

namespace rwkv::server {

class GenerateReactor final
    : public grpc::ServerWriteReactor<rwkv::v1::GenerateResponse> {
 public:
  // `method` and `session_id` go into the call's request log record.
  GenerateReactor(grpc::CallbackServerContext* ctx, const RpcEnv& env,
                  absl::string_view method, absl::string_view session_id);

  // The caller, or nullopt once the call has been ended (UNAVAILABLE while
  // shutting down, UNAUTHENTICATED).
  std::optional<Caller> Admit();

  // The stream to hand to the application layer.
  std::shared_ptr<TurnStream> stream() const;
  // Ends the call before any turn started (validation errors).
  void FinishNow(const grpc::Status& status);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  class Sink;
  grpc::CallbackServerContext* const ctx_;
  const RpcEnv env_;
  const bool entered_;  // the call entered the gate (leaves in OnDone)
  std::shared_ptr<Sink> sink_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_RPC_GENERATE_REACTOR_H_
