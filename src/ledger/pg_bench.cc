// PostgreSQL store figures (a program, not a test):
//   ledger_pg_bench URL PASSWORD [ips] [batch] [writer_connections]
// Commits `ips` new addresses in batches of `batch` records through
// PostgresStore::Apply (one transaction per batch, as the writer does),
// then the same addresses again as updates, and prints records per second
// for each phase (and per client CPU-second), then the latency of Get and
// of a top-100 Query. Server CPU is not measured here: read the
// postmaster's and its children's from /proc around the run.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "ledger/postgres_store.h"

namespace {

using Clock = std::chrono::steady_clock;

// This process's CPU time (user + system), seconds.
double CpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec +
         u.ru_stime.tv_usec / 1e6;
}

double Seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

ledger::SourceRecord Record(uint32_t i) {
  ledger::SourceRecord r;
  r.ip = base::IpAddress::FromV4(0x0a000000u + i);
  r.first_seen = 1.7e9 + i % 1000;
  r.last_seen = r.first_seen + 3;
  r.connections = 1;
  r.messages = r.transactions = 1 + i % 13;
  r.recipients = 2;
  r.bytes = 1000 + i % 5000;
  r.commands = 8;
  ledger::MergeName(&r.helo_names, "bot" + std::to_string(i % 50), 1);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: %s URL PASSWORD [ips] [batch] [writer_connections]\n",
                 argv[0]);
    return 2;
  }
  ledger::PostgresOptions o;
  o.url = argv[1];
  o.password = argv[2];
  o.sink_id = "bench";
  uint32_t ips = argc > 3 ? std::stoul(argv[3]) : 200000;
  uint32_t batch = argc > 4 ? std::stoul(argv[4]) : 10000;
  o.writer_connections = argc > 5 ? std::stoi(argv[5]) : 1;
  auto store = ledger::OpenPostgresStore(o);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.error().c_str());
    return 1;
  }
  for (const char* phase : {"new addresses", "updates"}) {
    auto t0 = Clock::now();
    double cpu0 = CpuSeconds(), slowest = 0;
    for (uint32_t start = 0; start < ips; start += batch) {
      std::vector<ledger::SourceRecord> b;
      for (uint32_t i = start; i < std::min(ips, start + batch); ++i) {
        b.push_back(Record(i));
      }
      auto t1 = Clock::now();
      if (auto s = (*store)->Apply(b); !s.ok()) {
        std::fprintf(stderr, "%s\n", s.message().c_str());
        return 1;
      }
      slowest = std::max(slowest, Seconds(t1));
    }
    double took = Seconds(t0);
    std::printf(
        "%-14s %u records in batches of %u on %d connection(s): %.2f s, "
        "%.0f records/s, slowest batch %.3f s, client CPU %.2f s\n",
        phase, ips, batch, o.writer_connections, took, ips / took, slowest,
        CpuSeconds() - cpu0);
  }
  std::vector<double> get, top;
  for (int i = 0; i < 20; ++i) {
    auto t0 = Clock::now();
    (void)(*store)->Get(base::IpAddress::FromV4(0x0a000000u + i * 977));
    get.push_back(Seconds(t0) * 1e3);
    ledger::SourceQuery q;
    q.limit = 100;
    t0 = Clock::now();
    (void)(*store)->Query(q);
    top.push_back(Seconds(t0) * 1e3);
  }
  std::sort(get.begin(), get.end());
  std::sort(top.begin(), top.end());
  std::printf(
      "Get median %.2f ms max %.2f ms; top-100 by messages median "
      "%.2f ms max %.2f ms\n",
      get[10], get.back(), top[10], top.back());
  return 0;
}
