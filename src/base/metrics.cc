#include "base/metrics.h"

#include <array>
#include <memory>
#include <mutex>

namespace base {
namespace {

constexpr int kNumCounters = int(Counter::kCount);

struct Names {
  std::string_view name;
  std::string_view help;
};
constexpr std::array<Names, kNumCounters> kNames = {{
#define SPAMSINK_COUNTER_NAME(e, name, help) {name, help},
    SPAMSINK_COUNTERS(SPAMSINK_COUNTER_NAME)
#undef SPAMSINK_COUNTER_NAME
}};

struct alignas(64) Shard {
  std::array<std::atomic<uint64_t>, kNumCounters> v{};
};

// Shards live for the life of the process (a thread that exits leaves its
// counts behind, which is what a total wants).
std::mutex g_mu;
std::vector<std::unique_ptr<Shard>>& Shards() {
  static auto* shards = new std::vector<std::unique_ptr<Shard>>();
  return *shards;
}

Shard* LocalShard() {
  thread_local Shard* shard = [] {
    std::lock_guard lock(g_mu);
    Shards().push_back(std::make_unique<Shard>());
    return Shards().back().get();
  }();
  return shard;
}

}  // namespace

std::atomic<int64_t> g_open_connections{0};

void Count(Counter c, uint64_t n) {
  auto& cell = LocalShard()->v[int(c)];
  // Only this thread writes the cell: a relaxed load+store is enough.
  cell.store(cell.load(std::memory_order_relaxed) + n,
             std::memory_order_relaxed);
}

std::vector<CounterValue> SnapshotCounters() {
  std::vector<CounterValue> out;
  out.reserve(kNumCounters);
  for (int i = 0; i < kNumCounters; ++i) {
    out.push_back({kNames[i].name, kNames[i].help, 0});
  }
  std::lock_guard lock(g_mu);
  for (const auto& s : Shards()) {
    for (int i = 0; i < kNumCounters; ++i) {
      out[i].value += s->v[i].load(std::memory_order_relaxed);
    }
  }
  return out;
}

uint64_t CounterTotal(Counter c) { return SnapshotCounters()[int(c)].value; }

std::string RenderPrometheus(const std::vector<CounterValue>& counters,
                             int64_t open_connections) {
  std::string out;
  out.reserve(counters.size() * 120);
  for (const auto& c : counters) {
    out += "# HELP spamsink_";
    out += c.name;
    out += ' ';
    out += c.help;
    out += "\n# TYPE spamsink_";
    out += c.name;
    out += " counter\nspamsink_";
    out += c.name;
    out += ' ';
    out += std::to_string(c.value);
    out += '\n';
  }
  out += "# HELP spamsink_open_connections SMTP connections open now\n";
  out += "# TYPE spamsink_open_connections gauge\n";
  out += "spamsink_open_connections " + std::to_string(open_connections) + "\n";
  return out;
}

}  // namespace base
