// SessionsHandler: sessions over HTTP (the web page uses them; the same
// sessions as the gRPC API's), each a thin call of ChatApp:
//   POST   /v1/sessions                {session_id?, prefix?, ttl_seconds?,
//                                       initial_state?}  -> session
//   GET    /v1/sessions?page_size=&page_token=          -> list
//   GET    /v1/sessions/{id}                            -> session
//   DELETE /v1/sessions/{id}                            -> {deleted: true}
//   POST   /v1/sessions/{id}/reset                      -> session
//   POST   /v1/sessions/{id}/fork  {new_session_id?, ttl_seconds?}
//                                                       -> the new session
//   GET    /v1/sessions/{id}/state?dtype=float32|float16|bfloat16
//          -> the state file (application/octet-stream, as ExportState)
// A session object: {id, object: "session", token_count, created_at,
// last_used_at, expires_at (Unix seconds), ttl_seconds, state_bytes, busy,
// response (true for a stored Responses API response)}. The handler thread
// waits for ChatApp's callbacks. Thread-safe; borrows the context.
#ifndef RWKV_SERVER_HTTP_SESSIONS_HANDLER_H_
#define RWKV_SERVER_HTTP_SESSIONS_HANDLER_H_

#include "httplib.h"
#include "nlohmann/json.hpp"
#include "server/app/caller.h"
#include "server/http/http_context.h"
#include "server/session/session_record.h"

namespace rwkv::server {

class SessionsHandler {
 public:
  explicit SessionsHandler(const HttpContext* context) : ctx_(context) {}

  void Create(const Caller& caller, const httplib::Request& req,
              httplib::Response& res) const;
  void List(const Caller& caller, const httplib::Request& req,
            httplib::Response& res) const;
  // req.matches[1] is the session id in the handlers below.
  void Get(const Caller& caller, const httplib::Request& req,
           httplib::Response& res) const;
  void Delete(const Caller& caller, const httplib::Request& req,
              httplib::Response& res) const;
  void Reset(const Caller& caller, const httplib::Request& req,
             httplib::Response& res) const;
  void Fork(const Caller& caller, const httplib::Request& req,
            httplib::Response& res) const;
  void State(const Caller& caller, const httplib::Request& req,
             httplib::Response& res) const;

  static nlohmann::json SessionJson(const SessionInfo& info);

 private:
  // The body as a JSON object; an empty body is {}.
  absl::StatusOr<nlohmann::json> Body(const httplib::Request& req) const;

  const HttpContext* const ctx_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_SESSIONS_HANDLER_H_
