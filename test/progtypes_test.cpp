// Program types (frontend/progtypes/, runtime/progtypes/): XDP programs
// compiled by clang against <linux/bpf.h> run unmodified on every engine
// through the test run (BPF_PROG_TEST_RUN's contract), with the context
// rewritten to the native xdp_buff and the kernel's headroom, helpers and
// error codes; bad test-run input gets errors naming the input and field.
// test/progtypes_kernel_test.cpp compares the same runs with the kernel.
#include <cerrno>
#include <cstring>

#include <gtest/gtest.h>

#include "frontend/elf_loader.h"
#include "frontend/progtypes/probe.h"
#include "frontend/progtypes/program_type.h"
#include "frontend/progtypes/skb.h"
#include "frontend/progtypes/xdp.h"
#include "frontend/assembler.h"
#include "frontend/verifier/verifier.h"
#include "ir/diag.h"
#include "runtime/helpers/std_helpers.h"
#include "runtime/progtypes/test_run.h"
#include "runtime/progtypes/xdp_helpers.h"
#include "test/engines.h"
#include "test/verdict.h"

namespace sb::test {
namespace {

std::string object(const std::string& name) { return std::string(SB_PROGTYPES_OBJECTS) + "/" + name + ".o"; }

// An XDP object loaded as its section's type, with its maps and helpers.
struct Typed {
  rt::Environment env;
  bpf::ElfProgram elf;
  rt::HelperTable helpers;
  explicit Typed(const std::string& name, const std::string& section = "") {
    elf = env.load_elf(object(name), {section, ""});
    elf.program.type = elf.type;
    helpers = rt::standard_helpers(env);
  }
  rt::TestRunOutput run(const Engine& e, std::vector<uint8_t> data, std::optional<std::vector<uint8_t>> ctx = {},
                        uint32_t repeat = 1) {
    rt::TestRunInput in;
    in.data = std::move(data);
    in.ctx = std::move(ctx);
    in.repeat = repeat;
    return rt::test_run(e, elf.program, helpers, in);
  }
  int64_t result(uint32_t slot) {
    rt::Map* m = env.find_map("results");
    int64_t v = 0;
    if (const void* p = m->lookup(&slot)) std::memcpy(&v, p, 8);
    return v;
  }
};

// A 16-byte frame: broadcast, zero source, EtherType `proto` (network
// order in memory), two payload bytes.
std::vector<uint8_t> frame(uint16_t proto, std::vector<uint8_t> payload = {0, 0}) {
  std::vector<uint8_t> f(12, 0);
  for (int i = 0; i < 6; ++i) f[size_t(i)] = 0xff;
  f.push_back(uint8_t(proto >> 8));
  f.push_back(uint8_t(proto));
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

std::vector<uint8_t> md_bytes(const bpf::XdpMd& md) {
  std::vector<uint8_t> b(sizeof md);
  std::memcpy(b.data(), &md, sizeof md);
  return b;
}
bpf::XdpMd md_of(const std::vector<uint8_t>& b) {
  bpf::XdpMd md{};
  std::memcpy(&md, b.data(), std::min(b.size(), sizeof md));
  return md;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
    return "no error";
  } catch (const Error& e) {
    return e.what();
  }
}

constexpr uint32_t kDrop = 1, kPass = 2, kTx = 3, kAborted = 0;

// --- the descriptor ---------------------------------------------------------

TEST(XdpType, SectionsAsLibbpfNamesThem) {
  for (const char* s : {"xdp", "xdp.frags", "xdp/prog", "xdp.frags/devmap"}) {
    auto t = bpf::program_type_for_section(s);
    ASSERT_TRUE(t) << s;
    EXPECT_EQ(t->type, &bpf::xdp_program_type()) << s;
  }
  EXPECT_EQ(bpf::program_type_for_section("xdp/prog")->attach, "prog");
  EXPECT_FALSE(bpf::program_type_for_section("xdpfoo"));
  EXPECT_FALSE(bpf::program_type_for_section("xdp."));
  EXPECT_EQ(bpf::find_program_type("xdp"), &bpf::xdp_program_type());
  EXPECT_EQ(bpf::xdp_program_type().kernel_type, 6u);  // BPF_PROG_TYPE_XDP
  EXPECT_EQ(bpf::xdp_program_type().ctx.size, 24u);
}

// Every scalar field keeps its size natively (native_access relies on it),
// pointer fields are 8 bytes there, and fields do not overlap.
TEST(XdpType, NativeLayout) {
  for (const bpf::CtxField& f : bpf::xdp_program_type().ctx.fields) {
    if (f.value == bpf::CtxValue::Scalar) EXPECT_EQ(f.native_size, f.size) << f.name;
    else EXPECT_EQ(f.native_size, 8) << f.name;
    EXPECT_LE(f.native_offset + f.native_size, sizeof(bpf::XdpBuff)) << f.name;
  }
  const bpf::CtxField* data_end = bpf::xdp_program_type().ctx.field_at(4);
  ASSERT_TRUE(data_end);
  EXPECT_EQ(bpf::native_access(*data_end, 4, 4).offset, offsetof(bpf::XdpBuff, data_end));
  EXPECT_EQ(bpf::native_access(*data_end, 4, 4).size, 8);
}

bpf::Program xdp_asm(const std::string& src) {
  bpf::Program p = bpf::assemble(src, "t.s");
  p.type = &bpf::xdp_program_type();
  return p;
}

std::string refusal(const bpf::Program& p) {
  rt::Environment env;
  return verdict(env, p);
}

TEST(XdpType, VerifierKnowsTheFields) {
  EXPECT_EQ(refusal(xdp_asm("ldxw %r0, [%r1+20]\nmov %r0, 0\nexit")),
            "t.s: xdp: instruction 0: invalid bpf_context access off=20 size=4 (field egress_ifindex may not be read "
            "by xdp programs)");
  EXPECT_EQ(refusal(xdp_asm("stw [%r1+12], 1\nmov %r0, 0\nexit")),
            "t.s: xdp: instruction 0: invalid bpf_context access off=12 size=4 (field ingress_ifindex may not be "
            "written by xdp programs)");
  EXPECT_EQ(refusal(xdp_asm("ldxb %r0, [%r1+12]\nexit")),
            "t.s: xdp: instruction 0: invalid bpf_context access off=12 size=1 (ingress_ifindex is read as 4 bytes)");
  EXPECT_EQ(refusal(xdp_asm("ldxw %r0, [%r1+24]\nexit")),
            "t.s: xdp: instruction 0: invalid bpf_context access off=24 size=4");
  EXPECT_EQ(refusal(xdp_asm("ldxw %r0, [%r1+12]\nexit")), "accepted");
  // The kernel (6.18, checked with BPF_PROG_LOAD) leaves XDP, TC and socket
  // filter return values open: an unknown XDP action drops the packet at run time.
  EXPECT_EQ(refusal(xdp_asm("mov %r0, 7\nexit")), "accepted");
  EXPECT_EQ(bpf::xdp_program_type().ret_range, std::nullopt);
  // A helper XDP programs may not call, and one raw programs may not.
  EXPECT_EQ(refusal(xdp_asm("mov %r1, 0\nmov %r2, 0\nmov %r3, 0\ncall 4\nmov %r0, 0\nexit")),
            "t.s: xdp: instruction 3: program of this type cannot use helper probe_read#4");
  bpf::Program raw = bpf::assemble("mov %r2, 4\ncall 44\nexit", "t.s");
  EXPECT_EQ(refusal(raw), "t.s: raw: instruction 1: program of this type cannot use helper xdp_adjust_head#44");
  // One instruction, two kinds of pointer: it cannot be rewritten.
  EXPECT_EQ(refusal(xdp_asm("stw [%r10-8], 0\nmov %r2, %r1\nldxw %r3, [%r1+12]\njeq %r3, 0, +2\nmov %r2, %r10\n"
                            "add %r2, -8\nldxw %r0, [%r2+0]\nmov %r0, 0\nexit")),
            "t.s: xdp: instruction 6: same insn cannot be used with different pointers");
}

// After a helper that moves the packet, old packet pointers are numbers.
TEST(XdpType, PacketPointersDieAtAdjustHead) {
  const std::string check =
      "ldxw %r2, [%r1+0]\nldxw %r3, [%r1+4]\nmov %r4, %r2\nadd %r4, 14\njgt %r4, %r3, +5\n"
      "mov %r6, %r2\nmov %r2, 4\ncall 44\n";
  EXPECT_EQ(refusal(xdp_asm(check + "ldxb %r0, [%r6+0]\nexit\nmov %r0, 1\nexit")),
            "t.s: xdp: instruction 8: R6 invalid mem access 'scalar'");
}

// --- the issue's example on every engine ------------------------------------

class XdpRun : public ::testing::TestWithParam<const Engine*> {};

TEST_P(XdpRun, IssueExample) {
  Typed t("xdp_eth");
  ASSERT_EQ(t.elf.type, &bpf::xdp_program_type());
  const Engine& e = *GetParam();
  EXPECT_EQ(t.run(e, frame(0x0800)).retval, kPass);  // IPv4
  EXPECT_EQ(t.run(e, frame(0x86dd)).retval, kTx);    // IPv6
  rt::TestRunOutput o = t.run(e, frame(0x0800, {1, 2, 3}));
  EXPECT_EQ(o.data, frame(0x0800, {1, 2, 3}));
  EXPECT_EQ(md_of(o.ctx).data, 0u);
  EXPECT_EQ(md_of(o.ctx).data_end, 17u);
  EXPECT_EQ(o.runs, 1u);
  EXPECT_EQ(t.run(e, frame(0x0800), {}, 5).runs, 5u);
}

TEST_P(XdpRun, AdjustHelpers) {
  Typed t("xdp_adjust");
  const Engine& e = *GetParam();
  const std::vector<uint8_t> base = frame(0x0800, {0, 0xaa, 0xbb});

  // 0: four bytes of metadata come out in front of the packet.
  rt::TestRunOutput o = t.run(e, base);
  EXPECT_EQ(o.retval, kTx);
  std::vector<uint8_t> want = {0x0d, 0xf0, 0xed, 0xfe};
  want.insert(want.end(), base.begin(), base.end());
  EXPECT_EQ(o.data, want);
  EXPECT_EQ(md_of(o.ctx).data, 4u);
  EXPECT_EQ(md_of(o.ctx).data_end, 4u + base.size());

  // 1: the front 4 bytes go.
  std::vector<uint8_t> in = frame(0x0800, {1, 0xaa, 0xbb, 0xcc, 0xdd});
  o = t.run(e, in);
  EXPECT_EQ(o.retval, kTx);
  EXPECT_EQ(o.data, std::vector<uint8_t>(in.begin() + 4, in.end()));

  // 2: eight bytes in the headroom, written.
  in = frame(0x0800, {2});
  o = t.run(e, in);
  EXPECT_EQ(o.retval, kTx);
  want = {8, 7, 6, 5, 4, 3, 2, 1};
  want.insert(want.end(), in.begin(), in.end());
  EXPECT_EQ(o.data, want);

  // 3: sixteen zero bytes at the tail; the buffer's length says so.
  in = frame(0x0800, {3});
  o = t.run(e, in);
  EXPECT_EQ(o.retval, kTx);
  want = in;
  want.resize(in.size() + 16, 0);
  EXPECT_EQ(o.data, want);
  EXPECT_EQ(t.result(1), int64_t(in.size() + 16));

  // 4: four bytes fewer.
  in = frame(0x0800, {4, 9, 9, 9, 9, 9});
  o = t.run(e, in);
  EXPECT_EQ(o.data, std::vector<uint8_t>(in.begin(), in.end() - 4));

  // 5: the kernel's error codes, nothing changed.
  in = frame(0x0800, {5});
  o = t.run(e, in);
  EXPECT_EQ(o.retval, kTx);
  EXPECT_EQ(o.data, in);
  EXPECT_EQ(t.result(0), -EINVAL);
  EXPECT_EQ(t.result(1), -EACCES);
  EXPECT_EQ(t.result(2), -EINVAL);
  EXPECT_EQ(t.result(3), -EINVAL);

  // 6: eight bytes of metadata move with the head.
  in = frame(0x0800, {6});
  o = t.run(e, in);
  EXPECT_EQ(o.retval, kTx);
  EXPECT_EQ(t.result(1), 0);
  ASSERT_EQ(o.data.size(), 8 + 4 + in.size());
  EXPECT_EQ(o.data[0], 0x88);
  EXPECT_EQ(o.data[7], 0x11);
  EXPECT_EQ(md_of(o.ctx).data, 8u);

  // Unknown selector; repeated runs share the context (selector 1 four
  // times pops 16 bytes).
  EXPECT_EQ(t.run(e, frame(0x0800, {7})).retval, kPass);
  in = frame(0x0800, {1});
  in.resize(64, 1);
  o = t.run(e, in, {}, 4);
  EXPECT_EQ(o.data.size(), 64u - 16u);
}

// ctx_in: metadata taken from the front of data_in, ifindex fields kept.
TEST_P(XdpRun, ContextIn) {
  Typed t("xdp_adjust");
  bpf::XdpMd md{};
  md.data = 8;
  std::vector<uint8_t> in = {1, 2, 3, 4, 5, 6, 7, 8};
  const std::vector<uint8_t> pkt = frame(0x0800, {7});
  in.insert(in.end(), pkt.begin(), pkt.end());
  md.data_end = uint32_t(in.size());
  rt::TestRunOutput o = t.run(*GetParam(), in, md_bytes(md));
  EXPECT_EQ(o.retval, kPass);
  EXPECT_EQ(o.data, in);
  EXPECT_EQ(md_of(o.ctx).data, 8u);
  EXPECT_EQ(md_of(o.ctx).data_end, in.size());
}

INSTANTIATE_TEST_SUITE_P(Engines, XdpRun, ::testing::ValuesIn(all_engines()), engine_name);

// --- TC and socket filters -----------------------------------------------------

TEST(SkbTypes, SectionsAndRights) {
  for (const char* sec : {"tc", "tc/ingress", "tc/egress", "tcx/ingress", "tcx/egress", "classifier", "classifier/x"})
    EXPECT_EQ(bpf::program_type_for_section(sec)->type, &bpf::tc_program_type()) << sec;
  EXPECT_FALSE(bpf::program_type_for_section("tcx/other"));
  EXPECT_EQ(bpf::program_type_for_section("socket")->type, &bpf::socket_program_type());
  EXPECT_EQ(bpf::program_type_for_section("socket/filter")->type, &bpf::socket_program_type());
  for (const bpf::ProgramType* t : {&bpf::tc_program_type(), &bpf::socket_program_type()})
    for (const bpf::CtxField& f : t->ctx.fields) {
      if (f.value == bpf::CtxValue::Scalar) EXPECT_EQ(f.native_size, f.size) << f.name;
      EXPECT_LE(f.native_offset + f.native_size, sizeof(bpf::SkBuff)) << f.name;
    }
  auto as = [](const bpf::ProgramType& t, const std::string& src) {
    bpf::Program p = bpf::assemble(src, "t.s");
    p.type = &t;
    return refusal(p);
  };
  const bpf::ProgramType& tc = bpf::tc_program_type();
  const bpf::ProgramType& sock = bpf::socket_program_type();
  EXPECT_EQ(as(tc, "stw [%r1+8], 1\nstw [%r1+48], 2\nstb [%r1+49], 3\nstdw [%r1+152], 4\nmov %r0, 0\nexit"),
            "accepted");  // mark, cb[0], a byte of cb, tstamp
  EXPECT_EQ(as(tc, "stw [%r1+0], 1\nmov %r0, 0\nexit"),
            "t.s: tc: instruction 0: invalid bpf_context access off=0 size=4 (field len may not be written by tc "
            "programs)");
  EXPECT_EQ(as(tc, "sth [%r1+8], 1\nmov %r0, 0\nexit"),
            "t.s: tc: instruction 0: invalid bpf_context access off=8 size=2 (mark is written as 4 bytes)");
  EXPECT_EQ(as(tc, "ldxh %r0, [%r1+18]\nexit"), "accepted");  // narrow read of protocol
  EXPECT_EQ(as(tc, "ldxw %r0, [%r1+88]\nexit"), "t.s: tc: instruction 0: invalid bpf_context access off=88 size=4");
  EXPECT_EQ(as(sock, "ldxw %r0, [%r1+76]\nexit"),
            "t.s: socket: instruction 0: invalid bpf_context access off=76 size=4 (field data may not be read by "
            "socket programs)");
  EXPECT_EQ(as(sock, "stw [%r1+8], 1\nmov %r0, 0\nexit"),
            "t.s: socket: instruction 0: invalid bpf_context access off=8 size=4 (field mark may not be written by "
            "socket programs)");
  EXPECT_EQ(as(sock, "stw [%r1+56], 1\nldxw %r0, [%r1+0]\nexit"), "accepted");  // cb[2], len
  EXPECT_EQ(as(sock, "stdw [%r10-8], 0\nmov %r2, 0\nmov %r3, %r10\nadd %r3, -8\nmov %r4, 8\nmov %r5, 0\ncall 9\n"
                     "mov %r0, 0\nexit"),
            "t.s: socket: instruction 6: program of this type cannot use helper skb_store_bytes#9");
  EXPECT_EQ(as(bpf::xdp_program_type(),
               "mov %r2, 0\nmov %r3, %r10\nadd %r3, -8\nmov %r4, 8\ncall 26\nmov %r0, 0\nexit"),
            "t.s: xdp: instruction 4: program of this type cannot use helper skb_load_bytes#26");
}

// A 42-byte IPv4/UDP frame to 00:00:00:00:00:00 (loopback: PACKET_HOST).
std::vector<uint8_t> udp4(uint8_t ttl = 64) {
  std::vector<uint8_t> f(6, 0);
  f.insert(f.end(), 6, 0x22);
  f.insert(f.end(), {0x08, 0x00, 0x45, 0, 0, 28, 0, 1, 0, 0, ttl, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
                     0x30, 0x39, 0, 53, 0, 8, 0, 0});
  return f;
}

int64_t seen(Typed& t, uint32_t slot) {
  int64_t v = 0;
  if (const void* p = t.env.find_map("seen")->lookup(&slot)) std::memcpy(&v, p, 8);
  return v;
}

TEST_P(XdpRun, TcClassifier) {
  Typed t("tc_classify");
  ASSERT_EQ(t.elf.type, &bpf::tc_program_type());
  bpf::SkBuffMd md{};
  md.mark = 5;
  md.cb[0] = 11;
  md.ingress_ifindex = 3;
  std::vector<uint8_t> ctx(sizeof md);
  std::memcpy(ctx.data(), &md, sizeof md);
  rt::TestRunOutput o = t.run(*GetParam(), udp4(), ctx);
  EXPECT_EQ(o.retval, 0u);  // TC_ACT_OK: the TTL went down by one
  std::vector<uint8_t> want = udp4(63);
  EXPECT_EQ(o.data, want);
  EXPECT_EQ(seen(t, 0), 42);      // len: from the Ethernet header
  EXPECT_EQ(seen(t, 1), 0);       // PACKET_HOST
  EXPECT_EQ(seen(t, 2), 5);       // mark from ctx_in
  EXPECT_EQ(seen(t, 4), 0x0008);  // protocol, network order
  EXPECT_EQ(seen(t, 9), 3);       // ingress_ifindex
  EXPECT_EQ(seen(t, 10), 1);      // ifindex: loopback
  EXPECT_EQ(seen(t, 12), 11);     // cb[0]
  EXPECT_EQ(seen(t, 40), 0);      // protocol's second byte
  EXPECT_EQ(seen(t, 42), 64);     // the TTL read with skb_load_bytes
  EXPECT_EQ(seen(t, 43), 0);
  EXPECT_EQ(seen(t, 44), -EINVAL);
  EXPECT_EQ(seen(t, 46), -EFAULT);
  EXPECT_EQ(seen(t, 47), -EFAULT);
  EXPECT_EQ(seen(t, 45), 0);      // zeroed by the failed load
  bpf::SkBuffMd out{};
  ASSERT_EQ(o.ctx.size(), sizeof out);
  std::memcpy(&out, o.ctx.data(), sizeof out);
  EXPECT_EQ(out.mark, 16u);
  EXPECT_EQ(out.priority, 7u);
  EXPECT_EQ(out.cb[1], 111u);
  EXPECT_EQ(out.cb[4], 0xabcdefu);
  EXPECT_EQ(out.tstamp, 1000u);
  EXPECT_EQ(out.wire_len, 42u);
  EXPECT_EQ(out.ifindex, 1u);
  // Twice on the same context: tc_classid is a u16 in the kernel.
  t.run(*GetParam(), udp4(), ctx, 2);
  EXPECT_EQ(seen(t, 18), 0x0002);
}

TEST_P(XdpRun, SocketFilter) {
  Typed t("socket_filter");
  ASSERT_EQ(t.elf.type, &bpf::socket_program_type());
  rt::TestRunOutput o = t.run(*GetParam(), udp4());
  EXPECT_EQ(o.retval, 28u);  // UDP: the whole packet from the network header
  std::vector<uint8_t> want = udp4();
  std::fill(want.begin(), want.begin() + 14, 0);  // the Ethernet header comes back as zeros
  EXPECT_EQ(o.data, want);
  EXPECT_EQ(seen(t, 0), 28);  // len: from the network header
  EXPECT_EQ(seen(t, 40), 0);
  EXPECT_EQ(seen(t, 42), 64);
  std::vector<uint8_t> bcast = udp4();
  std::fill(bcast.begin(), bcast.begin() + 6, 0xff);
  t.run(*GetParam(), bcast);
  EXPECT_EQ(seen(t, 1), 2);  // multicast: loopback has no broadcast address
}

TEST(SkbTestRun, BadInput) {
  Typed t("tc_classify");
  const Engine& e = engines().front();
  EXPECT_EQ(error_of([&] { t.run(e, std::vector<uint8_t>(13, 0)); }),
            "data_in: 13 bytes: a socket buffer's test run needs at least an Ethernet header (14 bytes) (the kernel: "
            "EINVAL)");
  EXPECT_EQ(error_of([&] { t.run(e, std::vector<uint8_t>(3713, 0)); }),
            "data_in: 3713 bytes: more than the 3712 a test run's linear sk_buff holds (the kernel: EINVAL)");
  std::vector<uint8_t> short_ip = udp4();
  short_ip.resize(30);
  EXPECT_EQ(error_of([&] { t.run(e, short_ip); }),
            "data_in: 30 bytes: an IPv4 frame needs a 20-byte IP header after the Ethernet header (the kernel: "
            "EINVAL)");
  std::vector<uint8_t> ctx(sizeof(bpf::SkBuffMd), 0);
  ctx[0] = 1;  // len
  EXPECT_EQ(error_of([&] { t.run(e, udp4(), ctx); }),
            "ctx_in: byte 0 is not zero: a test run sets only mark, priority, ingress_ifindex, ifindex, cb, tstamp, "
            "wire_len, gso_segs, gso_size and hwtstamp (len, pkt_type must be 0) (the kernel: EINVAL)");
  ctx[0] = 0;
  ctx[40] = 4;  // ifindex
  EXPECT_EQ(error_of([&] { t.run(e, udp4(), ctx); }),
            "ctx_in: field ifindex: 4: a test run here has only the loopback device (ifindex 1)");
  ctx[40] = 0;
  ctx[160] = 10;  // wire_len < len
  EXPECT_EQ(error_of([&] { t.run(e, udp4(), ctx); }),
            "ctx_in: field wire_len: 10: it must be 0 or from len (42) to 65536 (the kernel: EINVAL)");
  ctx[160] = 0;
  ctx.resize(200, 0);
  ctx[199] = 1;
  EXPECT_EQ(error_of([&] { t.run(e, udp4(), ctx); }),
            "ctx_in: byte 199 is not zero, past the 192 bytes of struct __sk_buff (the kernel: E2BIG)");
}

// --- bad input ---------------------------------------------------------------

TEST(XdpTestRun, BadInput) {
  Typed t("xdp_eth");
  const Engine& e = engines().front();
  EXPECT_EQ(error_of([&] { t.run(e, std::vector<uint8_t>(13, 0)); }),
            "data_in: 13 bytes: an XDP frame holds at least an Ethernet header (14 bytes) (the kernel: EINVAL)");
  // Past the frame's 3520 bytes the packet goes on in fragments of a page,
  // at most 17 (MAX_SKB_FRAGS).
  std::vector<uint8_t> big_frame = frame(0x800);
  big_frame.resize(4000, 0x42);
  rt::TestRunOutput o = t.run(e, big_frame);
  EXPECT_EQ(o.retval, kPass);
  EXPECT_EQ(o.data, big_frame);
  EXPECT_EQ(md_of(o.ctx).data_end, 3520u);
  EXPECT_EQ(error_of([&] { t.run(e, std::vector<uint8_t>(3520 + 17 * 4096 + 1, 0)); }),
            "data_in: 73153 bytes: 3520 in the frame and 18 fragments of 4096; at most 17 fragments (the kernel: "
            "ENOMEM)");
  bpf::XdpMd md{};
  md.data_end = 16;
  md.data_meta = 4;
  EXPECT_EQ(error_of([&] { t.run(e, frame(0x800), md_bytes(md)); }),
            "ctx_in: field data_meta: is 4; it must be 0 (no data before the metadata) (the kernel: EINVAL)");
  md.data_meta = 0;
  md.data_end = 17;
  EXPECT_EQ(error_of([&] { t.run(e, frame(0x800), md_bytes(md)); }),
            "ctx_in: field data_end: 17 is past the 16 bytes of data_in (the kernel: EINVAL)");
  md.data_end = 16;
  md.data = 3;
  EXPECT_EQ(error_of([&] { t.run(e, frame(0x800), md_bytes(md)); }),
            "ctx_in: field data: 3 bytes of metadata; it must be a multiple of 4, at most 32 (the kernel: EINVAL)");
  md.data = 0;
  md.egress_ifindex = 2;
  EXPECT_EQ(error_of([&] { t.run(e, frame(0x800), md_bytes(md)); }),
            "ctx_in: field egress_ifindex: must be 0 (a test run has no egress device) (the kernel: EINVAL)");
  md.egress_ifindex = 0;
  std::vector<uint8_t> big = md_bytes(md);
  big.resize(32, 0);
  big[30] = 1;
  EXPECT_EQ(error_of([&] { t.run(e, frame(0x800), big); }),
            "ctx_in: byte 30 is not zero, past the 24 bytes of struct xdp_md (the kernel: E2BIG)");
  big[30] = 0;
  EXPECT_EQ(t.run(e, frame(0x800), big).retval, kPass);  // zeros past the struct are fine
  // An empty ctx_in is all zeros: data_end 0, the whole packet a fragment
  // (found by fuzz_test_run: the empty context was copied from null).
  o = t.run(e, frame(0x800), std::vector<uint8_t>{});
  EXPECT_EQ(o.retval, kDrop);
  EXPECT_EQ(o.data, frame(0x800));
  // A data_end short of the packet: the rest is a fragment, out of the
  // program's direct reach (it sees 10 bytes and drops).
  md.data_end = 10;
  o = t.run(e, frame(0x800), md_bytes(md));
  EXPECT_EQ(o.retval, kDrop);
  EXPECT_EQ(o.data, frame(0x800));
  EXPECT_EQ(md_of(o.ctx).data_end, 10u);
  // A raw program has no test run.
  bpf::ElfProgram raw = t.elf;
  raw.program.type = nullptr;
  rt::TestRunInput in;
  in.data = frame(0x800);
  EXPECT_EQ(error_of([&] { rt::test_run(e, raw.program, t.helpers, in); }),
            object("xdp_eth") + ": a raw program has no test run (types with one: xdp, tc, socket)");
}

}  // namespace
}  // namespace sb::test

namespace sb::test {
namespace {

bpf::Program probe_asm(const std::string& src, Arch arch = Arch::X86_64) {
  bpf::Program p = bpf::assemble(src, "t.s");
  p.type = &bpf::probe_program_type(arch);
  return p;
}

// A probe's ctx is the architecture's pt_regs, read-only, any aligned
// read inside it (the kernel's kprobe_prog_is_valid_access); the sections
// libbpf gives probes and tracing programs name these types.
TEST(ProbeType, PtRegsAsTheKernelChecksIt) {
  EXPECT_EQ(bpf::probe_program_type(Arch::X86_64).ctx.size, 168u);
  EXPECT_EQ(bpf::probe_program_type(Arch::Arm64).ctx.size, 272u);
  EXPECT_EQ(bpf::probe_program_type(Arch::Riscv64).ctx.size, 256u);
  EXPECT_EQ(bpf::probe_program_type(Arch::X86_64).kernel_type, 2u);  // BPF_PROG_TYPE_KPROBE
  EXPECT_EQ(bpf::find_program_type("kprobe"), &bpf::probe_program_type(Arch::X86_64));
  for (const char* s : {"uprobe", "uprobe//proc/self/exe:main", "uretprobe/x:f", "kprobe/do_sys_open", "kretprobe/f"})
    EXPECT_EQ(bpf::program_type_for_section(s)->type, &bpf::probe_program_type(Arch::X86_64)) << s;
  for (const char* s : {"fentry/f", "fexit/f", "fmod_ret/f"})
    EXPECT_EQ(bpf::program_type_for_section(s)->type, &bpf::tracing_program_type()) << s;
  // di (112), ip (128), ss (160, the last word); narrow aligned reads.
  for (const char* ok : {"ldxdw %r0, [%r1+112]\nexit", "ldxdw %r0, [%r1+160]\nexit", "ldxw %r0, [%r1+132]\nexit",
                         "ldxb %r0, [%r1+167]\nexit"})
    EXPECT_EQ(refusal(probe_asm(ok)), "accepted") << ok;
  EXPECT_NE(refusal(probe_asm("ldxdw %r0, [%r1+168]\nexit")).find("invalid bpf_context access off=168 size=8"),
            std::string::npos);
  EXPECT_NE(refusal(probe_asm("ldxdw %r0, [%r1+4]\nexit")).find("invalid bpf_context access off=4 size=8"),
            std::string::npos);
  EXPECT_NE(refusal(probe_asm("stdw [%r1+80], 1\nmov %r0, 0\nexit")).find("invalid bpf_context access off=80"),
            std::string::npos);
  EXPECT_NE(refusal(probe_asm("ldxdw %r0, [%r1-8]\nexit")).find("invalid bpf_context access"), std::string::npos);
  // arm64's user_pt_regs reaches pc (256) and pstate (264).
  EXPECT_EQ(refusal(probe_asm("ldxdw %r0, [%r1+264]\nexit", Arch::Arm64)), "accepted");
  EXPECT_NE(refusal(probe_asm("ldxdw %r0, [%r1+264]\nexit")).find("off=264"), std::string::npos);
  // The tracing helpers are a probe's; the packet ones are not.
  EXPECT_EQ(refusal(probe_asm("call 14\nexit")), "accepted");
  EXPECT_EQ(refusal(probe_asm("mov %r2, %r10\nadd %r2, -16\nmov %r1, %r2\nmov %r2, 16\ncall 16\nmov %r0, 0\nexit")),
            "accepted");
  EXPECT_NE(refusal(probe_asm("mov %r2, 0\nmov %r3, %r10\nadd %r3, -8\nmov %r4, 8\ncall 26\nexit")), "accepted");
}

}  // namespace
}  // namespace sb::test
