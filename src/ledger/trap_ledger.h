// Attribution of trap hits: harvest records (who took which addresses,
// from the trap site or a label of `spamsink traps --generate`), the links
// from a sending IP to the harvests whose addresses it mailed, and the
// recipients per trap domain. Kept in tables of their own: in the ledger's
// SQLite file (own connection, own schema version; the sources schema is
// untouched), or in the fleet's PostgreSQL database (OpenPostgres; shared by
// every sink: a harvest recorded by one sink's trap site links mail that
// arrives at another, provided they share traps.keys).
//
// Threading: AddHarvest and AddSession only queue (bounded; beyond it,
// dropped and counted), so neither the HTTP threads nor the SMTP path ever
// wait on the database; a writer thread verifies tokens and commits the
// queue every flush_interval. Queries may come from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "ledger/export.h"
#include "traps/site.h"
#include "traps/token.h"

namespace ledger {

class TrapTables;
struct PostgresOptions;
struct Options;

// One sender that mailed addresses of a harvest.
struct TrapSender {
  std::string ip;
  double first_spam = 0;
  double last_spam = 0;
  double delay_seconds = 0;  // first spam - harvest time
  uint64_t hits = 0;         // recipients at the harvest's addresses
};

// A harvester: one IP (or one label), everything it took.
struct Harvester {
  std::string ip;                        // empty for a label
  std::string label;                     // empty for a visitor of the site
  std::vector<std::string> user_agents;  // distinct, at most 8
  double first_harvest = 0;
  double last_harvest = 0;
  uint64_t pages = 0;
  uint64_t addresses = 0;
  std::vector<TrapSender> senders;  // at most 100, earliest spam first
};

// One harvest whose addresses a sender mailed.
struct TrapLink {
  std::string harvester_ip;
  std::string label;
  std::string user_agent;
  std::string page;
  double harvest_time = 0;  // the record's, or the token's minute if unknown
  bool harvest_known = false;
  double first_spam = 0;
  double last_spam = 0;
  double delay_seconds = 0;
  uint64_t hits = 0;
};

struct TrapDomain {
  std::string domain;
  uint64_t recipients = 0;  // kept recipients (peer::kMaxTrapRcpts/session)
  uint64_t linked = 0;      // with a valid token
  uint64_t plain = 0;       // no token, forged or unknown key
};

class TrapLedger {
 public:
  // Opens (creating its tables in) the SQLite file db_path; ":memory:" for
  // tests. keys verify the tokens. Starts the writer thread. read_only
  // (offline exports) opens an existing file without creating anything;
  // then only the queries may be used.
  static base::Result<std::unique_ptr<TrapLedger>> Open(
      const std::string& db_path, traps::KeyRing keys,
      double flush_interval = 1, size_t max_queue = 100000,
      bool read_only = false);
  // The tables in the fleet's database (options as for the PostgreSQL
  // store; sink_id is not used: the facts are the fleet's). Fails, naming
  // ledger.postgresql_url, when it cannot connect or the trap schema is
  // newer than this build's.
  static base::Result<std::unique_ptr<TrapLedger>> OpenPostgres(
      const PostgresOptions& options, traps::KeyRing keys,
      double flush_interval = 1, size_t max_queue = 100000);
  // Where config's ledger keeps the sources: its SQLite file (db_path) or
  // its PostgreSQL database. Errors name the setting at fault.
  static base::Result<std::unique_ptr<TrapLedger>> OpenConfigured(
      const Options& config, traps::KeyRing keys);
  ~TrapLedger();  // Flush, then stop the writer
  TrapLedger(const TrapLedger&) = delete;
  TrapLedger& operator=(const TrapLedger&) = delete;

  // Thread-safe, never wait on the database.
  void AddHarvest(const traps::Harvest& h);
  void AddSession(std::string_view sender_ip, double time,
                  const std::vector<std::string>& trap_rcpts);
  // Commits what is queued now (the writer does it every flush_interval).
  base::Status Flush();

  base::Result<std::vector<Harvester>> Harvesters(size_t limit);
  base::Result<std::vector<TrapLink>> LinksOf(std::string_view sender_ip);
  base::Result<std::vector<TrapDomain>> Domains();
  // Every address-level fact for exports: the IPs of harvesters (no labels).
  base::Result<std::vector<std::string>> HarvesterIps();

  uint64_t dropped() const;

  // Expiry by ledger.retention_days, like the sources: links whose last
  // spam, and harvests whose last page, are older than retention_days
  // before clock's now are deleted, but a harvest stays while a link to it
  // does (its addresses are still mailed). The per-domain counts are
  // totals and stay. Once set, the writer expires every hour;
  // retention_days <= 0 (the default) keeps everything. clock outlives
  // this ledger.
  void SetRetention(double retention_days, const base::Clock* clock);
  // Expires now; returns the rows deleted (0 when retention is off).
  base::Result<uint64_t> ExpireNow();

 private:
  struct Hit {
    std::string sender;
    double time = 0;
    std::string rcpt;
  };
  TrapLedger(std::unique_ptr<TrapTables> tables, traps::KeyRing keys,
             double flush_interval, size_t max_queue);
  void WriterLoop();
  base::Status Commit(std::vector<traps::Harvest> harvests,
                      std::vector<Hit> hits);

  std::unique_ptr<TrapTables> tables_;  // thread-safe itself
  traps::KeyRing keys_;
  double flush_interval_;
  size_t max_queue_;
  mutable std::mutex mu_;  // guards the queue and the flags below
  std::condition_variable wake_;
  std::vector<traps::Harvest> harvests_;
  std::vector<Hit> hits_;
  uint64_t dropped_ = 0;
  double retention_days_ = 0;
  const base::Clock* clock_ = nullptr;
  double last_expire_ = 0;  // wall seconds; the writer's
  bool stop_ = false;
  std::thread writer_;
};

// The export (export.h) of the harvesters' IPs, in any format: each IP is a
// record with its address only, by ascending IP, its entry exact
// (options.record_v6_prefix is not applied: a harvester is one address).
base::Status ExportHarvesters(TrapLedger* traps, ExportOptions options,
                              const Sink& sink);

}  // namespace ledger
