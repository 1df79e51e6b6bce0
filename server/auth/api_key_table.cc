#include "server/auth/api_key_table.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/byte_size.h"
#include "server/quote.h"

namespace rwkv::server {
namespace {

constexpr size_t kMaxFileBytes = size_t{16} << 20;

std::array<uint8_t, 32> Sha256(absl::string_view data) {
  std::array<uint8_t, 32> out;
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
         out.data());
  return out;
}

bool ParseHexHash(absl::string_view hex, std::array<uint8_t, 32>* out) {
  if (hex.size() != 64) return false;
  for (size_t i = 0; i < 32; ++i) {
    int v = 0;
    for (int k = 0; k < 2; ++k) {
      const char c = absl::ascii_tolower(hex[2 * i + k]);
      int d;
      if (c >= '0' && c <= '9') {
        d = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        d = c - 'a' + 10;
      } else {
        return false;
      }
      v = v * 16 + d;
    }
    (*out)[i] = static_cast<uint8_t>(v);
  }
  return true;
}

bool ValidTenant(absl::string_view t) {
  if (t.empty() || t.size() > 64) return false;
  for (char c : t) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

// Parses one `name=value` limit into `o`; an error message or "".
std::string ParseLimit(absl::string_view field, TenantOverrides* o) {
  const size_t eq = field.find('=');
  if (eq == absl::string_view::npos) {
    return absl::StrCat("expected limit=value, got ", Quote(field));
  }
  const absl::string_view name = field.substr(0, eq);
  const absl::string_view value = field.substr(eq + 1);
  int64_t n = 0;
  if (name == "max-state-bytes") {
    absl::StatusOr<int64_t> bytes = common::ParseByteSize(value);
    if (!bytes.ok()) return absl::StrCat(name, ": ", bytes.status().message());
    o->max_state_bytes = *bytes;
    return "";
  }
  std::optional<int64_t>* slot = nullptr;
  if (name == "max-sessions") {
    slot = &o->max_sessions;
  } else if (name == "max-concurrent-turns") {
    slot = &o->max_concurrent_turns;
  } else if (name == "tokens-per-minute") {
    slot = &o->tokens_per_minute;
  } else {
    return absl::StrCat(
        "unknown limit ", Quote(name),
        " (expected max-sessions, max-state-bytes, max-concurrent-turns or "
        "tokens-per-minute)");
  }
  if (!absl::SimpleAtoi(value, &n) || n < 0 || n > (int64_t{1} << 40)) {
    return absl::StrCat(name, " must be a whole number in [0, 2^40], got ",
                        Quote(value));
  }
  *slot = n;
  return "";
}

bool SameLimits(const TenantOverrides& a, const TenantOverrides& b) {
  return a.max_sessions == b.max_sessions &&
         a.max_state_bytes == b.max_state_bytes &&
         a.max_concurrent_turns == b.max_concurrent_turns &&
         a.tokens_per_minute == b.tokens_per_minute;
}

bool HasAny(const TenantOverrides& o) {
  return o.max_sessions || o.max_state_bytes || o.max_concurrent_turns ||
         o.tokens_per_minute;
}

}  // namespace

TenantLimits TenantOverrides::Apply(TenantLimits d) const {
  if (max_sessions) d.max_sessions = *max_sessions;
  if (max_state_bytes) d.max_state_bytes = *max_state_bytes;
  if (max_concurrent_turns) d.max_concurrent_turns = *max_concurrent_turns;
  if (tokens_per_minute) d.tokens_per_minute = *tokens_per_minute;
  return d;
}

std::string HashApiKey(absl::string_view key) {
  const std::array<uint8_t, 32> h = Sha256(key);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : h) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

absl::StatusOr<ApiKeyTable> ApiKeyTable::Parse(absl::string_view text,
                                               absl::string_view source) {
  ApiKeyTable table;
  // Where each tenant's limits were given (line number), to name conflicts.
  std::map<std::string, int> limits_line;
  std::set<std::array<uint8_t, 32>> hashes;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    auto error = [&](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, " line ", line_no, ": ", why));
    };
    if (const size_t hash = line.find('#'); hash != absl::string_view::npos) {
      line = line.substr(0, hash);
    }
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    if (fields.size() < 3) {
      return error(
          "expected '<sha256-hex> <tenant> <user|admin> [limit=value ...]'");
    }
    Entry entry;
    if (!ParseHexHash(fields[0], &entry.hash)) {
      return error(absl::StrCat(
          "the key hash must be 64 hex digits (SHA-256; rwkv-server "
          "--hash-key prints it), got ",
          fields[0].size(), " characters"));
    }
    if (!hashes.insert(entry.hash).second) {
      return error("this key hash is already listed on an earlier line");
    }
    if (!ValidTenant(fields[1])) {
      return error(
          absl::StrCat("tenant must be 1-64 characters of [A-Za-z0-9._-], got ",
                       Quote(fields[1])));
    }
    entry.tenant = std::string(fields[1]);
    if (fields[2] == "admin") {
      entry.admin = true;
    } else if (fields[2] != "user") {
      return error(
          absl::StrCat("role must be user or admin, got ", Quote(fields[2])));
    }
    TenantOverrides o;
    for (size_t i = 3; i < fields.size(); ++i) {
      if (std::string why = ParseLimit(fields[i], &o); !why.empty()) {
        return error(why);
      }
    }
    if (HasAny(o)) {
      auto [it, inserted] = table.overrides_.emplace(entry.tenant, o);
      if (!inserted && !SameLimits(it->second, o)) {
        return error(absl::StrCat("tenant ", Quote(entry.tenant),
                                  " was given other limits on line ",
                                  limits_line[entry.tenant]));
      }
      if (inserted) limits_line[entry.tenant] = line_no;
    }
    table.entries_.push_back(std::move(entry));
  }
  return table;
}

absl::StatusOr<ApiKeyTable> ApiKeyTable::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read the API keys file ", Quote(path)));
  }
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxFileBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the API keys file ", Quote(path), " is larger than 16 MiB"));
    }
  }
  return Parse(text, path);
}

const ApiKeyTable::Entry* ApiKeyTable::Find(absl::string_view key) const {
  const std::array<uint8_t, 32> h = Sha256(key);
  const Entry* found = nullptr;
  for (const Entry& e : entries_) {
    // CRYPTO_memcmp takes the same time whatever the bytes; every entry is
    // compared.
    const bool match = CRYPTO_memcmp(e.hash.data(), h.data(), h.size()) == 0;
    if (match) found = &e;
  }
  return found;
}

TenantOverrides ApiKeyTable::OverridesOf(const std::string& tenant) const {
  auto it = overrides_.find(tenant);
  return it == overrides_.end() ? TenantOverrides{} : it->second;
}

size_t ApiKeyTable::tenant_count() const {
  std::set<std::string> tenants;
  for (const Entry& e : entries_) tenants.insert(e.tenant);
  return tenants.size();
}

}  // namespace rwkv::server
