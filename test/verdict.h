// The verifier's verdict on a program with the standard helpers of an
// environment (its maps are the ones lddw may name): "accepted" or the
// error's text, for tests that compare refusals word for word.
#pragma once

#include <string>

#include "frontend/verifier/verifier.h"
#include "ir/diag.h"
#include "runtime/helpers/std_helpers.h"

namespace sb::test {

inline std::string verdict(rt::Environment& env, const bpf::Program& p) {
  const rt::HelperTable h = rt::standard_helpers(env);
  try {
    bpf::verifier::verify(p, h.verify_options());
    return "accepted";
  } catch (const Error& e) {
    return e.what();
  }
}

}  // namespace sb::test
