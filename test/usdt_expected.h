// What probes/usdt.bpf.c's on_args must record from probes/usdt_targets.c's
// PROVIDER:args site, on every architecture (usdt_test.cpp in this
// process, usdt_guest_test.cpp in the guests), and what fire_args returns.
#pragma once

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <functional>

namespace sb::test {

inline long fire_args_result(int i) { return long(i) * 1000 - i + (0x7000 + i) + long(0xfffffff0u + unsigned(i)); }

// `seen(k)`: element k of the object's `seen` array after fire_args(i).
inline void expect_on_args(const std::function<long(uint32_t)>& seen, int i, long table, long cookie) {
  EXPECT_EQ(seen(0), i);
  EXPECT_EQ(seen(1), long(i) * 1000);
  EXPECT_EQ(seen(2), -i);
  EXPECT_EQ(seen(3), 0x7000 + i);
  EXPECT_EQ(seen(4), long(0xfffffff0u + unsigned(i)));  // unsigned: not sign-extended
  EXPECT_EQ(seen(5), long(i) * 1000 + 1);
  EXPECT_EQ(seen(6), -5);
  EXPECT_EQ(seen(7), table);
  EXPECT_EQ(seen(8), 8);         // bpf_usdt_arg_cnt
  EXPECT_EQ(seen(9), cookie);    // bpf_usdt_cookie: the attach cookie
  EXPECT_EQ(seen(10), -ENOENT);  // bpf_usdt_arg past the last argument
}

}  // namespace sb::test
