// HttpLoadTarget: LoadTarget over rwkv-server's HTTP front: sessions through
// /v1/sessions, turns as streamed POST /v1/completions on the session
// (X-Session-Id; Server-Sent Events with the ignore_eos and return_token_ids
// extensions, so every token is counted as on gRPC, also tokens without
// text), the scheduler's counters from /metrics (decode steps, tokens
// generated). One HTTP
// connection per call (HTTP/1.1 has one request in flight per connection).
// Thread-safe.
#ifndef RWKV_CLIENT_HTTP_LOAD_TARGET_H_
#define RWKV_CLIENT_HTTP_LOAD_TARGET_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "client/load_target.h"
#include "httplib.h"

namespace rwkv::client {

class HttpLoadTarget final : public LoadTarget {
 public:
  // `address` is HOST:PORT of the HTTP front. INVALID_ARGUMENT if it is not.
  static absl::StatusOr<std::unique_ptr<HttpLoadTarget>> Create(
      const std::string& address);

  std::string Describe() const override { return "http " + address_; }
  absl::StatusOr<TargetInfo> Info() override;
  absl::Status CreateSession(const std::string& id) override;
  absl::Status DeleteSession(const std::string& id) override;
  absl::StatusOr<int> Generate(const LoadTurn& turn,
                               const OnTokens& on_tokens) override;

  // A new client of the server (one per thread or call).
  std::unique_ptr<httplib::Client> Connect() const;

 private:
  HttpLoadTarget(std::string address, std::string host, int port)
      : address_(std::move(address)), host_(std::move(host)), port_(port) {}

  const std::string address_;
  const std::string host_;
  const int port_;
};

// The error an HTTP answer carries ("HTTP 404: <message>"), or OK for 2xx.
absl::Status HttpStatus(const httplib::Result& result, absl::string_view what);

}  // namespace rwkv::client

#endif  // RWKV_CLIENT_HTTP_LOAD_TARGET_H_
