// Whether this build runs under a sanitizer (ASan or TSan). Code that must
// allow the sanitizer's own system calls, and tests whose figures mean
// nothing under one (RSS, seccomp kills), ask here instead of repeating the
// compiler checks.
#ifndef SPAMSINK_BASE_SANITIZER_H_
#define SPAMSINK_BASE_SANITIZER_H_

namespace base {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizerBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitizerBuild = true;
#else
inline constexpr bool kSanitizerBuild = false;
#endif
#else
inline constexpr bool kSanitizerBuild = false;
#endif

}  // namespace base

#endif  // SPAMSINK_BASE_SANITIZER_H_
