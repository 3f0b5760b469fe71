#include "runtime/exec/hardening.h"

#include <atomic>
#include <cstring>

#include <fmt/format.h>

#include "ir/diag.h"

namespace sb::rt {

namespace {

// lo and, per access size, the last start address of [base, base + len).
void set_range(uint64_t& lo, uint64_t (&last)[4], uint64_t base, uint64_t len) {
  if (base == 0 || len == 0) {
    lo = ~uint64_t(0);
    for (uint64_t& l : last) l = 0;
    return;
  }
  lo = base;
  for (int k = 0; k < 4; ++k) {
    const uint64_t n = uint64_t(1) << k;
    last[k] = len >= n ? base + (len - n) : 0;  // 0 < lo: no address fits
  }
}

const uint64_t kNeverStop = 0;

// [addr, addr + size) lies inside r (no overflow for any addr, size).
bool contains(const HostRange& r, uint64_t addr, uint64_t size) {
  return addr >= r.addr && size <= r.size && addr - r.addr <= r.size - size;
}

// The run block under the stack region; the stack starts zeroed, as in the
// interpreter, so nothing of the host's native stack shows through.
void fill_block(uint64_t mem, uint64_t len, uint64_t entry_frame, uint64_t stack_bytes, uint64_t stop_ptr) {
  auto* b = reinterpret_cast<ir::RunBlock*>(uintptr_t(entry_frame - stack_bytes - ir::kRunBlockBytes));
  std::memset(reinterpret_cast<void*>(uintptr_t(entry_frame - stack_bytes)), 0, stack_bytes);
  set_range(b->mem_lo, b->mem_last, mem, len);
  set_range(b->cache_lo, b->cache_last, 0, 0);
  b->stop_ptr = stop_ptr;
  b->saved[0] = b->saved[3] = b->saved[4] = b->saved[5] = 0;  // r0, r3-r5 start at zero
}

uint64_t run_init_helper(uint64_t mem, uint64_t len, uint64_t entry_frame, uint64_t stack_bytes, uint64_t) {
  // Without a record (hardened code run directly) only the stack and the
  // memory pass, and nothing stops it.
  if (RunRecord* r = RunScope::current()) r->init(mem, len, entry_frame, stack_bytes);
  else fill_block(mem, len, entry_frame, stack_bytes, uint64_t(uintptr_t(&kNeverStop)));
  return 0;
}

uint64_t check_access_helper(uint64_t addr, uint64_t size, uint64_t origin, uint64_t block, uint64_t) {
  RunRecord* r = RunScope::current();
  return r && r->check(addr, size, uint32_t(origin), reinterpret_cast<ir::RunBlock*>(uintptr_t(block)));
}

}  // namespace

std::vector<HostRange> reachable_ranges(const HelperTable& helpers) {
  if (const HelperContext* ctx = helpers.context()) return ctx->host_ranges();
  return {};
}

std::string access_fault(uint64_t addr, uint64_t size) {
  return fmt::format("out-of-bounds access of {} bytes at {:#x}", size, addr);
}

RunRecord::RunRecord(std::vector<HostRange> ranges, const Safety& safety)
    : ranges_(std::move(ranges)), bounds_(safety.bounds_check) {
  if (safety.time_budget_ns) stop_page_ = PageMemory(8);
}

bool RunRecord::check(uint64_t addr, uint64_t size, uint32_t origin, ir::RunBlock* block) {
  for (const HostRange& r : ranges_) {
    if (contains(r, addr, size)) {
      set_range(block->cache_lo, block->cache_last, r.addr, r.size);
      return true;
    }
  }
  if (!fault_) fault_ = Fault{addr, size, origin};
  return false;
}

void RunRecord::init(uint64_t mem, uint64_t len, uint64_t entry_frame, uint64_t stack_bytes) {
  // A tail-call target starts with r1 but no length: it keeps the memory
  // the run began with.
  if (!memory_) memory_ = HostRange{mem, len};
  stack_ = {entry_frame - stack_bytes, stack_bytes};
  fill_block(memory_->addr, memory_->size, entry_frame, stack_bytes,
             stop_page_.size() ? uint64_t(uintptr_t(stop_page_.data())) : uint64_t(uintptr_t(&kNeverStop)));
}

void RunRecord::set_regions(HostRange memory, HostRange stack) {
  memory_ = memory;
  stack_ = stack;
}

bool RunRecord::allows(uint64_t addr, uint64_t size) const {
  if (contains(stack_, addr, size) || (memory_ && memory_->addr && contains(*memory_, addr, size))) return true;
  for (const HostRange& r : ranges_)
    if (contains(r, addr, size)) return true;
  return false;
}

bool access_allowed(uint64_t addr, uint64_t size) {
  const RunRecord* r = RunScope::current();
  return !r || !r->checks_bounds() || r->allows(addr, size);
}

void RunRecord::request_stop() {
  if (stop_page_.size())
    std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(stop_page_.data())).store(1, std::memory_order_relaxed);
}

std::optional<HostRange> RunRecord::stop_range() const {
  if (!stop_page_.size()) return std::nullopt;
  return stop_page_.range();
}


Watchdog::Watchdog(RunRecord& record, std::chrono::nanoseconds budget) {
  if (budget.count() <= 0) return;
  thread_ = std::thread([this, &record, deadline = std::chrono::steady_clock::now() + budget] {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_until(lock, deadline, [this] { return done_; })) record.request_stop();
  });
}

Watchdog::~Watchdog() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    done_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

HelperTable with_hardening_helpers(const HelperTable& helpers) {
  HelperTable t = helpers;
  t.add(ir::kRunInitHelper, "sb_run_init", run_init_helper);
  t.add(ir::kCheckAccessHelper, "sb_check_access", check_access_helper);
  return t;
}

uint64_t finish_run(uint64_t r0, uint64_t status, const std::string& program, const RunRecord* record,
                    uint64_t time_budget_ns) {
  if (status == 0) return r0;
  const auto code = ir::TrapCode(status);
  if (code == ir::TrapCode::OutOfBounds && record && record->fault())
    throw Error(insn_location(program, record->fault()->origin),
                access_fault(record->fault()->addr, record->fault()->size));
  if (code == ir::TrapCode::TimeLimit)
    throw Error(insn_location(program, r0), fmt::format("time budget of {} us exhausted", time_budget_ns / 1000));
  throw Error(insn_location(program, r0), ir::trap_message(code));
}

}  // namespace sb::rt
