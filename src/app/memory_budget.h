// server.memory_limit's default and the budgets derived from it. The limit
// (when left at -1) comes from the memory this process may use: the
// smallest cgroup v2 memory.max of its own cgroup and the cgroups above
// it, else the machine's MemTotal. The reputation's byte budget, the
// ledger's pending bytes and the start-up seed are each derived from the
// limit unless set. Files are read through an injected reader (tests).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "config/config.h"

namespace app {

// A small file's whole content, nullopt when it cannot be read.
using FileReader =
    std::function<std::optional<std::string>(const std::string& path)>;
FileReader SystemFileReader();

// What this process may use: bytes 0 when unknown; source "cgroup"
// (memory.max) or "meminfo" (MemTotal).
struct MachineMemory {
  int64_t bytes = 0;
  std::string source;
};
MachineMemory ReadMachineMemory(const FileReader& read);

struct MemoryBudgets {
  int64_t limit = 0;  // server.memory_limit as applied; 0: no ceiling
  // Where the limit came from: "config", "cgroup" (3/4 of memory.max),
  // "meminfo" (1/2 of MemTotal), "off" (memory_limit = 0) or "unknown"
  // (-1 and neither file readable).
  std::string source;
  int64_t reputation_bytes = 0;      // peer cache byte budget
  int64_t ledger_pending_bytes = 0;  // ledger.max_pending_bytes
  int64_t seed_bytes = 0;            // reputation filled at start, at most
};

// Derives what cfg leaves to derive (memory_limit -1, reputation_bytes 0,
// seed_bytes 0, ledger.max_pending_bytes -1) and writes the results back,
// so that net/ and ledger/ get plain numbers:
//   limit: config; else 3/4 of memory.max (the cgroup also charges page
//     cache and kernel memory); else 1/2 of MemTotal; never under 16 MiB.
//   reputation: limit / 4 (64 MiB without a limit), at least 1 MiB.
//   ledger pending: limit / 8 (256 MiB without a limit), at least 64 KiB.
//   seed: reputation / 2 (the rest is for senders met after the start).
MemoryBudgets ResolveMemoryBudgets(config::Config* cfg, const FileReader& read);
// Puts b's values into the settings c leaves to derive: a reloaded file
// gets the start's derivation without reading anything again (the files
// may be out of the sandbox's reach by then), so SIGHUP sees no change.
void ApplyMemoryBudgets(const MemoryBudgets& b, config::Config* c);
// The memory_budgets log line's fields, also /healthz's "memory".
void LogMemoryBudgets(const MemoryBudgets& b);

}  // namespace app
