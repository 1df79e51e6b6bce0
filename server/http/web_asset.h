// The web page's files, embedded in the binary at build time
// (embed_web_assets.cmake writes the table from server/http/web/).
#ifndef RWKV_SERVER_HTTP_WEB_ASSET_H_
#define RWKV_SERVER_HTTP_WEB_ASSET_H_

#include <cstddef>

namespace rwkv::server {

struct WebAsset {
  const char* path;  // "/index.html"
  const char* content_type;
  const char* data;
  size_t size;
};

extern const WebAsset kWebAssets[];
extern const size_t kWebAssetCount;

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_WEB_ASSET_H_
