// StaticFiles: serves the embedded web chat page (GET /, /app.js,
// /style.css, /favicon.svg; web_asset.h) with a Content-Security-Policy that
// allows only the server's own scripts and styles (nothing from a CDN, no
// inline code). Thread-safe (immutable).
#ifndef RWKV_SERVER_HTTP_STATIC_FILES_H_
#define RWKV_SERVER_HTTP_STATIC_FILES_H_

#include <string>

#include "httplib.h"
#include "server/http/web_asset.h"

namespace rwkv::server {

class StaticFiles {
 public:
  // The asset at `path` ("/" is "/index.html"), or null.
  static const WebAsset* Find(const std::string& path);
  // Answers with the asset at req.path, or a 404 error.
  static void Serve(const httplib::Request& req, httplib::Response& res);
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_STATIC_FILES_H_
