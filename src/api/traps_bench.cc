// Figures for docs/BENCHMARKS.md, not a test: the trap site's cost per page
// (generation, which is all a request costs beyond cpp-httplib) and the
// ledger's cost per harvest record.
//   build/traps_bench [--pages N] [--records N]
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "ledger/trap_ledger.h"
#include "traps/site.h"

namespace {

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double Now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  int pages = 100000, records = 100000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--pages")) pages = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--records")) records = std::atoi(argv[i + 1]);
  }
  traps::Options o;
  o.domains = {"trap.example", "mail.trap.example"};
  auto ring = traps::KeyRing::Parse({"1:bench-secret-key-0123456789"});
  traps::Site site(o, *ring, traps::LoadWords(o.words));

  // 1. Generation: one page per distinct path and visitor.
  size_t bytes = 0;
  double t0 = Now(), c0 = CpuSeconds();
  for (int i = 0; i < pages; ++i) {
    std::string path =
        "/people/p" + std::to_string(i % 1000) + "/q" + std::to_string(i) + "/";
    std::string ip = "192.0.2." + std::to_string(i % 250);
    auto r = site.Serve({path, ip, "bench/1.0", 1.75e9 + i});
    bytes += r.body.size();
  }
  double wall = Now() - t0, cpu = CpuSeconds() - c0;
  std::printf(
      "generate: pages=%d pages_per_cpu_second=%.0f "
      "cpu_us_per_page=%.1f bytes_per_page=%.0f wall_s=%.2f\n",
      pages, pages / cpu, cpu / pages * 1e6, double(bytes) / pages, wall);

  // 2. The ledger: harvest records committed to SQLite (WAL, NORMAL) in
  // batches as the writer does, each a distinct visitor-minute.
  std::string db = (std::filesystem::temp_directory_path() /
                    ("traps_bench_" + std::to_string(getpid()) + ".db"))
                       .string();
  {
    auto l = ledger::TrapLedger::Open(db, *ring, 3600, size_t(records) + 1);
    if (!l.ok()) {
      std::fprintf(stderr, "%s\n", l.error().c_str());
      return 1;
    }
    t0 = Now();
    c0 = CpuSeconds();
    for (int i = 0; i < records; ++i) {
      traps::Harvest h;
      h.ref = uint32_t(i) * 2654435761u;
      h.minute = 29000000 + i / 1000;
      h.ip = "192.0.2." + std::to_string(i % 250);
      h.user_agent = "Mozilla/5.0 (compatible; harvester)";
      h.page = "/people/p" + std::to_string(i) + "/";
      h.time = 1.75e9 + i;
      h.addresses = 6;
      (*l)->AddHarvest(h);
      if (i % 1000 == 999) (void)(*l)->Flush();
    }
    (void)(*l)->Flush();
    wall = Now() - t0;
    cpu = CpuSeconds() - c0;
  }
  std::error_code ec;
  auto size = std::filesystem::file_size(db, ec);
  std::printf(
      "ledger: records=%d cpu_us_per_record=%.1f "
      "wall_us_per_record=%.1f db_bytes_per_record=%.0f\n",
      records, cpu / records * 1e6, wall / records * 1e6,
      double(size) / records);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(db + suffix, ec);
  }
  return 0;
}
