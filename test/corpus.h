// The conformance corpus's files, sorted (SB_CONFORMANCE_DIR; empty when
// the directory is absent), for every test that runs the corpus.
#pragma once

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace sb::test {

inline std::vector<std::string> conformance_files() {
  std::vector<std::string> files;
  std::error_code ec;
  if (std::filesystem::is_directory(SB_CONFORMANCE_DIR, ec))
    for (const auto& e : std::filesystem::directory_iterator(SB_CONFORMANCE_DIR))
      if (e.path().extension() == ".data") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace sb::test
