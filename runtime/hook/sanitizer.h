// What the hooks do differently when built with ThreadSanitizer (the test
// build of test/hook_tsan_test.cpp; the library itself is never built so).
//
// Threads reach a trampoline's programs through code TSan does not see (the
// patched entry, the thunk's jump through its slot, the JIT image), so the
// edges that order them are stated: publishing an image releases the
// states of its programs and a program's enter acquires its state; a
// program's exit releases it and reclaiming acquires it before it is freed
// (the in-flight counts that agreed). The signal handlers of live patching
// run outside TSan altogether (runtime/hook/live_patch.cpp). Elsewhere all
// of this is nothing.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define SB_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SB_UNDER_TSAN 1
#endif
#endif

#ifdef SB_UNDER_TSAN
#include <sanitizer/tsan_interface.h>
#define SB_SIGNAL_CONTEXT __attribute__((no_sanitize_thread))
#endif

namespace sb::rt {

inline void tsan_release([[maybe_unused]] const void* p) {
#ifdef SB_UNDER_TSAN
  __tsan_release(const_cast<void*>(p));
#endif
}
inline void tsan_acquire([[maybe_unused]] const void* p) {
#ifdef SB_UNDER_TSAN
  __tsan_acquire(const_cast<void*>(p));
#endif
}

}  // namespace sb::rt

#ifndef SB_SIGNAL_CONTEXT
#define SB_SIGNAL_CONTEXT
#endif
