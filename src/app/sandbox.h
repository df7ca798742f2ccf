// server.sandbox: what the running server may still do once it has bound
// its sockets, dropped its user and opened its files.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

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

}  // namespace app
