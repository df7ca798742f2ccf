#include "app/memory_budget.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <sstream>

#include "base/log.h"

namespace app {

namespace {

constexpr int64_t kMiB = int64_t(1) << 20;
constexpr int64_t kMinLimit = 16 * kMiB;  // config.cc refuses less

// The leading decimal of text (after spaces); nullopt if none.
std::optional<int64_t> LeadingNumber(std::string_view text) {
  size_t i = text.find_first_not_of(" \t");
  if (i == std::string_view::npos) return std::nullopt;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data() + i, text.data() + text.size(), v);
  if (ec != std::errc() || p == text.data() + i) return std::nullopt;
  return v;
}

// The smallest memory.max from our cgroup v2 ("0::/path" in
// /proc/self/cgroup) up to the root; 0 when none is set ("max") or read.
int64_t CgroupLimit(const FileReader& read) {
  auto cgroup = read("/proc/self/cgroup");
  if (!cgroup) return 0;
  std::string path;
  std::istringstream lines(*cgroup);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("0::", 0) == 0) path = line.substr(3);
  }
  if (path.empty() || path[0] != '/') return 0;
  int64_t best = 0;
  // Bounded: each step removes one component.
  for (int depth = 0; depth < 256 && path.size() > 1; ++depth) {
    auto max = read("/sys/fs/cgroup" + path + "/memory.max");
    if (max) {
      auto v = LeadingNumber(*max);
      if (v && *v > 0) best = best == 0 ? *v : std::min(best, *v);
    }
    size_t slash = path.find_last_of('/');
    path = slash == 0 ? "/" : path.substr(0, slash);
  }
  return best;
}

}  // namespace

FileReader SystemFileReader() {
  return [](const std::string& path) -> std::optional<std::string> {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::string out;
    char buf[4096];
    // Bounded: these files are small; stop at 1 MiB.
    while (out.size() < (size_t(1) << 20)) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, size_t(n));
    }
    close(fd);
    return out;
  };
}

MachineMemory ReadMachineMemory(const FileReader& read) {
  if (int64_t c = CgroupLimit(read); c > 0) return {c, "cgroup"};
  if (auto info = read("/proc/meminfo")) {
    std::istringstream lines(*info);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("MemTotal:", 0) != 0) continue;
      auto kb = LeadingNumber(std::string_view(line).substr(9));
      if (kb && *kb > 0) return {*kb * 1024, "meminfo"};
    }
  }
  return {};
}

MemoryBudgets ResolveMemoryBudgets(config::Config* cfg,
                                   const FileReader& read) {
  MemoryBudgets b;
  int64_t& limit = cfg->server.memory_limit;
  if (limit > 0) {
    b.source = "config";
  } else if (limit == 0) {
    b.source = "off";
  } else {
    MachineMemory m = ReadMachineMemory(read);
    if (m.bytes == 0) {
      b.source = "unknown";
      limit = 0;
    } else {
      b.source = m.source;
      limit = m.source == "cgroup" ? m.bytes / 4 * 3 : m.bytes / 2;
      limit = std::max(limit, kMinLimit);
    }
  }
  b.limit = limit;
  int64_t& rep = cfg->server.reputation_bytes;
  if (rep <= 0) rep = limit > 0 ? std::max(limit / 4, kMiB) : 64 * kMiB;
  b.reputation_bytes = rep;
  int64_t& pending = cfg->ledger.max_pending_bytes;
  if (pending < 0) {
    pending = limit > 0 ? std::max<int64_t>(limit / 8, 64 << 10) : 256 * kMiB;
  }
  b.ledger_pending_bytes = pending;
  int64_t& seed = cfg->server.seed_bytes;
  if (seed <= 0) seed = rep / 2;
  b.seed_bytes = seed;
  return b;
}

void ApplyMemoryBudgets(const MemoryBudgets& b, config::Config* c) {
  if (c->server.memory_limit < 0) c->server.memory_limit = b.limit;
  if (c->server.reputation_bytes <= 0) {
    c->server.reputation_bytes = b.reputation_bytes;
  }
  if (c->ledger.max_pending_bytes < 0) {
    c->ledger.max_pending_bytes = b.ledger_pending_bytes;
  }
  if (c->server.seed_bytes <= 0) c->server.seed_bytes = b.seed_bytes;
}

void LogMemoryBudgets(const MemoryBudgets& b) {
  base::LogLine(base::LogLevel::kInfo, "memory_budgets")
      .Kv("memory_limit", b.limit)
      .Kv("source", b.source)
      .Kv("reputation_bytes", b.reputation_bytes)
      .Kv("ledger_pending_bytes", b.ledger_pending_bytes)
      .Kv("seed_bytes", b.seed_bytes);
}

}  // namespace app
