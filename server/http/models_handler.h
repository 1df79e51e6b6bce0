// ModelsHandler: GET /v1/models (the one model this server serves) and
// GET /v1/models/{id}, as OpenAI's list and model objects. Thread-safe;
// borrows the context.
#ifndef RWKV_SERVER_HTTP_MODELS_HANDLER_H_
#define RWKV_SERVER_HTTP_MODELS_HANDLER_H_

#include "httplib.h"
#include "nlohmann/json.hpp"
#include "server/app/caller.h"
#include "server/http/http_context.h"

namespace rwkv::server {

class ModelsHandler {
 public:
  explicit ModelsHandler(const HttpContext* context) : ctx_(context) {}

  void List(const Caller& caller, const httplib::Request& req,
            httplib::Response& res) const;
  // req.matches[1] is the model id.
  void Get(const Caller& caller, const httplib::Request& req,
           httplib::Response& res) const;

 private:
  nlohmann::json Model() const;

  const HttpContext* const ctx_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_MODELS_HANDLER_H_
