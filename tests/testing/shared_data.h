// Locates the read-only shared test material (../shared next to the project:
// tiny RWKV checkpoints, reference outputs, tokenizer files). Real users do
// not have it; tests that need it call GTEST_SKIP() when SharedDir() is empty.
#ifndef RWKV_TESTS_TESTING_SHARED_DATA_H_
#define RWKV_TESTS_TESTING_SHARED_DATA_H_

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace rwkv::testing {

// $RWKV_SHARED_DIR if set, else the compile-time RWKV_SHARED_DIR; "" if the
// folder does not exist.
inline std::string SharedDir() {
  const char* env = std::getenv("RWKV_SHARED_DIR");
  std::string dir = env != nullptr ? env :
#ifdef RWKV_SHARED_DIR
                                   RWKV_SHARED_DIR;
#else
                                   "";
#endif
  std::error_code ec;
  if (dir.empty() || !std::filesystem::is_directory(dir, ec)) return "";
  return dir;
}

// Path of a file under the shared folder, "" if absent.
inline std::string SharedFile(const std::string& relative) {
  const std::string dir = SharedDir();
  if (dir.empty()) return "";
  std::string path = dir + "/" + relative;
  std::error_code ec;
  return std::filesystem::exists(path, ec) ? path : "";
}

inline std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace rwkv::testing

#define RWKV_REQUIRE_SHARED(path_var, relative)                            \
  const std::string path_var = ::rwkv::testing::SharedFile(relative);      \
  if (path_var.empty()) {                                                  \
    GTEST_SKIP() << "shared test material '" << (relative)                 \
                 << "' not found (set RWKV_SHARED_DIR to the folder with " \
                    "models/ and tokenizers/)";                            \
  }

#endif  // RWKV_TESTS_TESTING_SHARED_DATA_H_
