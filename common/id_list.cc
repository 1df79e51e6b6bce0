#include "common/id_list.h"

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace rwkv::common {

absl::StatusOr<std::vector<int32_t>> ParseIdList(absl::string_view text,
                                                 absl::string_view flag) {
  std::vector<int32_t> ids;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;
    int32_t id = 0;
    if (!absl::SimpleAtoi(part, &id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad token id '", part.substr(0, 64), "' in ", flag));
    }
    ids.push_back(id);
  }
  return ids;
}

}  // namespace rwkv::common
