#include "server/session/random_id.h"

#include <sys/random.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace rwkv::server {

void RandomWords(uint64_t* words, size_t n) {
  auto* bytes = reinterpret_cast<unsigned char*>(words);
  size_t got = 0;
  while (got < n * sizeof(uint64_t)) {
    const ssize_t r = getrandom(bytes + got, n * sizeof(uint64_t) - got, 0);
    if (r > 0) got += static_cast<size_t>(r);
  }
}

std::string RandomId(absl::string_view prefix) {
  uint64_t words[2];
  RandomWords(words, 2);
  return absl::StrCat(prefix,
                      absl::StrFormat("%016x%016x", words[0], words[1]));
}

}  // namespace rwkv::server
