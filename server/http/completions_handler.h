// CompletionsHandler: POST /v1/chat/completions and POST /v1/completions.
// The body becomes a TurnRequest (messages rendered with the chat template,
// or the raw prompt); with an X-Session-Id header the turn continues that
// session (the messages are the new ones: the session holds the
// conversation) and is committed to it, as a gRPC Chat/Generate turn is;
// without it the turn is detached: the whole conversation is sent every
// time and starts from the longest cached prefix of its tokens (see
// DetachedTurnRequest). The reply is CompletionFormat's, streamed or whole.
// Thread-safe; borrows the context.
#ifndef RWKV_SERVER_HTTP_COMPLETIONS_HANDLER_H_
#define RWKV_SERVER_HTTP_COMPLETIONS_HANDLER_H_

#include "absl/status/statusor.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "server/app/app_types.h"
#include "server/app/caller.h"
#include "server/http/http_context.h"
#include "server/http/json_fields.h"

namespace rwkv::server {

class CompletionsHandler {
 public:
  explicit CompletionsHandler(const HttpContext* context) : ctx_(context) {}

  void Chat(const Caller& caller, const httplib::Request& req,
            httplib::Response& res) const;
  void Text(const Caller& caller, const httplib::Request& req,
            httplib::Response& res) const;

 private:
  // What both endpoints read besides the prompt.
  struct Common {
    TurnRequest turn;
    bool stream = false;
    bool include_usage = false;
    bool return_token_ids = false;
  };
  // `max_tokens_limit`: the server's (--max-tokens-limit).
  static absl::StatusOr<Common> ReadCommon(const JsonFields& body,
                                           int32_t max_tokens_limit);
  // Runs the turn (on the X-Session-Id session, or detached) and answers.
  void Run(const Caller& caller, const httplib::Request& req,
           httplib::Response& res, Common common, bool chat) const;

  const HttpContext* const ctx_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_COMPLETIONS_HANDLER_H_
