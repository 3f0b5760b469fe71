// Checks every backend's register map (backends/<arch>/regs.h) must pass,
// written once: each regs.h states its map and calls these in
// static_asserts, so a remapped register that breaks a role fails to build.
#pragma once

#include <cstddef>
#include <initializer_list>

namespace sb::backend::regmap {

// BPF r1-r5 are the native argument registers 1-5, in order: helper calls
// need no moves.
template <typename R, size_t N, size_t A>
constexpr bool args_in_place(const R (&map)[N], const R (&args)[A]) {
  static_assert(N == 11 && A >= 5);
  for (size_t i = 1; i <= 5; ++i)
    if (map[i] != args[i - 1]) return false;
  return true;
}

// BPF r6-r10 survive native calls.
template <typename R, size_t N, typename CalleeSaved>
constexpr bool callee_saved_kept(const R (&map)[N], CalleeSaved is_callee_saved) {
  for (size_t i = 6; i < N; ++i)
    if (!is_callee_saved(map[i])) return false;
  return true;
}

// No two BPF registers share a native one, and none is in `reserved`
// (stack pointer, zero register, ...), which the predicate tells.
template <typename R, size_t N, typename Reserved>
constexpr bool one_to_one(const R (&map)[N], Reserved is_reserved) {
  for (size_t i = 0; i < N; ++i) {
    if (is_reserved(map[i])) return false;
    for (size_t j = i + 1; j < N; ++j)
      if (map[i] == map[j]) return false;
  }
  return true;
}

// The backend's own registers (scratch, entry frame) are distinct from each
// other and from every BPF register.
template <typename R, size_t N>
constexpr bool private_regs_free(const R (&map)[N], std::initializer_list<R> own) {
  for (auto a = own.begin(); a != own.end(); ++a) {
    for (auto b = a + 1; b != own.end(); ++b)
      if (*a == *b) return false;
    for (const R& m : map)
      if (*a == m) return false;
  }
  return true;
}

}  // namespace sb::backend::regmap
