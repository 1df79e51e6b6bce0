// State: one sequence's RWKV recurrent state, fp32 (RWKV-4: att_aa, att_ab,
// att_pp, att_x_prev, ffn_x_prev, each [n_layer, n_embd]; RWKV-7: att_x_prev
// [n_layer, n_embd], att_kv [n_layer, n_head, head_size, head_size] with rows
// = value index and columns = key index as in ChatRWKV, ffn_x_prev
// [n_layer, n_embd]). Opaque, move-only;
// Clone() makes an independent deep copy. Thread-compatible: one owner at a
// time, never shared between threads without external synchronization.
#ifndef RWKV_ENGINE_STATE_H_
#define RWKV_ENGINE_STATE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace rwkv::engine {

namespace internal {
struct StateImpl;
class StateAccess;
}  // namespace internal

class State {
 public:
  // An empty state (valid() == false); engines hand out real ones.
  State();
  ~State();
  State(State&& other) noexcept;
  State& operator=(State&& other) noexcept;
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  bool valid() const { return impl_ != nullptr; }
  // Deep copy: changing one never changes the other.
  State Clone() const;
  // Tokens fed into this state since it was fresh.
  int64_t token_count() const;
  // Bytes held by the state's tensors.
  int64_t SizeBytes() const;

  // Component names in schema order (RWKV-4: att_aa, att_ab, att_pp,
  // att_x_prev, ffn_x_prev; RWKV-7: att_x_prev, att_kv, ffn_x_prev), and a
  // host fp32 copy of one component
  // (row-major over its shape, which starts with n_layer).
  std::vector<std::string> ComponentNames() const;
  absl::StatusOr<std::vector<int64_t>> ComponentShape(
      std::string_view name) const;
  absl::StatusOr<std::vector<float>> ComponentValues(
      std::string_view name) const;

 private:
  friend class internal::StateAccess;
  explicit State(std::unique_ptr<internal::StateImpl> impl);
  std::unique_ptr<internal::StateImpl> impl_;
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_STATE_H_
