// Ledger figures (a program, not a test):
//   ledger_bench [--ips N] [--threads T] [--db PATH] [--batch B]
// 1. Record() cost from T threads into per-thread shards (no store).
// 2. N distinct IPs streamed into SQLite in batches of B sessions (B per
//    flush ~ the sessions of one flush interval), memory after each phase.
// 3. Top-100 queries through the API handler (JSON included), 20 runs each.
// 4. With more than 100,100 IPs: the page at 100,000 by offset and by cursor.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "api/handlers.h"
#include "ledger/ledger.h"
#include "ledger/sqlite_store.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// VmRSS and VmHWM in MiB.
std::pair<double, double> Memory() {
  std::ifstream f("/proc/self/status");
  std::string line;
  double rss = 0, hwm = 0;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::stod(line.substr(6)) / 1024;
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::stod(line.substr(6)) / 1024;
  }
  return {rss, hwm};
}

peer::SessionSummary Session(uint32_t i, double now) {
  peer::SessionSummary s;
  // Spread over 10.0.0.0/8 and 2001:db8::/32 (one in eight is IPv6).
  if (i % 8 == 7) {
    std::array<uint8_t, 16> b{0x20, 0x01, 0x0d, 0xb8};
    std::memcpy(b.data() + 12, &i, 4);
    s.client = base::IpAddress::FromV6(b);
  } else {
    s.client = base::IpAddress::FromV4(0x0a000000u + i);
  }
  s.start_wall = now - 3;
  s.end_wall = now - (i % 1000);
  s.duration_seconds = 1 + i % 97;
  s.transactions = s.messages = 1 + i % 13;
  s.recipients = 2 + i % 5;
  s.bytes = 1000 + (i * 7919u) % 50000;
  s.commands = 8;
  s.early_talker = i % 17 == 0;
  peer::AddName(&s.helo_names, "host" + std::to_string(i % 1000) + ".example");
  peer::AddName(&s.mail_from_domains,
                "d" + std::to_string(i % 300) + ".example");
  peer::AddName(&s.rcpt_domains, "victim.example");
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  uint32_t ips = 1000000, threads = 2, batch = 20000;
  std::string db = "ledger_bench.db";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--ips") ips = std::stoul(argv[i + 1]);
    if (k == "--threads") threads = std::stoul(argv[i + 1]);
    if (k == "--batch") batch = std::stoul(argv[i + 1]);
    if (k == "--db") db = argv[i + 1];
  }
  double now = base::SystemClock::Get().WallSeconds();
  std::printf("ledger_bench: ips=%u threads=%u batch=%u db=%s\n", ips, threads,
              batch, db.c_str());
  auto [rss0, hwm0] = Memory();
  std::printf("memory at start: rss=%.1f MiB\n", rss0);

  // 1. Record() throughput, memory store, no flush during the run.
  {
    ledger::Options c;
    auto l = ledger::Ledger::Create(ledger::NewMemoryStore(), c,
                                    &base::SystemClock::Get(), false);
    constexpr uint32_t kPerThread = 500000;
    std::vector<peer::SessionSummary> pre;
    for (uint32_t i = 0; i < 4096; ++i) pre.push_back(Session(i, now));
    auto t0 = Clock::now();
    std::vector<std::thread> ts;
    for (uint32_t t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        for (uint32_t i = 0; i < kPerThread; ++i) {
          l->Record(pre[(i + t * 977) % pre.size()]);
        }
      });
    }
    for (auto& t : ts) t.join();
    double s = Seconds(t0);
    uint64_t n = uint64_t(kPerThread) * threads;
    std::printf(
        "record: %lu sessions (4096 IPs) from %u threads in %.3f s: %.0f "
        "ns/session/thread, %.2f M sessions/s total\n",
        (unsigned long)n, threads, s, s * 1e9 * threads / n, n / s / 1e6);
  }

  // 2. 1M distinct IPs into SQLite.
  std::filesystem::remove(db);
  std::filesystem::remove(db + "-wal");
  std::filesystem::remove(db + "-shm");
  ledger::Options c;
  c.db_path = db;
  c.retention_days = 0;
  auto store = ledger::OpenSqliteStore(db);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.error().c_str());
    return 1;
  }
  auto l = ledger::Ledger::Create(std::move(store).value(), c,
                                  &base::SystemClock::Get(), false);
  auto t0 = Clock::now();
  double flush_total = 0, flush_max = 0;
  for (uint32_t i = 0; i < ips; ++i) {
    l->Record(Session(i, now));
    if ((i + 1) % batch == 0 || i + 1 == ips) {
      auto f0 = Clock::now();
      if (auto s = l->Flush(); !s.ok()) {
        std::fprintf(stderr, "flush: %s\n", s.message().c_str());
        return 1;
      }
      double fs = Seconds(f0);
      flush_total += fs;
      flush_max = std::max(flush_max, fs);
    }
  }
  double total = Seconds(t0);
  auto [rss1, hwm1] = Memory();
  std::printf(
      "sqlite: %u distinct IPs in %.1f s (commits %.1f s, slowest batch of "
      "%u: %.3f s, %.0f new sources/s committed)\n",
      ips, total, flush_total, batch, flush_max, ips / flush_total);
  std::printf("memory after %u IPs: rss=%.1f MiB, peak=%.1f MiB\n", ips, rss1,
              hwm1);
  std::printf("database: %.1f MiB (+ wal %.1f MiB)\n",
              std::filesystem::file_size(db) / 1048576.0,
              std::filesystem::exists(db + "-wal")
                  ? std::filesystem::file_size(db + "-wal") / 1048576.0
                  : 0.0);

  // 3. Top-100 queries through the API handler.
  api::Api a(l.get(), {}, &base::SystemClock::Get());
  struct Q {
    const char* what;
    ledger::Params params;
  };
  std::vector<Q> queries = {
      {"top100 messages", {{"limit", "100"}}},
      {"top100 bytes", {{"limit", "100"}, {"sort", "bytes"}}},
      {"top100 last_seen", {{"limit", "100"}, {"sort", "last_seen"}}},
      {"top100 seconds_held", {{"limit", "100"}, {"sort", "seconds_held"}}},
      {"top100 in 10.1.0.0/16", {{"limit", "100"}, {"cidr", "10.1.0.0/16"}}},
      {"top100 min_messages=12", {{"limit", "100"}, {"min_messages", "12"}}},
      {"top100 early_talker", {{"limit", "100"}, {"evidence", "early_talker"}}},
  };
  for (const auto& q : queries) {
    std::vector<double> ms;
    size_t bytes = 0;
    for (int run = 0; run < 20; ++run) {
      api::Request r;
      r.path = "/api/v1/sources";
      r.params = q.params;
      auto q0 = Clock::now();
      auto resp = a.Handle(r);
      ms.push_back(Seconds(q0) * 1000);
      bytes = resp.body.size();
      if (resp.status != 200) {
        std::fprintf(stderr, "%s: %d %s\n", q.what, resp.status,
                     resp.body.c_str());
        return 1;
      }
    }
    std::sort(ms.begin(), ms.end());
    std::printf("api %-26s median %7.2f ms  max %7.2f ms  (%zu bytes)\n",
                q.what, ms[ms.size() / 2], ms.back(), bytes);
  }
  // 4. A deep page: offset (reads and drops every record before it) versus
  // the cursor (after=, reads the page through the index).
  if (ips > 100100) {
    api::Request r;
    r.path = "/api/v1/sources";
    r.params = {{"limit", "100"}, {"offset", "99900"}};
    auto page = a.Handle(r);
    auto pos = page.body.find("\"next\": \"");
    std::string next;
    if (pos != std::string::npos) {
      pos += 9;
      next = page.body.substr(pos, page.body.find('"', pos) - pos);
    }
    for (int mode = 0; mode < 2 && !next.empty(); ++mode) {
      r.params = {{"limit", "100"}};
      r.params.insert(
          mode == 0 ? std::pair<std::string, std::string>{"offset", "100000"}
                    : std::pair<std::string, std::string>{"after", next});
      std::vector<double> ms;
      for (int run = 0; run < 20; ++run) {
        auto q0 = Clock::now();
        auto resp = a.Handle(r);
        ms.push_back(Seconds(q0) * 1000);
        if (resp.status != 200) return 1;
      }
      std::sort(ms.begin(), ms.end());
      std::printf("api page at 100000 by %-6s median %7.2f ms  max %7.2f ms\n",
                  mode == 0 ? "offset" : "after", ms[ms.size() / 2], ms.back());
    }
  }
  {
    api::Request r;
    r.path = "/api/v1/stats";
    auto q0 = Clock::now();
    a.Handle(r);
    std::printf("api stats: %.2f ms\n", Seconds(q0) * 1000);
    r.path = "/api/v1/export";
    r.params = {{"format", "cidr"}};
    q0 = Clock::now();
    auto resp = a.Handle(r);
    // Exports stream (resp.stream): the body is what the stream writes.
    size_t bytes = resp.body.size();
    if (resp.stream) {
      auto s = resp.stream([&bytes](std::string_view piece) {
        bytes += piece.size();
        return true;
      });
      if (!s.ok()) {
        std::fprintf(stderr, "export failed: %s\n", s.message().c_str());
        return 1;
      }
    }
    if (resp.status != 200 || bytes == 0) {
      std::fprintf(stderr, "export: status %d, %zu bytes\n", resp.status,
                   bytes);
      return 1;
    }
    std::printf("api export cidr of %u IPs: %.2f s, %zu bytes (streamed)\n",
                ips, Seconds(q0), bytes);
  }
  auto [rss2, hwm2] = Memory();
  std::printf("memory at end: rss=%.1f MiB, peak=%.1f MiB\n", rss2, hwm2);
  l->Close();
  return 0;
}
