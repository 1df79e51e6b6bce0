// Authenticator: turns a request's `authorization` value into the Caller
// (caller.h) every front hands to the application layer. With an API keys
// file (ApiKeyTable) the value must be "Bearer <key>" with a listed key:
// missing or unknown keys are UNAUTHENTICATED (the gRPC code; HTTP says
// 401). Without one, every request is the anonymous tenant, which sees all
// sessions. Reload() rereads the file (SIGHUP): a bad file keeps the keys in
// use and returns why. Thread-safe.
#ifndef RWKV_SERVER_AUTH_AUTHENTICATOR_H_
#define RWKV_SERVER_AUTH_AUTHENTICATOR_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/app/caller.h"
#include "server/auth/api_key_table.h"

namespace rwkv::server {

struct AuthOptions {
  // The API keys file; "" = no authentication.
  std::string api_keys_file;
  // Every tenant's limits unless its keys file line overrides them.
  TenantLimits tenant_limits;
};

class Authenticator {
 public:
  // Loads the keys file, if any (its error: a bad file).
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(
      AuthOptions options);

  // True if API keys are required.
  bool enabled() const { return !options_.api_keys_file.empty(); }

  // `authorization`: the header/metadata value ("" if absent).
  absl::StatusOr<Caller> Authenticate(absl::string_view authorization) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Rereads the keys file. On error the keys in use stay and the error says
  // why. Returns the number of keys loaded on success.
  absl::StatusOr<size_t> Reload() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  explicit Authenticator(AuthOptions options) : options_(std::move(options)) {}

  const AuthOptions options_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const ApiKeyTable> table_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_AUTH_AUTHENTICATOR_H_
