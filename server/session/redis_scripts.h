// The Lua scripts RedisSessionStore runs inside Redis, each atomic (Redis
// runs one script at a time, and with appendonly its effects reach the AOF
// as one MULTI/EXEC, so a crash never leaves half of one applied).
//
// Key layout (P = "rwkv:<model fingerprint>:", so two models never see each
// other's records; computed inside the scripts from ARGV[1] = P, hence no
// Redis Cluster support):
//   P s:<id>   hash: m = encoded metadata (record_codec.h), d = the state in
//              the state-file format (absent when the state is the initial
//              state), v = version (decimal; compare-and-set compares it as
//              a string, never as a Lua number), u = last use and t = TTL (ms;
//              authoritative over the copies inside m, since touches change
//              only them), k = the initial state's content key. The key
//              expires (PEXPIREAT) at u + t: Redis drops expired sessions.
//   P l:<id>   the store lease: "<replica token>:<lease number>", PX.
//   P i:<key>  a content-addressed initial state (state-file bytes). Shared
//              by every session whose initial state has that content; never
//              reference-counted: its expiry is kept at or after the latest
//              expiry of the sessions that use it (every put, touch and
//              lease pushes it), so it outlives them, and Redis drops it once
//              none can use it any more. A deleted session's initial state
//              thus lingers until the TTLs of the sessions that used it run
//              out.
//   P ids      sorted set of ids (score 0, for ListSessions in id order).
//   P exp      sorted set of ids by expiry time (Count = ZCOUNT after now;
//              entries of expired records are pruned).
#ifndef RWKV_SERVER_SESSION_REDIS_SCRIPTS_H_
#define RWKV_SERVER_SESSION_REDIS_SCRIPTS_H_

namespace rwkv::server {

enum class RedisScript {
  // ARGV: P, then ops, each one of
  //   P id expected_version new_version lease_token meta data has_data(0|1)
  //     initial_key initial_bytes has_initial_bytes(0|1) last_used_ms ttl_ms
  //   T id last_used_ms ttl_ms(0: keep)
  //   D id
  // Checks every put first (compare-and-set on v, expected 0 = must not
  // exist; the lease is this token's or no one's; a referenced initial state
  // exists unless its bytes are sent), then applies all. Returns "OK", or
  // "EXISTS id", "GONE id", "CHANGED id", "LEASED id", "NOINITIAL key"
  // (nothing applied).
  kApply,
  // ARGV: P id token lease_ms now_ms stale. Takes the lease (free, already
  // this token's: a retried call is harmless, or held by `stale`: a lease
  // of this replica's it no longer holds, whose release was lost) for
  // lease_ms and marks the record used. Returns {"OK", m, u, t},
  // {"BUSY", holder} or {"GONE"}.
  kAcquire,
  // ARGV: P lease_ms now_ms, then (id, token) pairs. Extends each lease held
  // by its token (and marks the record used). Returns per pair 1 (renewed),
  // 0 (lost: another or no holder) or -1 (the record is gone).
  kRenew,
  // ARGV: P id token. Deletes the lease if token holds it. Returns 1 or 0.
  kRelease,
  // ARGV: P id. Returns {m, u, t, leased(0|1)} or nil.
  kStamp,
  // ARGV: P after limit. Up to `limit` records with ids after `after` (""
  // = from the start) in id order: {m1, u1, t1, m2, ...}; prunes index
  // entries of records that are gone.
  kList,
  // ARGV: P now_ms limit. Removes up to `limit` index entries of records
  // whose expiry has passed and that Redis has dropped. Returns how many.
  kPrune,
};
inline constexpr int kRedisScriptCount = 7;

// The script's source (the shared helpers included).
const char* RedisScriptSource(RedisScript script);
const char* RedisScriptName(RedisScript script);

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SESSION_REDIS_SCRIPTS_H_
