// The kind of a long-lived thread, for the sandbox's per-kind system call
// filters (app/sandbox.h RestrictThreadKinds). A thread declares its kind
// first thing (SetThreadKind); once the sandbox is on, the hook it set
// narrows a thread that declares itself later at once, and the ones that
// declared earlier are narrowed by a signal.
#pragma once

#include <atomic>

namespace base {

enum class ThreadKind : int {
  kOther = 0,     // main, signals, DNS, timers: the process-wide list only
  kSmtpWorker,    // net::Server's I/O threads (SMTP sessions)
  kLedgerWriter,  // ledger::Ledger's writer
  kApi,           // api::HttpServer's request workers
};
inline constexpr int kNumThreadKinds = 4;

using ThreadKindHook = void (*)(ThreadKind);

// Constant-initialised: readable from a signal handler.
inline thread_local ThreadKind t_thread_kind = ThreadKind::kOther;
inline std::atomic<ThreadKindHook> g_thread_kind_hook{nullptr};

inline ThreadKind CurrentThreadKind() { return t_thread_kind; }

// Declares the calling thread's kind and, when the sandbox has set its
// hook, applies the kind's filter to it now.
inline void SetThreadKind(ThreadKind kind) {
  t_thread_kind = kind;
  if (ThreadKindHook hook = g_thread_kind_hook.load()) hook(kind);
}

}  // namespace base
