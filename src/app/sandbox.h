// server.sandbox: what the running server may still do once it has bound
// its sockets, dropped its user and opened its files.
#pragma once

#include <signal.h>

#include <atomic>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/thread_kind.h"
#include "config/config.h"

namespace app {

struct SandboxOptions {
  // The packet-drop rule is owned: `nft` runs through sh at exit, so
  // execve, fork-like clones and wait4 stay allowed and CAP_NET_ADMIN is
  // kept (permitted, inheritable, ambient; never effective).
  bool allow_exec = false;
};

// Drops every capability (all sets, and the bounding set where
// CAP_SETPCAP allows) but CAP_NET_ADMIN with allow_exec, sets
// PR_SET_NO_NEW_PRIVS, and installs the seccomp allow-list on every thread
// of the process (TSYNC). A system call outside the list is trapped: the
// SIGSYS handler writes one log line
//   level=error event=sandbox_violation syscall=59 name=execve
// and the process is then killed by SIGSYS (core dump where enabled).
// Threads started later inherit the filter. Irreversible.
base::Status EnterSandbox(const SandboxOptions& options);

// The system calls the filter allows (docs/OPERATIONS.md, tests).
std::vector<std::string> SandboxAllowList(const SandboxOptions& options);

// Landlock: the paths the running server may still reach (every thread;
// reads and changes elsewhere fail with EACCES). Directories cover what is
// beneath them; a path that does not exist is left out.
struct FileView {
  // The ledger's directory (database, WAL, spill, SQLite's temporary
  // files), the spill file's directory, the capture directory.
  std::vector<std::string> read_write;
  // The configuration file's and the token file's directories (SIGHUP
  // reads them again), /proc/self.
  std::vector<std::string> read_only;
  // Reads are not confined, only changes: sh and nft at exit (a packet-
  // drop rule owned) and libpq (the PostgreSQL store) read files of their
  // own.
  bool reads_anywhere = false;
};

// What cfg's server needs (config_file: the file SIGHUP reads; "" none).
FileView ServerFileView(const config::Config& cfg,
                        const std::string& config_file);

// The signal RestrictFiles sends every other thread; it must not be
// blocked in any thread (Serve unblocks it before starting threads; a
// thread that blocks it makes RestrictFiles fail after a wait).
inline int kLandlockSignal() { return SIGRTMIN + 3; }

// Runs handler on every other thread of the process by kLandlockSignal,
// round after round until a round finds no thread it has not signalled
// (threads started meanwhile are caught by the next round). Each handler
// must increment answered. Returns how many threads did not answer in time.
// Bounded: 20 rounds, each waiting up to 5 s (a loaded machine may not run
// a thread for seconds).
int SignalOtherThreads(void (*handler)(int), const std::atomic<int>& answered);

// The kernel's Landlock ABI version; 0 without Landlock.
int LandlockAbi();

// Restricts every thread of the process to view: the calling thread with
// landlock_restrict_self, every other one by a signal whose handler does
// the same (Landlock acts per thread and has no TSYNC before ABI 8);
// threads started later inherit it. Sets no_new_privs (per thread, as
// Landlock requires). Irreversible; call before EnterSandbox (its seccomp
// list has no landlock calls). Returns the ABI version used; an error when
// the kernel has no Landlock (the caller logs it and goes on: the systemd
// unit's ReadWritePaths= then bounds the writes) or a thread could not be
// restricted.
base::Result<int> RestrictFiles(const FileView& view);

// Per-thread-kind filters (sandbox_threads.cc), stacked on EnterSandbox's
// list: a call a kind is denied fails with EPERM in that kind's threads
// (not a kill: a call path missed here costs one failed operation, not the
// server). SMTP workers: no files (open, sync, rename, unlink...); the
// ledger writer: no accept, bind, listen, nor socket/connect with the SQLite
// store; API workers: no bind, listen, accept, sync, rename. Threads of no
// kind (main, signals, DNS, trap writer) keep the process-wide list.
struct ThreadFilterOptions {
  bool worker_files = false;   // capture.dir: workers write the captures
  bool store_network = false;  // PostgreSQL store: the writer connects
};
// What kind is denied with options (docs/OPERATIONS.md, tests).
std::vector<std::string> ThreadKindDenyList(base::ThreadKind kind,
                                            const ThreadFilterOptions& o);
// Builds the filters. REQUIRES: before EnterSandbox (libseccomp probes the
// kernel with calls the process-wide list traps).
base::Status PrepareThreadFilters(const ThreadFilterOptions& options);
// After EnterSandbox: narrows every thread that declared its kind
// (base::SetThreadKind) by a signal (kLandlockSignal, after RestrictFiles
// is done with it), and sets the hook that narrows a thread declaring its
// kind later. Bounded like RestrictFiles; an error names the threads that
// could not be narrowed (the caller logs it and goes on).
base::Status RestrictThreadKinds();

}  // namespace app
