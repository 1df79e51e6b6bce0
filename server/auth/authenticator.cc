#include "server/auth/authenticator.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace rwkv::server {

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(
    AuthOptions options) {
  std::unique_ptr<Authenticator> auth(new Authenticator(std::move(options)));
  if (auth->enabled()) {
    absl::StatusOr<size_t> loaded = auth->Reload();
    if (!loaded.ok()) return loaded.status();
  }
  return auth;
}

absl::StatusOr<size_t> Authenticator::Reload() {
  absl::StatusOr<ApiKeyTable> table = ApiKeyTable::Load(options_.api_keys_file);
  if (!table.ok()) return table.status();
  const size_t n = table->size();
  auto shared = std::make_shared<const ApiKeyTable>(*std::move(table));
  absl::MutexLock lock(&mu_);
  table_ = std::move(shared);
  return n;
}

absl::StatusOr<Caller> Authenticator::Authenticate(
    absl::string_view authorization) const {
  if (!enabled()) return Caller::Anonymous(options_.tenant_limits);
  std::shared_ptr<const ApiKeyTable> table;
  {
    absl::MutexLock lock(&mu_);
    table = table_;
  }
  absl::string_view value = absl::StripAsciiWhitespace(authorization);
  if (value.empty()) {
    return absl::UnauthenticatedError(
        "missing API key: send 'authorization: Bearer <key>'");
  }
  if (value.size() < 7 || !absl::StartsWithIgnoreCase(value, "bearer ")) {
    return absl::UnauthenticatedError(
        "the authorization must be 'Bearer <key>'");
  }
  const absl::string_view key = absl::StripAsciiWhitespace(value.substr(7));
  const ApiKeyTable::Entry* entry =
      key.empty() || key.size() > 4096 ? nullptr : table->Find(key);
  if (entry == nullptr) return absl::UnauthenticatedError("invalid API key");
  return Caller::Tenant(
      entry->tenant, entry->admin,
      table->OverridesOf(entry->tenant).Apply(options_.tenant_limits));
}

}  // namespace rwkv::server
