// Converts LibTorch exceptions into absl::Status at engine entry points, so
// no exception ever crosses into server/ or client/ code.
#ifndef RWKV_ENGINE_INTERNAL_TORCH_STATUS_H_
#define RWKV_ENGINE_INTERNAL_TORCH_STATUS_H_

#include <c10/util/Exception.h>

#include <exception>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace rwkv::engine::internal {

// Runs f() (returning T, Status or StatusOr<T>) and maps exceptions to
// Status: c10::Error -> Internal (its message without backtrace),
// std::bad_alloc -> ResourceExhausted, anything else -> Internal.
template <typename F>
auto CatchTorch(const std::string& what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat(what, ": torch error: ", e.what_without_backtrace()));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": out of memory"));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  }
}

}  // namespace rwkv::engine::internal

#endif  // RWKV_ENGINE_INTERNAL_TORCH_STATUS_H_
