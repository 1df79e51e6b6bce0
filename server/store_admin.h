// What `rwkv-server --list-sessions` prints: the sessions a data directory
// holds (id, tokens, last use, expiry, bytes, model), read from their stored
// metadata only. Sessions whose records cannot be read are listed with why.
#ifndef RWKV_SERVER_STORE_ADMIN_H_
#define RWKV_SERVER_STORE_ADMIN_H_

#include <string>

#include "absl/status/statusor.h"
#include "server/session/rocksdb_session_store.h"

namespace rwkv::server {

// The listing as text (one header line, then one line per session, then a
// summary line). Errors: the store cannot be opened (e.g. a server holds it).
absl::StatusOr<std::string> ListStoredSessions(
    const RocksDbStoreOptions& options);

}  // namespace rwkv::server

#endif  // RWKV_SERVER_STORE_ADMIN_H_
