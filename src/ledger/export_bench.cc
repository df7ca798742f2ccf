// Export memory figures (a program, not a test):
//   export_bench [--sources N] [--db PATH] [--formats a,b,...] [--in-memory]
// Generates a ledger of N sources (80% IPv4, 20% IPv6, each with names)
// into PATH (reused when it already holds N sources), then exports it in
// each format from a fresh process (this program re-run with --child) and
// prints that process's peak RSS growth over its RSS before the export.
// --in-memory also measures the old path (the whole page read, then
// rendered) for comparison. CI size: 1,000,000; long mode: 10,000,000
// (bench/gen_ledger.py makes that database in minutes; pass it as --db).
// The default list is every format `spamsink export` knows.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "ledger/export.h"
#include "ledger/sqlite_store.h"

namespace {

using Clock = std::chrono::steady_clock;

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

ledger::SourceRecord Generated(uint64_t i) {
  ledger::SourceRecord r;
  if (i % 5 != 4) {
    r.ip = base::IpAddress::FromV4(0x0a000000u + uint32_t(i));
  } else {
    std::array<uint8_t, 16> b{0x20, 0x01, 0x0d, 0xb8};
    for (int k = 0; k < 8; ++k) b[15 - k] = uint8_t(i >> (8 * k));
    r.ip = base::IpAddress::FromV6(b);
  }
  r.first_seen = 1.7e9 + double(i % 86400);
  r.last_seen = r.first_seen + 60;
  r.connections = 1 + i % 7;
  r.messages = 1 + i % 3;
  r.recipients = r.messages * 2;
  r.bytes = 1000 * r.messages;
  r.seconds_held = 30;
  r.helo_names = {{"host" + std::to_string(i % 1000) + ".example", 1}};
  r.mail_from_domains = {{"spam" + std::to_string(i % 97) + ".example", 1}};
  r.rcpt_domains = {{"example.org", uint32_t(r.messages)}};
  return r;
}

int Generate(const std::string& db, uint64_t n) {
  auto store = ledger::OpenSqliteStore(db);
  if (!store.ok()) {
    fprintf(stderr, "%s\n", store.error().c_str());
    return 1;
  }
  auto totals = (*store)->GetTotals();
  if (totals.ok() && totals->sources == n) {
    printf("reusing %s (%llu sources)\n", db.c_str(), (unsigned long long)n);
    return 0;
  }
  if (totals.ok() && totals->sources != 0) {
    fprintf(stderr, "%s holds %llu sources, not %llu: remove it first\n",
            db.c_str(), (unsigned long long)totals->sources,
            (unsigned long long)n);
    return 1;
  }
  auto t0 = Clock::now();
  std::vector<ledger::SourceRecord> batch;
  for (uint64_t i = 0; i < n; ++i) {
    batch.push_back(Generated(i));
    if (batch.size() == 20000 || i + 1 == n) {
      if (auto s = (*store)->Apply(batch); !s.ok()) {
        fprintf(stderr, "apply: %s\n", s.message().c_str());
        return 1;
      }
      batch.clear();
    }
  }
  printf("generated %llu sources into %s in %.1f s\n", (unsigned long long)n,
         db.c_str(), std::chrono::duration<double>(Clock::now() - t0).count());
  return 0;
}

// The child: one export to a byte counter; prints its figures.
int Child(const std::string& db, const std::string& format, bool in_memory) {
  ledger::SqliteOptions so;
  so.read_only = true;
  auto store = ledger::OpenSqliteStore(db, so);
  if (!store.ok()) return 1;
  ledger::Params params = {{"format", format}};
  auto options = ledger::ParseExportOptions(params);
  auto query = ledger::ParseQuery(params, ledger::ExportOptionKeys(), 0, 0);
  if (!options.ok() || !query.ok()) return 2;
  query.value().min_messages = 0;
  ledger::ExportQueryDefaults(params, &query.value());
  query.value().min_messages = 0;
  auto before = Memory().first;
  auto t0 = Clock::now();
  uint64_t bytes = 0;
  if (in_memory) {
    auto page = (*store)->Query(*query);
    if (!page.ok()) return 1;
    bytes = ledger::Export(page->records, *options).size();
  } else {
    auto s = ledger::ExportFromStore(store->get(), *query, *options,
                                     [&](std::string_view text) {
                                       bytes += text.size();
                                       return true;
                                     });
    if (!s.ok()) {
      fprintf(stderr, "%s\n", s.message().c_str());
      return 1;
    }
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  auto [rss, hwm] = Memory();
  printf(
      "%-16s %-9s %8.1f MiB out %6.1f s  RSS before %6.1f MiB  peak %7.1f "
      "MiB  growth %7.1f MiB\n",
      format.c_str(), in_memory ? "in-memory" : "streamed", bytes / 1048576.0,
      secs, before, hwm, hwm - before);
  (void)rss;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t n = 1000000;
  std::string db = "/tmp/spamsink-export-bench.db";
  std::string formats =
      "plain,cidr,csv,jsonl,rbldnsd,rbldnsd-ip4set,rbldnsd-ip6trie,nftables,"
      "postfix,spamd,stix";
  bool in_memory = false;
  std::string child;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : ""; };
    if (a == "--sources") {
      n = std::stoull(next());
    } else if (a == "--db") {
      db = next();
    } else if (a == "--formats") {
      formats = next();
    } else if (a == "--in-memory") {
      in_memory = true;
    } else if (a == "--child") {
      child = next();
    } else {
      fprintf(stderr,
              "usage: export_bench [--sources N] [--db PATH] [--formats "
              "a,b] [--in-memory]\n");
      return 2;
    }
  }
  if (!child.empty()) return Child(db, child, in_memory);
  if (int rc = Generate(db, n); rc != 0) return rc;
  fflush(stdout);
  std::vector<std::string> list;
  for (size_t p = 0; p <= formats.size();) {
    size_t c = formats.find(',', p);
    if (c == std::string::npos) c = formats.size();
    list.push_back(formats.substr(p, c - p));
    p = c + 1;
  }
  int failures = 0;
  for (bool mem : {false, true}) {
    if (mem && !in_memory) break;
    for (const auto& f : list) {
      pid_t pid = fork();
      if (pid == 0) {
        std::vector<const char*> args = {"/proc/self/exe", "--db", db.c_str(),
                                         "--child", f.c_str()};
        if (mem) args.push_back("--in-memory");
        args.push_back(nullptr);
        execv("/proc/self/exe", const_cast<char* const*>(args.data()));
        _exit(127);
      }
      int status = 0;
      waitpid(pid, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("%-16s failed (status %d)\n", f.c_str(), status);
        ++failures;
      }
    }
  }
  return failures == 0 ? 0 : 1;
}
