#include "client/chat_client.h"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/grpc_status.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/byte_buffer.h"

namespace rwkv::client {
namespace {

using ::rwkv::v1::ChatService;

// Calls a unary stub method and converts the status.
template <typename Response, typename Call>
absl::StatusOr<Response> Unary(Call call) {
  Response response;
  grpc::Status status = call(&response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

// Reads a varint from bytes[*pos..]; false on truncation.
bool ReadVarint(const std::string& bytes, size_t* pos, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64 && *pos < bytes.size(); shift += 7) {
    uint8_t byte = static_cast<uint8_t>(bytes[(*pos)++]);
    *value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

// The text of a PEM file, or an error naming `flag` and the file.
absl::StatusOr<std::string> ReadPemFile(const std::string& path,
                                        absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": cannot read ", path));
  }
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  if (text.find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": ", path, " is not a PEM file (no -----BEGIN line)"));
  }
  return text;
}

}  // namespace

std::unique_ptr<ChatClient> ChatClient::Connect(const std::string& address) {
  return *Connect(address, ConnectOptions());
}

absl::StatusOr<std::unique_ptr<ChatClient>> ChatClient::Connect(
    const std::string& address, const ConnectOptions& options) {
  grpc::ChannelArguments args;
  // Replies can carry state files (a 169M model's state is ~0.6 MB; larger
  // models more); lift the 4 MB default receive limit.
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::InsecureChannelCredentials();
  if (options.tls()) {
    grpc::SslCredentialsOptions ssl;
    absl::StatusOr<std::string> ca =
        ReadPemFile(options.tls_ca_file, "--tls-ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls-cert and --tls-key go together (mutual TLS)");
    }
    if (!options.tls_cert_file.empty()) {
      absl::StatusOr<std::string> cert =
          ReadPemFile(options.tls_cert_file, "--tls-cert");
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key =
          ReadPemFile(options.tls_key_file, "--tls-key");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    if (!options.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options.tls_server_name);
    }
    credentials = grpc::SslCredentials(ssl);
  } else if (!options.tls_cert_file.empty() || !options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert/--tls-key need --tls-ca (the CA of the server's "
        "certificate)");
  }
  auto client = std::make_unique<ChatClient>(
      grpc::CreateCustomChannel(address, credentials, args));
  client->set_api_key(options.api_key);
  return client;
}

void ChatClient::AddApiKey(grpc::ClientContext* context) const {
  if (!api_key_.empty()) {
    context->AddMetadata("authorization", "Bearer " + api_key_);
  }
}

ChatClient::ChatClient(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)), stub_(ChatService::NewStub(channel_)) {}

void ChatClient::PrepareUnary(grpc::ClientContext* context,
                              const std::string& session_id) const {
  AddApiKey(context);
  if (unary_timeout_ != absl::InfiniteDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + unary_timeout_));
  }
  AddSessionHeader(context, session_id);
}

void ChatClient::AddSessionHeader(grpc::ClientContext* context,
                                  const std::string& session_id) {
  // Metadata values must be printable ASCII; valid ids always are, and a
  // bad one is left for the server to reject by name.
  if (session_id.empty() || session_id.size() > 128) return;
  for (char c : session_id) {
    if (c < 0x20 || c > 0x7e) return;
  }
  context->AddMetadata(std::string(kSessionIdHeader), session_id);
}

absl::StatusOr<rwkv::v1::SessionInfo> ChatClient::CreateSession(
    const rwkv::v1::CreateSessionRequest& request) {
  return Unary<rwkv::v1::SessionInfo>([&](rwkv::v1::SessionInfo* response) {
    grpc::ClientContext context;
    PrepareUnary(&context, request.session_id());
    return stub_->CreateSession(&context, request, response);
  });
}

absl::StatusOr<rwkv::v1::SessionInfo> ChatClient::GetOrCreateSession(
    const std::string& session_id, int64_t ttl_seconds, bool* created) {
  rwkv::v1::CreateSessionRequest request;
  request.set_session_id(session_id);
  request.set_ttl_seconds(ttl_seconds);
  return GetOrCreateSession(request, created);
}

absl::StatusOr<rwkv::v1::SessionInfo> ChatClient::GetOrCreateSession(
    const rwkv::v1::CreateSessionRequest& request, bool* created) {
  if (created != nullptr) *created = false;
  const std::string& session_id = request.session_id();
  const int64_t ttl_seconds = request.ttl_seconds();
  absl::StatusOr<rwkv::v1::SessionInfo> info = CreateSession(request);
  if (info.ok()) {
    if (created != nullptr) *created = true;
    return info;
  }
  if (absl::IsNotFound(info.status()) &&
      !request.initial_state_name().empty() && !session_id.empty()) {
    // The server does not know the initial state's name; that only matters
    // for a new session: an existing one is simply continued.
    absl::StatusOr<rwkv::v1::SessionInfo> existing = GetSession(session_id);
    if (existing.ok()) {
      if (ttl_seconds > 0) return TouchSession(session_id, ttl_seconds);
      return existing;
    }
    return info.status();
  }
  if (!absl::IsAlreadyExists(info.status()) || session_id.empty()) {
    return info.status();
  }
  if (ttl_seconds > 0) return TouchSession(session_id, ttl_seconds);
  return GetSession(session_id);
}

absl::StatusOr<rwkv::v1::SessionInfo> ChatClient::GetSession(
    const std::string& session_id) {
  rwkv::v1::GetSessionRequest request;
  request.set_session_id(session_id);
  return Unary<rwkv::v1::SessionInfo>([&](rwkv::v1::SessionInfo* response) {
    grpc::ClientContext context;
    PrepareUnary(&context, request.session_id());
    return stub_->GetSession(&context, request, response);
  });
}

absl::StatusOr<rwkv::v1::ListSessionsResponse> ChatClient::ListSessions(
    int32_t page_size, const std::string& page_token) {
  rwkv::v1::ListSessionsRequest request;
  request.set_page_size(page_size);
  request.set_page_token(page_token);
  return Unary<rwkv::v1::ListSessionsResponse>(
      [&](rwkv::v1::ListSessionsResponse* response) {
        grpc::ClientContext context;
        PrepareUnary(&context);
        return stub_->ListSessions(&context, request, response);
      });
}

absl::Status ChatClient::DeleteSession(const std::string& session_id) {
  rwkv::v1::DeleteSessionRequest request;
  request.set_session_id(session_id);
  return Unary<rwkv::v1::DeleteSessionResponse>(
             [&](rwkv::v1::DeleteSessionResponse* response) {
               grpc::ClientContext context;
               PrepareUnary(&context, request.session_id());
               return stub_->DeleteSession(&context, request, response);
             })
      .status();
}

absl::StatusOr<rwkv::v1::SessionInfo> ChatClient::ResetSession(
    const std::string& session_id) {
  rwkv::v1::ResetSessionRequest request;
  request.set_session_id(session_id);
  return Unary<rwkv::v1::SessionInfo>([&](rwkv::v1::SessionInfo* response) {
    grpc::ClientContext context;
    PrepareUnary(&context, request.session_id());
    return stub_->ResetSession(&context, request, response);
  });
}

absl::StatusOr<rwkv::v1::SessionInfo> ChatClient::TouchSession(
    const std::string& session_id, int64_t ttl_seconds) {
  rwkv::v1::TouchSessionRequest request;
  request.set_session_id(session_id);
  request.set_ttl_seconds(ttl_seconds);
  return Unary<rwkv::v1::SessionInfo>([&](rwkv::v1::SessionInfo* response) {
    grpc::ClientContext context;
    PrepareUnary(&context, request.session_id());
    return stub_->TouchSession(&context, request, response);
  });
}

template <typename Request>
absl::StatusOr<TurnResult> ChatClient::RunTurn(
    const Request& request, const ChunkCallback& on_chunk,
    TurnCanceller* canceller,
    std::unique_ptr<grpc::ClientReader<rwkv::v1::GenerateResponse>> (
        ChatService::Stub::*method)(grpc::ClientContext*, const Request&)) {
  grpc::ClientContext context;
  AddApiKey(&context);
  if (turn_timeout_ != absl::InfiniteDuration()) {
    context.set_deadline(absl::ToChronoTime(absl::Now() + turn_timeout_));
  }
  AddSessionHeader(&context, request.session_id());
  if (canceller != nullptr) canceller->Attach(&context);
  std::unique_ptr<grpc::ClientReader<rwkv::v1::GenerateResponse>> reader =
      ((*stub_).*method)(&context, request);
  TurnResult result;
  rwkv::v1::GenerateResponse chunk;
  bool cancelled = false;
  while (reader->Read(&chunk)) {
    ++result.chunks;
    result.text += chunk.text();
    result.token_ids.insert(result.token_ids.end(), chunk.token_ids().begin(),
                            chunk.token_ids().end());
    if (chunk.finish_reason() != rwkv::v1::FINISH_REASON_UNSPECIFIED) {
      result.finish_reason = chunk.finish_reason();
    }
    if (chunk.has_usage()) result.usage = chunk.usage();
    if (chunk.token_count() > 0) result.token_count = chunk.token_count();
    if (!cancelled && on_chunk && !on_chunk(chunk)) {
      cancelled = true;
      context.TryCancel();
    }
  }
  grpc::Status status = reader->Finish();
  if (canceller != nullptr) canceller->Detach();
  if (!status.ok()) return FromGrpcStatus(status);
  return result;
}

absl::StatusOr<TurnResult> ChatClient::Chat(
    const rwkv::v1::ChatRequest& request, const ChunkCallback& on_chunk,
    TurnCanceller* canceller) {
  return RunTurn<rwkv::v1::ChatRequest>(request, on_chunk, canceller,
                                        &ChatService::Stub::Chat);
}

absl::StatusOr<TurnResult> ChatClient::Generate(
    const rwkv::v1::GenerateRequest& request, const ChunkCallback& on_chunk,
    TurnCanceller* canceller) {
  return RunTurn<rwkv::v1::GenerateRequest>(request, on_chunk, canceller,
                                            &ChatService::Stub::Generate);
}

absl::StatusOr<rwkv::v1::SessionInfo> ChatClient::ForkSession(
    const std::string& source_session_id, const std::string& new_session_id,
    int64_t ttl_seconds) {
  rwkv::v1::ForkSessionRequest request;
  request.set_source_session_id(source_session_id);
  request.set_new_session_id(new_session_id);
  request.set_ttl_seconds(ttl_seconds);
  return Unary<rwkv::v1::SessionInfo>([&](rwkv::v1::SessionInfo* response) {
    grpc::ClientContext context;
    PrepareUnary(&context, request.source_session_id());
    return stub_->ForkSession(&context, request, response);
  });
}

absl::StatusOr<rwkv::v1::SessionInfo> ChatClient::BlendSessions(
    const rwkv::v1::BlendSessionsRequest& request) {
  return Unary<rwkv::v1::SessionInfo>([&](rwkv::v1::SessionInfo* response) {
    grpc::ClientContext context;
    PrepareUnary(&context, request.session_a());
    return stub_->BlendSessions(&context, request, response);
  });
}

absl::StatusOr<rwkv::v1::SessionInfo> ChatClient::DecaySession(
    const std::string& session_id, double factor) {
  rwkv::v1::DecaySessionRequest request;
  request.set_session_id(session_id);
  request.set_factor(factor);
  return Unary<rwkv::v1::SessionInfo>([&](rwkv::v1::SessionInfo* response) {
    grpc::ClientContext context;
    PrepareUnary(&context, request.session_id());
    return stub_->DecaySession(&context, request, response);
  });
}

absl::StatusOr<rwkv::v1::InspectSessionResponse> ChatClient::InspectSession(
    const std::string& session_id) {
  rwkv::v1::InspectSessionRequest request;
  request.set_session_id(session_id);
  return Unary<rwkv::v1::InspectSessionResponse>(
      [&](rwkv::v1::InspectSessionResponse* response) {
        grpc::ClientContext context;
        PrepareUnary(&context, request.session_id());
        return stub_->InspectSession(&context, request, response);
      });
}

absl::StatusOr<rwkv::v1::SessionDistanceResponse> ChatClient::SessionDistance(
    const std::string& session_a, const std::string& session_b) {
  rwkv::v1::SessionDistanceRequest request;
  request.set_session_a(session_a);
  request.set_session_b(session_b);
  return Unary<rwkv::v1::SessionDistanceResponse>(
      [&](rwkv::v1::SessionDistanceResponse* response) {
        grpc::ClientContext context;
        PrepareUnary(&context, request.session_a());
        return stub_->SessionDistance(&context, request, response);
      });
}

absl::StatusOr<rwkv::v1::ExportStateResponse> ChatClient::ExportState(
    const std::string& session_id, const std::string& dtype) {
  rwkv::v1::ExportStateRequest request;
  request.set_session_id(session_id);
  request.set_dtype(dtype);
  return Unary<rwkv::v1::ExportStateResponse>(
      [&](rwkv::v1::ExportStateResponse* response) {
        grpc::ClientContext context;
        PrepareUnary(&context, request.session_id());
        return stub_->ExportState(&context, request, response);
      });
}

absl::StatusOr<rwkv::v1::SessionInfo> ChatClient::ImportState(
    const rwkv::v1::ImportStateRequest& request) {
  return Unary<rwkv::v1::SessionInfo>([&](rwkv::v1::SessionInfo* response) {
    grpc::ClientContext context;
    PrepareUnary(&context, request.session_id());
    return stub_->ImportState(&context, request, response);
  });
}

absl::StatusOr<rwkv::v1::ExportStateResponse> ChatClient::ExportStateToFile(
    const std::string& session_id, const std::string& dtype,
    const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("empty file name");
  absl::StatusOr<rwkv::v1::ExportStateResponse> response =
      ExportState(session_id, dtype);
  if (!response.ok()) return response.status();
  const std::string temp = absl::StrCat(path, ".tmp");
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out.write(response->state().data(),
              static_cast<std::streamsize>(response->state().size()));
    out.flush();
    if (!out) {
      std::remove(temp.c_str());
      return absl::UnavailableError(absl::StrCat("cannot write ", temp));
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    return absl::UnavailableError(
        absl::StrCat("cannot rename ", temp, " to ", path));
  }
  return response;
}

absl::StatusOr<rwkv::v1::SessionInfo> ChatClient::ImportStateFromFile(
    const std::string& path, rwkv::v1::ImportStateRequest request) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::string bytes((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", path));
  request.set_state(std::move(bytes));
  return ImportState(request);
}

absl::StatusOr<rwkv::v1::ModelInfo> ChatClient::GetModelInfo() {
  rwkv::v1::GetModelInfoRequest request;
  return Unary<rwkv::v1::ModelInfo>([&](rwkv::v1::ModelInfo* response) {
    grpc::ClientContext context;
    PrepareUnary(&context);
    return stub_->GetModelInfo(&context, request, response);
  });
}

absl::StatusOr<HealthStatus> ChatClient::CheckHealth(
    const std::string& service) {
  // grpc.health.v1 is called through the generic stub with hand-encoded
  // messages (HealthCheckRequest{string service = 1},
  // HealthCheckResponse{enum status = 1}), so no second copy of health.proto
  // is registered in the process's descriptor pool.
  std::string request_bytes;
  if (!service.empty()) {
    if (service.size() > 127) {
      return absl::InvalidArgumentError("health service name too long");
    }
    request_bytes.push_back(static_cast<char>(0x0a));
    request_bytes.push_back(static_cast<char>(service.size()));
    request_bytes += service;
  }
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext context;
  PrepareUnary(&context);
  grpc::GenericStub generic(channel_);
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
      generic.PrepareUnaryCall(&context, "/grpc.health.v1.Health/Check",
                               request, &cq);
  call->StartCall();
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (!status.ok()) return FromGrpcStatus(status);

  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) {
    return absl::InternalError("cannot read the health response");
  }
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  size_t pos = 0;
  uint64_t result = 0;  // absent field: UNKNOWN
  while (pos < bytes.size()) {
    uint64_t key = 0;
    if (!ReadVarint(bytes, &pos, &key) || (key & 7) != 0) {
      return absl::InternalError("malformed health response");
    }
    uint64_t value = 0;
    if (!ReadVarint(bytes, &pos, &value)) {
      return absl::InternalError("malformed health response");
    }
    if ((key >> 3) == 1) result = value;
  }
  switch (result) {
    case 1:
      return HealthStatus::kServing;
    case 2:
      return HealthStatus::kNotServing;
    default:
      return HealthStatus::kUnknown;
  }
}

}  // namespace rwkv::client
