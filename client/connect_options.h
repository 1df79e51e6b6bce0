// ConnectOptions: how a client reaches a secured rwkv-server: the API key
// sent as "authorization: Bearer <key>" on every call, and TLS (the CA that
// signed the server's certificate, and for mutual TLS the client's own
// certificate and key). Shared by rwkv-chat, rwkv-load and tests.
#ifndef RWKV_CLIENT_CONNECT_OPTIONS_H_
#define RWKV_CLIENT_CONNECT_OPTIONS_H_

#include <string>

namespace rwkv::client {

struct ConnectOptions {
  // Sent with every ChatService call; "": none.
  std::string api_key;
  // PEM CA to trust; non-empty: connect with TLS.
  std::string tls_ca_file;
  // PEM client certificate and key for mutual TLS (both or neither).
  std::string tls_cert_file;
  std::string tls_key_file;
  // The name the server's certificate must carry; "": the address's host.
  std::string tls_server_name;

  bool tls() const { return !tls_ca_file.empty(); }
};

}  // namespace rwkv::client

#endif  // RWKV_CLIENT_CONNECT_OPTIONS_H_
