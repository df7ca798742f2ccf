#include "base/metrics.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
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

// Integers exactly (counters), others with 9 significant digits.
void AppendNumber(std::string* out, double v) {
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e18) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    // Shortest round trip: a start time keeps its milliseconds.
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    *out += std::string_view(buf, ec == std::errc() ? end - buf : 0);
    return;
  }
  *out += buf;
}

}  // namespace

std::atomic<int64_t> g_open_connections{0};
std::atomic<int64_t> g_held_connections{0};
std::atomic<int64_t> g_paused_accepts{0};
std::atomic<int64_t> g_peer_cache_bytes{0};
std::atomic<int64_t> g_peer_cache_budget_bytes{0};
std::atomic<int64_t> g_memory_rss_bytes{0};
std::atomic<int64_t> g_api_connections{0};
std::atomic<int64_t> g_fd_limit{0};
std::atomic<int64_t> g_memory_limit_bytes{0};

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

std::vector<Metric> ServerMetrics(const std::vector<CounterValue>& counters,
                                  const ServerGauges& gauges) {
  std::vector<Metric> out;
  out.reserve(counters.size() + 8);
  std::vector<Metric> refused, api_refused;
  for (const auto& c : counters) {
    Metric m;
    m.name = c.name;
    m.help = c.help;
    m.value = double(c.value);
    // Counted in whole microseconds (counters are integers), shown in
    // seconds like every other time.
    if (c.name == "tarpit_delay_seconds_total") m.value /= 1e6;
    // Refusals: one counter with a reason label (an alert sums them).
    std::string_view reason;
    if (c.name == "connections_refused_total_cap_total") reason = "total_cap";
    if (c.name == "connections_refused_per_ip_cap_total") reason = "per_ip_cap";
    if (c.name == "tarpit_shed_total") reason = "shed";
    if (!reason.empty()) {
      Metric r;
      r.name = "connections_refused_total";
      r.help =
          "connections answered 421 at once, by reason: total_cap "
          "(server.max_connections), per_ip_cap "
          "(server.max_connections_per_ip), shed (tarpit.shed_at)";
      r.labels = "reason=\"" + std::string(reason) + "\"";
      r.value = m.value;
      refused.push_back(std::move(r));
      if (c.name != "tarpit_shed_total") continue;  // kept: an older name
    }
    // The API's refusals: one family too.
    std::string_view api_reason;
    if (c.name == "api_connections_refused_queue_full_total") {
      api_reason = "queue_full";
    }
    if (c.name == "api_connections_refused_per_ip_total") {
      api_reason = "per_ip_limit";
    }
    if (c.name == "api_connections_refused_descriptors_total") {
      api_reason = "descriptors";
    }
    if (!api_reason.empty()) {
      Metric r;
      r.name = "api_connections_refused_total";
      r.help =
          "API connections answered 503 and closed at once, by reason: "
          "queue_full (api.max_queued), per_ip_limit "
          "(api.max_connections_per_ip), descriptors (fewer than 16 left)";
      r.labels = "reason=\"" + std::string(api_reason) + "\"";
      r.value = m.value;
      api_refused.push_back(std::move(r));
      continue;
    }
    out.push_back(std::move(m));
  }
  out.insert(out.end(), refused.begin(), refused.end());
  out.insert(out.end(), api_refused.begin(), api_refused.end());
  auto gauge = [&](const char* name, const char* help, double v,
                   std::string labels = "") {
    Metric g;
    g.name = name;
    g.help = help;
    g.type = Metric::Type::kGauge;
    g.value = v;
    g.labels = std::move(labels);
    out.push_back(std::move(g));
  };
  gauge("open_connections", "SMTP connections open now",
        double(gauges.open_connections));
  gauge("held_connections", "SMTP connections the tarpit holds now",
        double(gauges.held_connections));
  gauge("paused_accepts",
        "accept loops paused now for lack of descriptors (server.fd_reserve)",
        double(gauges.paused_accepts));
  gauge("peer_cache_bytes",
        "estimated bytes of the in-memory reputation (peer history)",
        double(gauges.peer_cache_bytes));
  gauge("peer_cache_budget_bytes", "the reputation's byte budget",
        double(gauges.peer_cache_budget_bytes));
  gauge("memory_rss_bytes",
        "resident bytes at the last check (only with server.memory_limit)",
        double(gauges.memory_rss_bytes));
  gauge("memory_limit_bytes", "server.memory_limit (0: no ceiling)",
        double(gauges.memory_limit_bytes));
  gauge("start_time_seconds", "Unix time the server started",
        gauges.start_time);
  gauge("build_info", "always 1; the version is in the label", 1,
        "version=\"" + gauges.version + "\"");
  return out;
}

std::string RenderPrometheus(const std::vector<Metric>& metrics) {
  std::string out;
  out.reserve(metrics.size() * 120);
  std::string_view previous;
  for (const auto& m : metrics) {
    const std::string name = "spamsink_" + m.name;
    if (m.name == previous && m.type != Metric::Type::kHistogram) {
      out += name + "{" + m.labels + "} ";  // one more series of a family
      AppendNumber(&out, m.value);
      out += '\n';
      continue;
    }
    previous = m.name;
    out += "# HELP " + name + " " + m.help + "\n# TYPE " + name + " ";
    switch (m.type) {
      case Metric::Type::kCounter:
        out += "counter\n";
        break;
      case Metric::Type::kGauge:
        out += "gauge\n";
        break;
      case Metric::Type::kHistogram:
        out += "histogram\n";
        break;
    }
    if (m.type != Metric::Type::kHistogram) {
      out += name;
      if (!m.labels.empty()) out += "{" + m.labels + "}";
      out += " ";
      AppendNumber(&out, m.value);
      out += '\n';
      continue;
    }
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= m.bounds.size(); ++i) {
      cumulative += i < m.buckets.size() ? m.buckets[i] : 0;
      out += name + "_bucket{le=\"";
      if (i < m.bounds.size()) {
        AppendNumber(&out, m.bounds[i]);
      } else {
        out += "+Inf";
      }
      out += "\"} " + std::to_string(cumulative) + "\n";
    }
    out += name + "_sum ";
    AppendNumber(&out, m.sum);
    out += "\n" + name + "_count " + std::to_string(m.count) + "\n";
  }
  return out;
}

}  // namespace base
