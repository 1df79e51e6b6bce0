// ResponsesHandler: OpenAI's Responses API. POST /v1/responses runs a
// detached turn: from the state stored with `previous_response_id` (so
// continuing costs only the new input) or from the fresh state through the
// prefix cache; `instructions` become a system message before the input.
// With `store` (the default) the state after the reply is kept as a new
// session whose id is the response's id ("resp_" + 128 random bits) and
// whose note is the response object: GET /v1/responses/{id} returns it,
// DELETE removes it, and it expires as sessions do (--ttl). The reply is
// ResponseFormat's, streamed (typed events) or whole. Sessions that are not
// stored responses are not visible here. Thread-safe; borrows the context.
#ifndef RWKV_SERVER_HTTP_RESPONSES_HANDLER_H_
#define RWKV_SERVER_HTTP_RESPONSES_HANDLER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "httplib.h"
#include "server/app/app_types.h"
#include "server/app/caller.h"
#include "server/http/http_context.h"
#include "server/http/json_fields.h"
#include "server/http/response_format.h"

namespace rwkv::server {

class ResponsesHandler {
 public:
  explicit ResponsesHandler(const HttpContext* context) : ctx_(context) {}

  void Create(const Caller& caller, const httplib::Request& req,
              httplib::Response& res) const;
  // req.matches[1] is the response id.
  void Get(const Caller& caller, const httplib::Request& req,
           httplib::Response& res) const;
  void Delete(const Caller& caller, const httplib::Request& req,
              httplib::Response& res) const;

 private:
  struct Parsed {
    DetachedTurnRequest request;
    ResponseFormat::Request echo;
    bool stream = false;
  };
  absl::StatusOr<Parsed> Parse(const Caller& caller,
                               const JsonFields& body) const;
  // The input (a string or a list of messages), after the instructions.
  static absl::StatusOr<std::vector<ChatMessage>> ReadInput(
      const JsonFields& body, const std::optional<std::string>& instructions);
  // The stored response `id`'s session info; NOT_FOUND naming a response.
  absl::StatusOr<SessionInfo> FindResponse(const Caller& caller,
                                           const std::string& id) const;

  const HttpContext* const ctx_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_RESPONSES_HANDLER_H_
