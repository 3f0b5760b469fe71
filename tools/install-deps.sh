#!/usr/bin/env bash
# Installs Springboard's build and test dependencies from Debian 12's
# packages (nothing is vendored or downloaded at build time). Safe to rerun:
# it only asks apt for what is missing.
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config
  llvm-19-dev              # LLVM MC: MCInst building, encoding, streamers, disassembler
  libcapstone-dev          # listings, decoding displaced instructions
  libelf-dev               # hooking: the symbol tables of loaded objects
  libunicorn-dev           # running arm64, riscv64 and x86-64 code
  nlohmann-json3-dev libcli11-dev libfmt-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  clang                    # builds the BPF C test programs (test/programs) at build time
  libbpf-dev               # the kernel as a differential-test oracle (optional at build time)
  systemtap-sdt-dev        # <sys/sdt.h>: USDT probes in the trace tests and examples
  linux-source-6.1         # the kernel's verifier selftests, unpacked at build time (ctest verifier.kernel)
  gcc-riscv64-linux-gnu gcc-aarch64-linux-gnu    # cross-compile the functions arm64/riscv64 trampolines call in Unicorn (tests)
  libc6-dev-arm64-cross libc6-dev-riscv64-cross  # link ahead-of-time objects into static arm64/riscv64 test executables
  qemu-user                # runs those executables (ctest -L aot)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
