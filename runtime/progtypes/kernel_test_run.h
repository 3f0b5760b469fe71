// The Linux kernel as one more engine for typed programs: a clang object
// loaded by libbpf (its maps created, its programs loaded as their
// sections' types), one program run by BPF_PROG_TEST_RUN, the maps written
// and read by the map syscalls. `springboard diff --engine kernel` and the
// kernel comparison tests (test/progtypes_kernel_test.cpp) use it. Needs
// libbpf at build time (SB_HAVE_LIBBPF; without it every load fails saying
// so) and CAP_BPF + CAP_SYS_ADMIN (root) at run time. Kept out of the
// library (its own target, springboard_kernel): embedders of Springboard
// do not need libbpf.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/maps/maps.h"

namespace sb::rt {

class KernelObject {
 public:
  // Null, with the reason in *why (libbpf's log included), when libbpf
  // cannot open or load it. `function` empty: the object's first program.
  static std::unique_ptr<KernelObject> load(const std::string& path, const std::string& function, std::string* why);
  ~KernelObject();
  KernelObject(const KernelObject&) = delete;
  KernelObject& operator=(const KernelObject&) = delete;

  // BPF_MAP_UPDATE_ELEM; false with errno on failure.
  bool update(const std::string& map, const std::vector<uint8_t>& key, const std::vector<uint8_t>& value);

  struct Run {
    int error = 0;  // 0, or the errno BPF_PROG_TEST_RUN failed with (EINVAL for bad input)
    uint32_t retval = 0;
    std::vector<uint8_t> data, ctx;
    uint32_t duration_ns = 0;  // the kernel's mean time per run (BPF_PROG_TEST_RUN's duration)
  };
  Run test_run(const std::vector<uint8_t>& data, const std::optional<std::vector<uint8_t>>& ctx, uint32_t repeat = 1);

  // A map's elements as map_entries reads Springboard's (arrays by index,
  // hashes sorted by key, per-CPU maps one value per possible CPU).
  std::vector<MapEntry> entries(const std::string& map) const;
  std::vector<std::string> map_names() const;

  // A perf event array read as libbpf's perf_buffer reads it (an event on
  // every CPU, slot = CPU): false with errno when it cannot be set up.
  bool open_perf_buffer(const std::string& map);
  // The records written since the last call: the raw sample's bytes, each
  // padded by the kernel to 4 bytes short of a multiple of 8.
  std::vector<std::vector<uint8_t>> perf_records();

 private:
  KernelObject() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sb::rt
