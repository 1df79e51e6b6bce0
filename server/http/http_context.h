// HttpContext: what the HTTP front's request handlers share once the model
// is loaded: the application layer, the model's public name, the turns in
// flight and the JSON parser with its limits. Set once; read-only after.
#ifndef RWKV_SERVER_HTTP_HTTP_CONTEXT_H_
#define RWKV_SERVER_HTTP_HTTP_CONTEXT_H_

#include <cstdint>
#include <string>

#include "server/app/chat_app.h"
#include "server/http/active_turns.h"
#include "server/http/json_body_parser.h"

namespace rwkv::server {

struct HttpContext {
  ChatApp* app = nullptr;
  // The model id clients see (GET /v1/models, "model" of every answer).
  std::string model;
  // When the model was loaded (seconds since the Unix epoch).
  int64_t model_created = 0;
  ActiveTurns* turns = nullptr;
  const JsonBodyParser* json = nullptr;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_HTTP_CONTEXT_H_
