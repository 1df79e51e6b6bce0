#include "client/connect_flags.h"

namespace rwkv::client {

void AddConnectFlags(CLI::App& app, ConnectOptions* o) {
  constexpr char kGroup[] = "Connection security";
  app.add_option("--api-key", o->api_key,
                 "API key sent as 'authorization: Bearer KEY' (or "
                 "$RWKV_API_KEY)")
      ->envname("RWKV_API_KEY")
      ->type_name("KEY")
      ->group(kGroup);
  app.add_option("--tls-ca", o->tls_ca_file,
                 "connect with TLS, trusting this PEM CA")
      ->type_name("FILE")
      ->group(kGroup);
  app.add_option("--tls-cert", o->tls_cert_file,
                 "PEM client certificate (mutual TLS; with --tls-key)")
      ->type_name("FILE")
      ->group(kGroup);
  app.add_option("--tls-key", o->tls_key_file, "PEM private key of --tls-cert")
      ->type_name("FILE")
      ->group(kGroup);
  app.add_option("--tls-server-name", o->tls_server_name,
                 "the name the server's certificate must carry (default: "
                 "the --server host)")
      ->type_name("NAME")
      ->group(kGroup);
}

}  // namespace rwkv::client
