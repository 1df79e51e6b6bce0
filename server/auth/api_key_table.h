// ApiKeyTable: the parsed --api-keys file. One key per line:
//
//   <sha256-hex-of-key> <tenant> <role> [limit=value ...]   # comment
//
// role is `user` or `admin`; tenant is 1-64 characters of [A-Za-z0-9._-];
// the optional limits override the server's --tenant-* defaults for that
// tenant: max-sessions=N, max-state-bytes=BYTES (K/M/G suffixes),
// max-concurrent-turns=N, tokens-per-minute=N (0 = no limit). Blank lines
// and lines starting with # are ignored. A malformed line, a repeated hash
// or two lines giving one tenant different limits make the whole file
// refused with an error naming the line. Keys themselves are never stored:
// HashApiKey() (rwkv-server --hash-key) prints the hash to write.
// Immutable once parsed; thread-safe.
#ifndef RWKV_SERVER_AUTH_API_KEY_TABLE_H_
#define RWKV_SERVER_AUTH_API_KEY_TABLE_H_

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/app/caller.h"

namespace rwkv::server {

// Per-tenant overrides of the default limits (unset: the default).
struct TenantOverrides {
  std::optional<int64_t> max_sessions;
  std::optional<int64_t> max_state_bytes;
  std::optional<int64_t> max_concurrent_turns;
  std::optional<int64_t> tokens_per_minute;

  TenantLimits Apply(TenantLimits defaults) const;
};

// SHA-256 of `key` as 64 lowercase hex digits.
std::string HashApiKey(absl::string_view key);

class ApiKeyTable {
 public:
  struct Entry {
    std::array<uint8_t, 32> hash;
    std::string tenant;
    bool admin = false;
  };

  // `source` names the file in errors.
  static absl::StatusOr<ApiKeyTable> Parse(absl::string_view text,
                                           absl::string_view source);
  // Reads and parses `path` (at most 16 MiB).
  static absl::StatusOr<ApiKeyTable> Load(const std::string& path);

  // The entry whose hash is SHA-256(key), or null. Compares against every
  // entry in constant time (no early exit), so timing says nothing about
  // which hashes exist.
  const Entry* Find(absl::string_view key) const;
  // The tenant's overrides (none: all unset).
  TenantOverrides OverridesOf(const std::string& tenant) const;

  size_t size() const { return entries_.size(); }
  size_t tenant_count() const;

 private:
  std::vector<Entry> entries_;
  std::map<std::string, TenantOverrides> overrides_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_AUTH_API_KEY_TABLE_H_
