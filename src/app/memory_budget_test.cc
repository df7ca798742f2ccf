// server.memory_limit's default and the derived budgets, from injected
// /proc and cgroup files.
#include "app/memory_budget.h"

#include <gtest/gtest.h>

#include <map>

namespace app {
namespace {

constexpr int64_t kMiB = int64_t(1) << 20;

FileReader Files(std::map<std::string, std::string> files) {
  return [files](const std::string& path) -> std::optional<std::string> {
    auto it = files.find(path);
    if (it == files.end()) return std::nullopt;
    return it->second;
  };
}

const char* kMeminfo =
    "MemTotal:        2097152 kB\nMemFree:          100000 kB\n";

TEST(MemoryBudget, CgroupMemoryMaxWinsAndTheSmallestAncestorCounts) {
  // Our cgroup says "max"; its parent 512 MiB, the grandparent 1 GiB.
  auto read = Files({
      {"/proc/self/cgroup", "0::/system.slice/spamsink.service\n"},
      {"/sys/fs/cgroup/system.slice/spamsink.service/memory.max", "max\n"},
      {"/sys/fs/cgroup/system.slice/memory.max", "536870912\n"},
      {"/proc/meminfo", kMeminfo},
  });
  MachineMemory m = ReadMachineMemory(read);
  EXPECT_EQ(m.source, "cgroup");
  EXPECT_EQ(m.bytes, 512 * kMiB);
  config::Config cfg;
  ASSERT_EQ(cfg.server.memory_limit, -1);  // the default derives
  MemoryBudgets b = ResolveMemoryBudgets(&cfg, read);
  EXPECT_EQ(b.source, "cgroup");
  EXPECT_EQ(b.limit, 384 * kMiB);  // 3/4 of memory.max
  EXPECT_EQ(cfg.server.memory_limit, 384 * kMiB);
  EXPECT_EQ(b.reputation_bytes, 96 * kMiB);
  EXPECT_EQ(cfg.server.reputation_bytes, 96 * kMiB);
  EXPECT_EQ(b.ledger_pending_bytes, 48 * kMiB);
  EXPECT_EQ(cfg.ledger.max_pending_bytes, 48 * kMiB);
  EXPECT_EQ(b.seed_bytes, 48 * kMiB);
  EXPECT_EQ(cfg.server.seed_bytes, 48 * kMiB);
}

TEST(MemoryBudget, WithoutACgroupLimitHalfOfMemTotal) {
  // cgroup v1 (no "0::" line), or v2 with "max" all the way up.
  for (auto cgroup : {std::string("4:memory:/x\n"), std::string("0::/a\n")}) {
    auto read = Files({{"/proc/self/cgroup", cgroup},
                       {"/sys/fs/cgroup/a/memory.max", "max\n"},
                       {"/proc/meminfo", kMeminfo}});
    config::Config cfg;
    MemoryBudgets b = ResolveMemoryBudgets(&cfg, read);
    EXPECT_EQ(b.source, "meminfo") << cgroup;
    EXPECT_EQ(b.limit, 1024 * kMiB) << cgroup;
    EXPECT_EQ(b.reputation_bytes, 256 * kMiB);
    EXPECT_EQ(b.ledger_pending_bytes, 128 * kMiB);
  }
}

TEST(MemoryBudget, SmallMachineGetsTheFloor) {
  // A 24 MiB VM: half is 12 MiB, under the 16 MiB floor.
  auto read = Files({{"/proc/meminfo", "MemTotal: 24576 kB\n"}});
  config::Config cfg;
  MemoryBudgets b = ResolveMemoryBudgets(&cfg, read);
  EXPECT_EQ(b.limit, 16 * kMiB);
  EXPECT_EQ(b.reputation_bytes, 4 * kMiB);
  EXPECT_EQ(b.ledger_pending_bytes, 2 * kMiB);
}

TEST(MemoryBudget, ExplicitSettingsAreKept) {
  auto read = Files({{"/proc/meminfo", kMeminfo}});
  config::Config cfg;
  cfg.server.memory_limit = 100 * kMiB;
  cfg.server.reputation_bytes = 7 * kMiB;
  cfg.ledger.max_pending_bytes = 3 * kMiB;
  cfg.server.seed_bytes = 5 * kMiB;
  MemoryBudgets b = ResolveMemoryBudgets(&cfg, read);
  EXPECT_EQ(b.source, "config");
  EXPECT_EQ(b.limit, 100 * kMiB);
  EXPECT_EQ(b.reputation_bytes, 7 * kMiB);
  EXPECT_EQ(b.ledger_pending_bytes, 3 * kMiB);
  EXPECT_EQ(b.seed_bytes, 5 * kMiB);
  // Only the limit set: the rest derive from it.
  config::Config only;
  only.server.memory_limit = 80 * kMiB;
  b = ResolveMemoryBudgets(&only, read);
  EXPECT_EQ(b.reputation_bytes, 20 * kMiB);
  EXPECT_EQ(b.ledger_pending_bytes, 10 * kMiB);
  EXPECT_EQ(b.seed_bytes, 10 * kMiB);
}

TEST(MemoryBudget, NoLimitKeepsTheFixedBudgets) {
  // memory_limit = 0 (off), or -1 with nothing readable.
  config::Config off;
  off.server.memory_limit = 0;
  MemoryBudgets b = ResolveMemoryBudgets(&off, Files({}));
  EXPECT_EQ(b.source, "off");
  EXPECT_EQ(b.limit, 0);
  EXPECT_EQ(b.reputation_bytes, 64 * kMiB);
  EXPECT_EQ(b.ledger_pending_bytes, 256 * kMiB);
  EXPECT_EQ(b.seed_bytes, 32 * kMiB);
  config::Config unknown;
  b = ResolveMemoryBudgets(&unknown, Files({}));
  EXPECT_EQ(b.source, "unknown");
  EXPECT_EQ(unknown.server.memory_limit, 0);
}

TEST(MemoryBudget, AReloadedFileGetsTheStartsDerivation) {
  auto read = Files({{"/proc/meminfo", kMeminfo}});
  config::Config start;
  MemoryBudgets b = ResolveMemoryBudgets(&start, read);
  config::Config reloaded;  // read again from a file that leaves them unset
  ApplyMemoryBudgets(b, &reloaded);
  EXPECT_EQ(reloaded.server.memory_limit, start.server.memory_limit);
  EXPECT_EQ(reloaded.server.reputation_bytes, start.server.reputation_bytes);
  EXPECT_EQ(reloaded.ledger.max_pending_bytes, start.ledger.max_pending_bytes);
  EXPECT_EQ(reloaded.server.seed_bytes, start.server.seed_bytes);
}

TEST(MemoryBudget, TheSystemReaderFindsThisMachinesMemory) {
  MachineMemory m = ReadMachineMemory(SystemFileReader());
  EXPECT_GT(m.bytes, 16 * kMiB);
  EXPECT_TRUE(m.source == "cgroup" || m.source == "meminfo") << m.source;
}

}  // namespace
}  // namespace app
