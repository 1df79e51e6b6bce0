#include "server/http/static_files.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/http/http_reply.h"
#include "server/quote.h"

namespace rwkv::server {

const WebAsset* StaticFiles::Find(const std::string& path) {
  const std::string want = path == "/" ? "/index.html" : path;
  for (size_t i = 0; i < kWebAssetCount; ++i) {
    if (want == kWebAssets[i].path) return &kWebAssets[i];
  }
  return nullptr;
}

void StaticFiles::Serve(const httplib::Request& req, httplib::Response& res) {
  const WebAsset* asset = Find(req.path);
  if (asset == nullptr) {
    return SendError(
        res, absl::NotFoundError(absl::StrCat("no page at ", Quote(req.path))));
  }
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Content-Security-Policy",
                 "default-src 'self'; style-src 'self'; script-src 'self'; "
                 "connect-src 'self'; frame-ancestors 'none'");
  res.set_content(asset->data, asset->size, asset->content_type);
}

}  // namespace rwkv::server
