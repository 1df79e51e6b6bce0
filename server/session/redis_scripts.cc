#include "server/session/redis_scripts.h"

#include <string>

namespace rwkv::server {
namespace {

// Helpers every script starts with.
constexpr char kPrelude[] = R"lua(
local P = ARGV[1]
local IDS = P .. 'ids'
local EXP = P .. 'exp'
local function skey(id) return P .. 's:' .. id end
local function lkey(id) return P .. 'l:' .. id end
local function ikey(k) return P .. 'i:' .. k end
local function ms(x) return string.format('%.0f', x) end
-- Pushes key's expiry to at least `at` (keys without one keep none).
local function extend(key, at)
  local e = redis.call('PEXPIRETIME', key)
  if e >= 0 and e < at then redis.call('PEXPIREAT', key, ms(at)) end
end
-- Marks record `id` used at `now`: last use, TTL (nil: keep), key expiry,
-- expiry index, initial state. Returns u, t, or nil if there is no record.
local function use(id, now, ttl)
  local s = skey(id)
  local r = redis.call('HMGET', s, 'u', 't', 'k')
  if not r[1] then return nil end
  local u = math.max(tonumber(r[1]), now)
  local t = ttl or tonumber(r[2])
  local at = u + t
  redis.call('HSET', s, 'u', ms(u), 't', ms(t))
  redis.call('PEXPIREAT', s, ms(at))
  redis.call('ZADD', EXP, ms(at), id)
  if r[3] and r[3] ~= '' then extend(ikey(r[3]), at) end
  return u, t
end
)lua";

constexpr char kApply[] = R"lua(
local ops = {}
local i = 2
while i <= #ARGV do
  local tag = ARGV[i]
  if tag == 'P' then
    ops[#ops + 1] = {tag = 'P', id = ARGV[i + 1], expected = ARGV[i + 2],
      v = ARGV[i + 3], token = ARGV[i + 4], m = ARGV[i + 5], d = ARGV[i + 6],
      has_d = ARGV[i + 7] == '1', k = ARGV[i + 8], kb = ARGV[i + 9],
      has_kb = ARGV[i + 10] == '1', u = tonumber(ARGV[i + 11]),
      t = tonumber(ARGV[i + 12])}
    i = i + 13
  elseif tag == 'T' then
    ops[#ops + 1] = {tag = 'T', id = ARGV[i + 1], u = tonumber(ARGV[i + 2]),
      t = tonumber(ARGV[i + 3])}
    i = i + 4
  elseif tag == 'D' then
    ops[#ops + 1] = {tag = 'D', id = ARGV[i + 1]}
    i = i + 2
  else
    return redis.error_reply('rwkv apply: unknown op ' .. tostring(tag))
  end
end
for _, o in ipairs(ops) do
  if o.tag == 'P' then
    local cur = redis.call('HGET', skey(o.id), 'v')
    if o.expected == '0' then
      if cur then return 'EXISTS ' .. o.id end
    elseif not cur then
      return 'GONE ' .. o.id
    elseif cur ~= o.expected then
      return 'CHANGED ' .. o.id
    end
    if o.token ~= '' then
      local holder = redis.call('GET', lkey(o.id))
      if holder and holder ~= o.token then return 'LEASED ' .. o.id end
    end
    if o.k ~= '' and not o.has_kb and redis.call('EXISTS', ikey(o.k)) == 0 then
      return 'NOINITIAL ' .. o.k
    end
  end
end
for _, o in ipairs(ops) do
  if o.tag == 'P' then
    local s = skey(o.id)
    local u = o.u
    local old = redis.call('HGET', s, 'u')
    if old then u = math.max(u, tonumber(old)) end
    local at = u + o.t
    redis.call('DEL', s)
    redis.call('HSET', s, 'm', o.m, 'v', o.v, 'u', ms(u), 't', ms(o.t),
               'k', o.k)
    if o.has_d then redis.call('HSET', s, 'd', o.d) end
    redis.call('PEXPIREAT', s, ms(at))
    redis.call('ZADD', IDS, 0, o.id)
    redis.call('ZADD', EXP, ms(at), o.id)
    if o.k ~= '' then
      if o.has_kb then
        redis.call('SET', ikey(o.k), o.kb, 'PXAT', ms(at), 'NX')
      end
      extend(ikey(o.k), at)
    end
    if o.token ~= '' and redis.call('GET', lkey(o.id)) == o.token then
      redis.call('DEL', lkey(o.id))
    end
  elseif o.tag == 'T' then
    local ttl = nil
    if o.t > 0 then ttl = o.t end
    use(o.id, o.u, ttl)
  else
    redis.call('DEL', skey(o.id), lkey(o.id))
    redis.call('ZREM', IDS, o.id)
    redis.call('ZREM', EXP, o.id)
  end
end
return 'OK'
)lua";

constexpr char kAcquire[] = R"lua(
local id, token, px, now = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local s = skey(id)
if redis.call('EXISTS', s) == 0 then return {'GONE'} end
local holder = redis.call('GET', lkey(id))
if holder and holder ~= token and holder ~= ARGV[6] then
  return {'BUSY', holder}
end
redis.call('SET', lkey(id), token, 'PX', px)
local u, t = use(id, now, nil)
return {'OK', redis.call('HGET', s, 'm'), ms(u), ms(t)}
)lua";

constexpr char kRenew[] = R"lua(
local px, now = ARGV[2], tonumber(ARGV[3])
local out = {}
for i = 4, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  if redis.call('EXISTS', skey(id)) == 0 then
    out[#out + 1] = -1
  elseif redis.call('GET', lkey(id)) ~= token then
    out[#out + 1] = 0
  else
    redis.call('PEXPIRE', lkey(id), px)
    use(id, now, nil)
    out[#out + 1] = 1
  end
end
return out
)lua";

constexpr char kRelease[] = R"lua(
if redis.call('GET', lkey(ARGV[2])) == ARGV[3] then
  redis.call('DEL', lkey(ARGV[2]))
  return 1
end
return 0
)lua";

constexpr char kStamp[] = R"lua(
local r = redis.call('HMGET', skey(ARGV[2]), 'm', 'u', 't')
if not r[1] then return false end
return {r[1], r[2], r[3], redis.call('EXISTS', lkey(ARGV[2]))}
)lua";

constexpr char kList[] = R"lua(
local after, limit = ARGV[2], tonumber(ARGV[3])
local out = {}
local from = '-'
if after ~= '' then from = '(' .. after end
while #out < limit * 3 do
  local ids = redis.call('ZRANGEBYLEX', IDS, from, '+', 'LIMIT', 0, limit)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    local r = redis.call('HMGET', skey(id), 'm', 'u', 't')
    if r[1] then
      out[#out + 1] = r[1]
      out[#out + 1] = r[2]
      out[#out + 1] = r[3]
      if #out >= limit * 3 then break end
    else
      redis.call('ZREM', IDS, id)
      redis.call('ZREM', EXP, id)
    end
  end
  from = '(' .. ids[#ids]
end
return out
)lua";

constexpr char kPrune[] = R"lua(
local ids = redis.call('ZRANGEBYSCORE', EXP, '-inf', ARGV[2], 'LIMIT', 0,
                       tonumber(ARGV[3]))
local n = 0
for _, id in ipairs(ids) do
  if redis.call('EXISTS', skey(id)) == 0 then
    redis.call('ZREM', EXP, id)
    redis.call('ZREM', IDS, id)
    n = n + 1
  end
end
return n
)lua";

const char* Body(RedisScript script) {
  switch (script) {
    case RedisScript::kApply:
      return kApply;
    case RedisScript::kAcquire:
      return kAcquire;
    case RedisScript::kRenew:
      return kRenew;
    case RedisScript::kRelease:
      return kRelease;
    case RedisScript::kStamp:
      return kStamp;
    case RedisScript::kList:
      return kList;
    case RedisScript::kPrune:
      break;
  }
  return kPrune;
}

}  // namespace

const char* RedisScriptSource(RedisScript script) {
  static const std::string* const sources = [] {
    auto* s = new std::string[kRedisScriptCount];
    for (int i = 0; i < kRedisScriptCount; ++i) {
      s[i] = std::string(kPrelude) + Body(static_cast<RedisScript>(i));
    }
    return s;
  }();
  return sources[static_cast<int>(script)].c_str();
}

const char* RedisScriptName(RedisScript script) {
  static constexpr const char* kNames[kRedisScriptCount] = {
      "apply", "acquire", "renew", "release", "stamp", "list", "prune"};
  return kNames[static_cast<int>(script)];
}

}  // namespace rwkv::server
