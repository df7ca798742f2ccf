// spamsink export: the offline path from the database file to a blocklist.
#include <algorithm>
#include <fstream>
#include <ostream>

#include "ledger/export.h"
#include "ledger/export_misp.h"
#include "ledger/sqlite_store.h"
#include "ledger/trap_ledger.h"

namespace ledger {
namespace {

constexpr const char* kUsage =
    "usage: spamsink export --format FORMAT [--config FILE] [--db PATH]\n"
    "         [--output FILE] [setting flags, e.g. --ledger-db-path PATH]\n"
    "         [--list sources|harvesters] (harvesters: the trap site's\n"
    "          visitors' IPs; the source filters below do not apply)\n"
    "         [--since T] [--until T] [--cidr NET] [--min-messages N]\n"
    "         (T: Unix seconds, 2026-11-27, 2026-11-27T12:00:00Z;\n"
    "          --min-messages defaults to 1: 0 lists connect-only sources)\n"
    "         [--evidence FLAG,...] [--sort KEY] [--order asc|desc]\n"
    "         [--limit N] [--offset N] [--v4-prefix N] [--v6-prefix N]\n"
    "         [--ttl S] [--ns NAME] [--hostmaster NAME] [--a IP]\n"
    "         [--table NAME] [--set NAME] [--action WORD]\n"
    "       spamsink export --format misp --output DIR [--org NAME]\n"
    "         [the query options above]: a MISP feed directory\n"
    "         (manifest.json, hashes.csv, one <uuid>.json event per day)\n";

// After an error: one line, not the whole usage again.
constexpr const char* kHint =
    "(spamsink export --help lists the options and formats)\n";

// --format misp: a directory, not a stream (export_misp.h).
int RunMispExport(Params params, const std::string& output,
                  const std::string& db_path,
                  const std::vector<base::Cidr>& exempt, std::ostream& out,
                  std::ostream& err, int record_v6_prefix) {
  if (output.empty()) {
    err << "spamsink export: --format misp writes a directory: give "
           "--output DIR\n"
        << kHint;
    return 2;
  }
  MispOptions o;
  o.exempt = exempt;
  o.record_v6_prefix = record_v6_prefix;
  o.now = double(time(nullptr));
  params.erase("format");
  if (auto org = params.find("org"); org != params.end()) {
    o.org = org->second;
    params.erase(org);
  }
  auto query = ParseQuery(params, {}, 0, 0);
  if (!query.ok()) {
    err << "spamsink export: " << query.error() << "\n" << kHint;
    return 2;
  }
  ExportQueryDefaults(params, &query.value());
  SqliteOptions so;
  so.read_only = true;
  auto store = OpenSqliteStore(db_path, so);
  if (!store.ok()) {
    err << "spamsink export: " << store.error() << "\n";
    return 1;
  }
  auto events = WriteMispFeed(store->get(), *query, o, output);
  if (!events.ok()) {
    err << "spamsink export: " << events.error() << "\n";
    return 1;
  }
  out << "spamsink export: " << *events << " MISP events in " << output << "\n";
  return 0;
}

}  // namespace

const char* ExportUsage() { return kUsage; }

int RunExportCommand(const std::vector<std::string>& args,
                     const std::string& db_path,
                     const std::vector<base::Cidr>& exempt, std::ostream& out,
                     std::ostream& err, int record_v6_prefix) {
  Params params;
  std::string output;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (a == "-h" || a == "--help") {
      out << kUsage << "formats: " << FormatNames() << "\n";
      return 0;
    }
    if (a.rfind("--", 0) != 0) {
      err << "spamsink export: unexpected argument '" << a << "'\n" << kHint;
      return 2;
    }
    std::string key = a.substr(2), value;
    if (auto eq = key.find('='); eq != std::string::npos) {
      value = key.substr(eq + 1);
      key.resize(eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      err << "spamsink export: " << a << " needs a value\n" << kUsage;
      return 2;
    }
    for (char& c : key) {
      if (c == '-') c = '_';
    }
    if (key == "output") {
      output = value;
    } else {
      params.emplace(key, value);
    }
  }
  if (auto f = params.find("format");
      f != params.end() && f->second == "misp") {
    return RunMispExport(params, output, db_path, exempt, out, err,
                         record_v6_prefix);
  }
  auto options = ParseExportOptions(params);
  if (!options.ok()) {
    err << "spamsink export: " << options.error() << "\n" << kHint;
    return 2;
  }
  auto query = ParseQuery(params, ExportOptionKeys(), 0, 0);
  if (!query.ok()) {
    err << "spamsink export: " << query.error() << "\n" << kHint;
    return 2;
  }
  ExportQueryDefaults(params, &query.value());
  if (query->sink) {
    // This command reads the local SQLite file, which has no per-sink rows.
    err << "spamsink export: --sink needs the fleet's PostgreSQL store: ask "
           "a sink's API (/api/v1/export?sink=ID)\n";
    return 2;
  }
  options.value().exempt = exempt;
  options.value().record_v6_prefix = record_v6_prefix;
  options.value().now = double(time(nullptr));
  const bool harvesters = options->list == ExportList::kHarvesters;
  if (harvesters) {
    for (const auto& [key, value] : params) {
      const auto& keys = ExportOptionKeys();
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
        err << "spamsink export: --list harvesters takes no source filter ("
            << key << ")\n"
            << kHint;
        return 2;
      }
    }
  }
  std::unique_ptr<Store> store;
  std::unique_ptr<TrapLedger> traps;
  if (harvesters) {
    auto t = TrapLedger::Open(db_path, traps::KeyRing(), 3600, 0, true);
    if (!t.ok()) {
      err << "spamsink export: " << t.error() << "\n";
      return 1;
    }
    traps = std::move(t).value();
  } else {
    SqliteOptions so;
    so.read_only = true;
    auto s = OpenSqliteStore(db_path, so);
    if (!s.ok()) {
      err << "spamsink export: " << s.error() << "\n";
      return 1;
    }
    store = std::move(s).value();
  }
  // Streamed from the store: memory stays flat whatever the ledger's size.
  auto run = [&](std::ostream& to) {
    Sink sink = [&to](std::string_view text) {
      to.write(text.data(), std::streamsize(text.size()));
      return bool(to);
    };
    return harvesters ? ExportHarvesters(traps.get(), *options, sink)
                      : ExportFromStore(store.get(), *query, *options, sink);
  };
  if (output.empty()) {
    auto s = run(out);
    out.flush();
    if (!s.ok()) err << "spamsink export: " << s.message() << "\n";
    return s.ok() && out ? 0 : 1;
  }
  // Write beside the target and rename, so a consumer never reads half a
  // file.
  std::string tmp = output + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    auto s = run(f);
    f.close();
    if (!s.ok() || !f) {
      err << "spamsink export: "
          << (s.ok() ? "cannot write " + tmp : s.message()) << "\n";
      std::remove(tmp.c_str());
      return 1;
    }
  }
  if (std::rename(tmp.c_str(), output.c_str()) != 0) {
    err << "spamsink export: cannot rename " << tmp << " to " << output << "\n";
    return 1;
  }
  return 0;
}

}  // namespace ledger
