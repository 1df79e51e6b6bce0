#include "common/default_model.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace rwkv::common {

absl::StatusOr<std::string> DefaultModelPath() {
  namespace fs = std::filesystem;
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("RWKV_MODEL"); env && *env) {
    candidates.push_back(env);
  }
#ifdef RWKV_SOURCE_DIR
  candidates.push_back(absl::StrCat(RWKV_SOURCE_DIR, "/", kDemoModelRelPath));
#endif
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path dir = exe.parent_path();
    for (const fs::path& base :
         {dir / ".." / "..", dir / "..", dir / ".." / "share" / "rwkv"}) {
      candidates.push_back((base / kDemoModelRelPath).lexically_normal());
    }
  }
  for (const std::string& c : candidates) {
    if (fs::is_regular_file(c, ec)) return c;
  }
  return absl::NotFoundError(absl::StrCat(
      "no --model given and the demo model was not found (looked in: ",
      absl::StrJoin(candidates, ", "), "); pass --model or set RWKV_MODEL"));
}

}  // namespace rwkv::common
