// The operator's console: HTML pages over the ledger, served by the API
// listener with the API's authentication (api::Api routes here and checks
// the token or session cookie first).
//
//   GET /                 Overview: totals, rates, open and held sessions,
//                         the tarpit's cost, per-minute chart of the hour,
//                         per-hour chart of the day (ledger's hourly ring)
//   GET /overview.json    the Overview's figures for live refresh
//   GET /sources          the ledger as a table: filters (since, until,
//                         cidr, min_messages, evidence), sort, paging
//   GET /source/{ip}      one source: counters, evidence, names, tarpit,
//                         close reasons, a line of each export format
//   GET /exports          download links for every format, with filters,
//                         and of the harvester list
//   GET /harvesters       trap harvesters, their label, time and the
//                         spam their addresses later drew (trap ledger)
//   GET /server           version, listeners, persona, effective settings
//   GET /assets/{name}    the embedded CSS, JavaScript and chart library
//
// Pages are complete tables with JavaScript off; assets/app.js adds live
// refresh and charts. Every ledger text is escaped (html::Escape): HELO
// names and domains are the sender's words.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/handlers.h"
#include "base/clock.h"
#include "ledger/ledger.h"
#include "ledger/trap_ledger.h"

namespace api {

class Dashboard {
 public:
  using ServerInfo = std::vector<std::pair<std::string, std::string>>;
  // REQUIRES: ledger (may be null), clock and options outlive this.
  // options->server_info and ->token are copied: later changes come
  // through SetServerInfo and SetTokenSet.
  Dashboard(ledger::Ledger* ledger, const base::Clock* clock,
            const ApiOptions* options, double start_time)
      : ledger_(ledger),
        clock_(clock),
        options_(options),
        start_time_(start_time),
        server_info_(options->server_info),
        token_set_(!options->token.empty()) {}

  // True for the paths above (the caller authenticates first, except for
  // /assets/, which holds nothing secret).
  static bool Owns(std::string_view path);
  // Serves an embedded asset, or 404.
  static Response Asset(std::string_view path);
  // One page for an authenticated GET; csrf (may be empty) goes into the
  // page's logout form.
  Response Handle(const Request& r, const std::string& csrf) const;
  // The trap attribution for /harvesters and the source timeline; null:
  // off. Set before serving. REQUIRES: outlives this.
  void SetTraps(ledger::TrapLedger* traps) { traps_ = traps; }
  // What the Server page shows of the running configuration (a SIGHUP
  // reload replaces it; see ApiOptions::server_info). Thread-safe.
  void SetServerInfo(ServerInfo info);
  // Whether a token is required now (a reload may set or clear it).
  // Thread-safe.
  void SetTokenSet(bool set);

 private:
  Response Overview(const std::string& csrf) const;
  Response OverviewJson() const;
  Response Sources(const Request& r, const std::string& csrf) const;
  Response Source(std::string_view ip, const std::string& csrf) const;
  Response Exports(const Request& r, const std::string& csrf) const;
  Response Server(const std::string& csrf) const;
  Response Harvesters(const std::string& csrf) const;
  // The source page's section of what is known of rec over time: first
  // and last session, and the trap harvests it mailed (dashboard_traps.cc).
  std::string Timeline(const ledger::SourceRecord& rec) const;

  ledger::Ledger* ledger_;
  ledger::TrapLedger* traps_ = nullptr;
  const base::Clock* clock_;
  const ApiOptions* options_;
  double start_time_;
  mutable std::mutex info_mu_;  // guards the two below
  ServerInfo server_info_;
  bool token_set_;
};

// Process CPU seconds (user + system) and resident memory in bytes.
double ProcessCpuSeconds();
uint64_t ProcessRssBytes();

}  // namespace api
