// Random identifiers from the OS CSPRNG (getrandom): session ids the server
// generates, and the ids of the HTTP front's objects (responses, messages),
// which must be unguessable because knowing one is enough to read it.
// Thread-safe.
#ifndef RWKV_SERVER_SESSION_RANDOM_ID_H_
#define RWKV_SERVER_SESSION_RANDOM_ID_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace rwkv::server {

// Fills `words` with `n` random 64-bit words.
void RandomWords(uint64_t* words, size_t n);

// `prefix` + 128 random bits as 32 lowercase hex digits.
std::string RandomId(absl::string_view prefix);

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SESSION_RANDOM_ID_H_
