// Conversions between rwkv.v1 protos and the application layer's types
// (app_types.h, session_record.h, the engine's state reports). Pure
// functions. Strings that come from files or flags (model path, report
// text) are made valid UTF-8 for proto3.
#ifndef RWKV_SERVER_RPC_PROTO_CONVERT_H_
#define RWKV_SERVER_RPC_PROTO_CONVERT_H_

#include <string>

#include "engine/state_inspect.h"
#include "engine/state_ops.h"
#include "rwkv/v1/chat.pb.h"
#include "server/app/app_types.h"
#include "server/session/session_record.h"

namespace rwkv::server {

namespace pb = ::rwkv::v1;

// Requests.
SamplingRequest FromProto(const pb::SamplingParams& p);
TurnRequest FromProto(const pb::GenerateRequest& r);
TurnRequest FromProto(const pb::ChatRequest& r);
CreateSessionRequest FromProto(const pb::CreateSessionRequest& r);
ForkRequest FromProto(const pb::ForkSessionRequest& r);
BlendRequest FromProto(const pb::BlendSessionsRequest& r);
ImportRequest FromProto(const pb::ImportStateRequest& r);

// Results.
void ToProto(const SessionInfo& in, pb::SessionInfo* out);
void ToProto(const SessionPage& in, pb::ListSessionsResponse* out);
pb::GenerateResponse ToProto(TurnChunk chunk);
void ToProto(const std::string& session_id, const engine::StateReport& in,
             pb::InspectSessionResponse* out);
void ToProto(const engine::StateDistance& in, pb::SessionDistanceResponse* out);
void ToProto(ExportedState in, pb::ExportStateResponse* out);
void ToProto(const ModelInfo& in, pb::ModelInfo* out);

}  // namespace rwkv::server

#endif  // RWKV_SERVER_RPC_PROTO_CONVERT_H_
