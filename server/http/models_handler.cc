#include "server/http/models_handler.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/http/http_reply.h"
#include "server/quote.h"

namespace rwkv::server {

nlohmann::json ModelsHandler::Model() const {
  const ModelInfo info = ctx_->app->GetModelInfo();
  return {{"id", ctx_->model},
          {"object", "model"},
          {"created", ctx_->model_created},
          {"owned_by", "rwkv-server"},
          {"architecture", info.architecture},
          {"n_layer", info.n_layer},
          {"n_embd", info.n_embd},
          {"vocab_size", info.vocab_size},
          {"tokenizer", info.tokenizer},
          {"state_bytes_per_session", info.state_bytes_per_session}};
}

void ModelsHandler::List(const Caller& /*caller*/,
                         const httplib::Request& /*req*/,
                         httplib::Response& res) const {
  SendJson(res,
           {{"object", "list"}, {"data", nlohmann::json::array({Model()})}});
}

void ModelsHandler::Get(const Caller& /*caller*/, const httplib::Request& req,
                        httplib::Response& res) const {
  const std::string id = req.matches[1];
  if (id != ctx_->model) {
    return SendError(
        res, absl::NotFoundError(absl::StrCat(
                 "the model ", Quote(id),
                 " does not exist; this server serves ", Quote(ctx_->model))));
  }
  SendJson(res, Model());
}

}  // namespace rwkv::server
