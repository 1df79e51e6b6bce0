#include "engine/model_config.h"

namespace rwkv::engine {

std::string_view ArchitectureName(Architecture arch) {
  switch (arch) {
    case Architecture::kRwkv4:
      return "rwkv4";
    case Architecture::kRwkv7:
      return "rwkv7";
  }
  return "unknown";
}

}  // namespace rwkv::engine
