#include "server/http/sessions_handler.h"

#include <limits>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "server/http/connection_probe.h"
#include "server/http/http_reply.h"
#include "server/http/json_fields.h"
#include "server/http/openai_request.h"

namespace rwkv::server {

using json = nlohmann::json;

namespace {

// Calls `start` with a callback and waits for its result.
template <typename T, typename Start>
absl::StatusOr<T> Wait(Start start) {
  absl::Notification done;
  absl::StatusOr<T> result = absl::UnknownError("no answer");
  start([&](absl::StatusOr<T> r) {
    result = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

void SendSession(httplib::Response& res, const absl::StatusOr<SessionInfo>& r) {
  if (!r.ok()) return SendError(res, r.status());
  SendJson(res, SessionsHandler::SessionJson(*r));
}

// Optional string and TTL members shared by create and fork.
absl::Status ReadId(const JsonFields& f, const char* name, std::string& out) {
  absl::StatusOr<std::optional<std::string>> v = f.String(name);
  if (!v.ok()) return v.status();
  out = v->value_or("");
  return absl::OkStatus();
}
absl::Status ReadTtl(const JsonFields& f, int64_t& out) {
  absl::StatusOr<std::optional<int64_t>> v =
      f.Integer("ttl_seconds", 0, std::numeric_limits<int32_t>::max());
  if (!v.ok()) return v.status();
  out = v->value_or(0);
  return absl::OkStatus();
}

}  // namespace

json SessionsHandler::SessionJson(const SessionInfo& info) {
  return {{"id", info.id},
          {"object", "session"},
          {"token_count", info.token_count},
          {"created_at", absl::ToUnixSeconds(info.created)},
          {"last_used_at", absl::ToUnixSeconds(info.last_used)},
          {"expires_at", absl::ToUnixSeconds(info.expires())},
          {"ttl_seconds", absl::ToInt64Seconds(info.ttl)},
          {"state_bytes", info.state_bytes},
          {"busy", info.busy},
          {"response", !info.note.empty()}};
}

absl::StatusOr<json> SessionsHandler::Body(const httplib::Request& req) const {
  if (req.body.empty()) return json::object();
  absl::StatusOr<json> body = ctx_->json->Parse(req.body);
  if (!body.ok()) return body.status();
  if (absl::Status s = CheckObject(*body); !s.ok()) return s;
  return body;
}

void SessionsHandler::Create(const Caller& caller, const httplib::Request& req,
                             httplib::Response& res) const {
  absl::StatusOr<json> body = Body(req);
  if (!body.ok()) return SendError(res, body.status());
  const JsonFields f(*body, "");
  CreateSessionRequest r;
  absl::Status s = ReadId(f, "session_id", r.session_id);
  if (s.ok()) s = ReadId(f, "prefix", r.prefix);
  if (s.ok()) s = ReadId(f, "initial_state", r.initial_state_name);
  if (s.ok()) s = ReadTtl(f, r.ttl_seconds);
  if (!s.ok()) return SendError(res, s);
  // A long prefix stops if the client leaves meanwhile.
  ConnectionProbe probe(req.local_addr, req.local_port, req.remote_addr,
                        req.remote_port);
  r.cancelled = [probe] { return probe.PeerClosed(); };
  SendSession(res, Wait<SessionInfo>([&](auto done) {
                ctx_->app->CreateSession(caller, std::move(r), std::move(done));
              }));
}

void SessionsHandler::List(const Caller& caller, const httplib::Request& req,
                           httplib::Response& res) const {
  int32_t page_size = 0;
  if (req.has_param("page_size") &&
      !absl::SimpleAtoi(req.get_param_value("page_size"), &page_size)) {
    return SendError(res, FieldError("page_size", "must be an integer"));
  }
  absl::StatusOr<SessionPage> page = ctx_->app->ListSessions(
      caller, page_size, req.get_param_value("page_token"));
  if (!page.ok()) return SendError(res, page.status());
  json data = json::array();
  for (const SessionInfo& info : page->sessions) {
    data.push_back(SessionJson(info));
  }
  SendJson(res, {{"object", "list"},
                 {"data", std::move(data)},
                 {"next_page_token", page->next_page_token},
                 {"total", page->total}});
}

void SessionsHandler::Get(const Caller& caller, const httplib::Request& req,
                          httplib::Response& res) const {
  SendSession(res, ctx_->app->GetSession(caller, req.matches[1]));
}

void SessionsHandler::Delete(const Caller& caller, const httplib::Request& req,
                             httplib::Response& res) const {
  const std::string id = req.matches[1];
  absl::StatusOr<bool> deleted = Wait<bool>([&](auto done) {
    ctx_->app->DeleteSession(caller, id,
                             [done = std::move(done)](absl::Status s) mutable {
                               done(s.ok() ? absl::StatusOr<bool>(true) : s);
                             });
  });
  if (!deleted.ok()) return SendError(res, deleted.status());
  SendJson(res, {{"id", id}, {"object", "session"}, {"deleted", true}});
}

void SessionsHandler::Reset(const Caller& caller, const httplib::Request& req,
                            httplib::Response& res) const {
  SendSession(res, Wait<SessionInfo>([&](auto done) {
                ctx_->app->ResetSession(caller, req.matches[1],
                                        std::move(done));
              }));
}

void SessionsHandler::Fork(const Caller& caller, const httplib::Request& req,
                           httplib::Response& res) const {
  absl::StatusOr<json> body = Body(req);
  if (!body.ok()) return SendError(res, body.status());
  const JsonFields f(*body, "");
  ForkRequest r;
  r.source_session_id = req.matches[1];
  absl::Status s = ReadId(f, "new_session_id", r.new_session_id);
  if (s.ok()) s = ReadTtl(f, r.ttl_seconds);
  if (!s.ok()) return SendError(res, s);
  SendSession(res, Wait<SessionInfo>([&](auto done) {
                ctx_->app->ForkSession(caller, std::move(r), std::move(done));
              }));
}

void SessionsHandler::State(const Caller& caller, const httplib::Request& req,
                            httplib::Response& res) const {
  const std::string id = req.matches[1];
  absl::StatusOr<ExportedState> state =
      ctx_->app->ExportState(caller, id, req.get_param_value("dtype"));
  if (!state.ok()) return SendError(res, state.status());
  res.status = 200;
  res.set_header("Content-Disposition",
                 absl::StrCat("attachment; filename=\"", id, ".pth\""));
  res.set_header("X-Token-Count", std::to_string(state->token_count));
  res.set_content(std::move(state->bytes), "application/octet-stream");
}

}  // namespace rwkv::server
