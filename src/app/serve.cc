// spamsink's main command: builds the parts from the configuration, runs
// the server until SIGTERM/SIGINT, reloads on SIGHUP, and flushes the ledger
// before exiting.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "api/http_server.h"
#include "api/token.h"
#include "app/commands.h"
#include "app/memory_budget.h"
#include "app/sandbox.h"
#include "app/seed.h"
#include "base/log.h"
#include "capture/store.h"
#include "dnsbl/listing.h"
#include "dnsbl/responder.h"
#include "ledger/change_follower.h"
#include "ledger/export.h"
#include "ledger/ledger.h"
#include "ledger/trap_ledger.h"
#include "net/dns_server.h"
#include "net/server.h"
#include "net/tls.h"
#include "net/trap_server.h"

namespace app {
namespace {

// Feeds ended sessions to the ledger, the DNSBL's index and the trap
// attribution (any may be null), so the DNSBL lists a sender as soon as its
// session ends.
class LedgerSink final : public net::SessionSink {
 public:
  LedgerSink(ledger::Ledger* ledger, dnsbl::Index* index,
             ledger::TrapLedger* traps)
      : ledger_(ledger), index_(index), traps_(traps) {}
  void Record(const peer::SessionSummary& r) override {
    if (ledger_) ledger_->Record(r);
    if (index_) index_->Update(r);
    if (traps_ && !r.trap_rcpts.empty()) {
      traps_->AddSession(r.client.ToString(), r.end_wall, r.trap_rcpts);
    }
  }

 private:
  ledger::Ledger* ledger_;
  dnsbl::Index* index_;
  ledger::TrapLedger* traps_;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "spamsink: %s\n", message.c_str());
  return 1;
}

std::string SystemHostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') {
    return "localhost";
  }
  return buf;
}

// Feeds a ruleset to `nft -f -`. Needs CAP_NET_ADMIN; failure is logged,
// never fatal: the sink works without the packet-drop rule. nft's own
// messages go to our stderr (the log), never to stdout.
bool RunNft(const std::string& script, const char* what) {
  FILE* nft = popen("nft -f - 1>&2", "w");
  if (!nft) return false;
  std::fwrite(script.data(), 1, script.size(), nft);
  int status = pclose(nft);
  if (status != 0) {
    base::LogLine(base::LogLevel::kWarning, "firewall_failed")
        .Kv("action", what)
        .Kv("hint",
            std::string("needs nft and CAP_NET_ADMIN; apply or remove the "
                        "rule yourself: spamsink firewall ") +
                (std::string_view(what) == "remove" ? "--delete" : "--print") +
                " | nft -f -");
    return false;
  }
  base::LogLine(base::LogLevel::kInfo, "firewall").Kv("action", what);
  return true;
}

// The console's Server page: what runs (cfg, the running configuration),
// with api.token and the trap keys redacted (config::EffectiveToml), and
// how the last reload went.
std::vector<std::pair<std::string, std::string>> ConsoleInfo(
    const config::Config& cfg, net::Server* server,
    const std::string& last_reload) {
  std::vector<std::pair<std::string, std::string>> info = {
      {"Persona", cfg.smtp.persona}, {"Host name", cfg.server.hostname}};
  for (const auto& addr : server->LocalAddresses()) {
    info.push_back({"SMTP listener", addr});
  }
  info.push_back({"API listener", cfg.api.listen});
  info.push_back({"Last reload", last_reload});
  info.push_back({"config", config::EffectiveToml(cfg, false)});
  return info;
}

// SIGHUP: reads the configuration again and applies what can change live.
// Anything wrong (the file, a setting, the persona) keeps the running
// configuration and is logged as an error; the server never stops for it.
void Reload(const Reloader& reload, const MemoryBudgets& budgets,
            config::Config* running, net::Server* server, api::HttpServer* http,
            bool tls, smtp::MessageTap* tap) {
  // The console first, so that whoever reads the log line finds the page
  // already saying it.
  auto fail = [&](const std::string& error) {
    if (http) {
      http->SetServerInfo(ConsoleInfo(
          *running, server,
          "failed at " +
              ledger::FormatTime(base::SystemClock::Get().WallSeconds()) +
              ": " + error + " (the running configuration is kept)"));
    }
    base::LogLine(base::LogLevel::kError, "reload_failed")
        .Kv("error", error)
        .Kv("kept", "the running configuration");
  };
  auto loaded = reload();
  if (!loaded.ok()) {
    fail(loaded.error());
    return;
  }
  config::Config next = std::move(loaded).value();
  if (next.server.hostname.empty()) next.server.hostname = SystemHostname();
  ApplyMemoryBudgets(budgets, &next);
  ReloadPlan plan = PlanReload(*running, next);
  auto session = smtp::MakeSessionOptions(plan.apply.smtp,
                                          plan.apply.server.hostname, tls);
  if (!session.ok()) {
    fail(session.error());
    return;
  }
  auto exempt = ledger::ParseExempt(plan.apply.tarpit.exempt);
  if (!exempt.ok()) {
    fail(exempt.error());
    return;
  }
  // The token file is read again even when its name did not change: that
  // is how a token is rotated.
  std::string token;
  if (http) {
    auto t = api::ResolveToken(plan.apply.api);
    if (!t.ok()) {
      fail(t.error());
      return;
    }
    token = std::move(t).value();
  }
  net::ServerParams params;
  params.server = plan.apply.server;
  params.smtp = plan.apply.smtp;
  params.tarpit = plan.apply.tarpit;
  params.log_sessions = plan.apply.log.sessions;
  params.session = *session;
  params.session.trap_domains = plan.apply.traps.domains;
  params.session.tap = tap;
  server->Reload(params);
  if (http) {
    http->SetExempt(std::move(exempt).value());
    http->SetToken(std::move(token));
  }
  base::LogLevel level;
  if (base::ParseLogLevel(plan.apply.log.level, &level)) {
    base::SetLogLevel(level);
  }
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
    return s.empty() ? std::string("none") : s;
  };
  auto line = base::LogLine(base::LogLevel::kInfo, "reloaded");
  line.Kv("applied", join(plan.applied));
  line.Kv("restart_needed", join(plan.need_restart));
  line.Kv("tarpit", plan.apply.tarpit.enabled ? "on" : "off");
  if (http) {
    line.Kv("api_token", api::TokenSource(plan.apply.api));
  }
  *running = std::move(plan.apply);
  if (http) {
    http->SetServerInfo(ConsoleInfo(
        *running, server,
        "at " + ledger::FormatTime(base::SystemClock::Get().WallSeconds()) +
            "; applied: " + join(plan.applied) +
            "; waiting for a restart: " + join(plan.need_restart)));
  }
}

}  // namespace

int Serve(config::Config cfg, Reloader reload, const std::string& config_file) {
  // The ledger's files (database, WAL) and anything else this server
  // creates are never readable by other users.
  umask(027);
  base::LogLevel level;
  base::ParseLogLevel(cfg.log.level, &level);
  base::SetLogLevel(level);
  // server.memory_limit and the budgets it sizes, derived before anything
  // is made from them (docs/OPERATIONS.md, "Memory budgets").
  const MemoryBudgets budgets = ResolveMemoryBudgets(&cfg, SystemFileReader());
  LogMemoryBudgets(budgets);
  // SQLite's temporary files (large sorts) beside the database, inside the
  // sandbox's view; read by SQLite when it initialises (the ledger's open).
  if (cfg.server.sandbox && cfg.ledger.enabled &&
      cfg.ledger.store == "sqlite" && cfg.ledger.db_path != ":memory:" &&
      getenv("SQLITE_TMPDIR") == nullptr) {
    std::string dir =
        std::filesystem::path(cfg.ledger.db_path).parent_path().string();
    setenv("SQLITE_TMPDIR", dir.empty() ? "." : dir.c_str(), 1);
  }
  if (cfg.server.hostname.empty()) cfg.server.hostname = SystemHostname();

  std::shared_ptr<asio::ssl::context> tls;
  if (cfg.smtp.starttls) {
    // The self-signed certificate is kept next to the ledger (a real
    // server keeps its snakeoil); without a ledger it is made per start.
    std::string keep_dir;
    if (cfg.ledger.enabled && !cfg.ledger.db_path.empty() &&
        cfg.ledger.db_path != ":memory:") {
      keep_dir = std::filesystem::path(cfg.ledger.db_path)
                     .parent_path()
                     .lexically_normal()
                     .string();
      if (keep_dir.empty()) keep_dir = ".";
    }
    // Debian's Exim is built with GnuTLS; the other personas play OpenSSL
    // servers (Postfix's settings).
    auto ctx = net::MakeTlsContext(
        cfg.smtp.tls_cert, cfg.smtp.tls_key, cfg.server.hostname, keep_dir,
        cfg.smtp.persona == "exim" ? net::TlsStack::kGnuTls
                                   : net::TlsStack::kPostfix);
    if (!ctx.ok()) return Fail(ctx.error());
    tls = *ctx;
  }
  auto session =
      smtp::MakeSessionOptions(cfg.smtp, cfg.server.hostname, tls != nullptr);
  if (!session.ok()) return Fail(session.error());

  // Signals are taken by one thread with sigwait; block them everywhere
  // else before any thread starts.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  // Landlock reaches every thread through this signal (app/sandbox.h): a
  // mask inherited from the parent must not block it.
  sigset_t landlock_sig;
  sigemptyset(&landlock_sig);
  sigaddset(&landlock_sig, kLandlockSignal());
  pthread_sigmask(SIG_UNBLOCK, &landlock_sig, nullptr);
  signal(SIGPIPE, SIG_IGN);

  net::ServerParams params;
  params.server = cfg.server;
  params.smtp = cfg.smtp;
  params.tarpit = cfg.tarpit;
  params.log_sessions = cfg.log.sessions;
  params.session = *session;
  params.session.trap_domains = cfg.traps.domains;
  params.ipv6_prefix = cfg.ledger.ipv6_prefix;
  // Sampled capture: made now so sessions know it; its directory is made
  // and read after privileges drop (Start below), so the files belong to
  // --user. Until then it drops what it is given (no session runs yet).
  std::unique_ptr<capture::Store> capture;
  if (capture::Enabled(cfg.capture)) {
    capture = std::make_unique<capture::Store>(cfg.capture, cfg.server.hostname,
                                               &base::SystemClock::Get());
    params.session.tap = capture.get();
  }
  params.tls = tls;
  auto server = std::make_unique<net::Server>(std::move(params));
  if (auto s = server->Bind(); !s.ok()) return Fail(s.message());
  // The DNSBL binds before privileges go (port 53).
  std::unique_ptr<dnsbl::Index> dnsbl_index;
  std::unique_ptr<dnsbl::Responder> dnsbl_responder;
  std::unique_ptr<net::DnsServer> dns;
  if (cfg.dnsbl.enabled) {
    dnsbl_index = std::make_unique<dnsbl::Index>(cfg.dnsbl.max_entries,
                                                 cfg.ledger.ipv6_prefix);
    auto r = dnsbl::Responder::Create(cfg.dnsbl, dnsbl_index.get());
    if (!r.ok()) return Fail(r.error());
    dnsbl_responder = std::move(r).value();
    dns = std::make_unique<net::DnsServer>(cfg.dnsbl, dnsbl_responder.get());
    if (auto s = dns->Start(); !s.ok()) return Fail(s.message());
  }
  // The packet-drop rule (tarpit.drop_percent), applied for our lifetime,
  // before privileges go (nft needs CAP_NET_ADMIN). Once applied, --user
  // keeps CAP_NET_ADMIN (and nothing else) so the rule is removed at exit;
  // where that fails, the warning says how ('spamsink firewall --delete |
  // nft -f -').
  bool firewall = false;
  if (cfg.tarpit.drop_percent > 0) {
    auto script = FirewallScript(cfg, FirewallAction::kPrint);
    if (script.ok()) {
      firewall = RunNft(*script, "apply");
    } else {
      base::LogLine(base::LogLevel::kWarning, "firewall_failed")
          .Kv("error", script.error());
    }
  }

  if (!cfg.server.user.empty()) {
    if (auto s = DropPrivileges(cfg.server.user, firewall); !s.ok()) {
      return Fail(s.message());
    }
  } else if (geteuid() == 0) {
    base::LogLine(base::LogLevel::kWarning, "running_as_root")
        .Kv("hint", "use --user nobody to drop privileges after binding");
  }
  // From here on no execve (nft at exit included) can gain privileges
  // through set-user-ID bits or file capabilities.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    base::LogLine(base::LogLevel::kWarning, "no_new_privs_failed")
        .Kv("error", std::strerror(errno));
  }

  if (capture) {
    if (auto s = capture->Start(); !s.ok()) return Fail(s.message());
  }
  std::unique_ptr<ledger::Ledger> ledger;
  std::unique_ptr<LedgerSink> sink;
  if (cfg.ledger.enabled) {
    auto opened = ledger::Ledger::Open(cfg.ledger);
    if (!opened.ok() && cfg.ledger.store == "postgresql") {
      // The error names the setting at fault; a fleet sink does not start
      // without its database (docs/FLEET.md).
      return Fail(opened.error());
    }
    if (!opened.ok()) {
      std::string hint = cfg.server.user.empty()
                             ? ""
                             : " (its directory must be writable by user '" +
                                   cfg.server.user +
                                   "'; set ledger.db_path / --db)";
      return Fail("ledger.db_path: " + opened.error() + hint);
    }
    ledger = std::move(opened).value();
  }
  // Trap attribution: wherever trap addresses can exist (domains and keys
  // set), even with the site off (spamsink traps --generate).
  std::unique_ptr<ledger::TrapLedger> trap_ledger;
  std::optional<traps::KeyRing> trap_keys;
  if (!cfg.traps.domains.empty() && !cfg.traps.keys.empty()) {
    auto ring = traps::KeyRing::Parse(cfg.traps.keys);
    if (!ring.ok()) return Fail(ring.error());
    trap_keys = *ring;
    if (ledger) {
      // Beside the sources: in the SQLite file, or in the fleet's database
      // (shared by every sink: a harvest at one links mail at another).
      auto t = ledger::TrapLedger::OpenConfigured(cfg.ledger, *ring);
      if (!t.ok()) return Fail(t.error());
      trap_ledger = std::move(t).value();
      // Expired like the sources (ledger.retention_days, at start-up).
      trap_ledger->SetRetention(cfg.ledger.retention_days,
                                &base::SystemClock::Get());
    } else {
      base::LogLine(base::LogLevel::kWarning, "traps_attribution_off")
          .Kv("reason", "trap attribution needs the ledger");
    }
  }
  if (ledger || dnsbl_index || trap_ledger) {
    sink = std::make_unique<LedgerSink>(ledger.get(), dnsbl_index.get(),
                                        trap_ledger.get());
  }
  server->SetSink(sink.get());
  if (ledger && dnsbl_index) {
    SeedDnsbl(ledger.get(), dnsbl_index.get(), cfg.dnsbl);
  }
  // The follower's cursor is taken before the start-up history is read,
  // so what commits in between is read twice (harmless: Seed raises to the
  // record) rather than never.
  std::unique_ptr<ledger::ChangeFollower> follower;
  auto* fleet =
      dynamic_cast<ledger::PostgresStore*>(ledger ? ledger->store() : nullptr);
  if (fleet && cfg.tarpit.enabled && cfg.ledger.reputation_refresh > 0) {
    follower = std::make_unique<ledger::ChangeFollower>(
        fleet, cfg.ledger.reputation_refresh,
        [srv = server.get()](const ledger::SourceRecord& r) {
          srv->SeedHistory(r.ip, r);
        });
    if (auto s = follower->Begin(); !s.ok()) {  // the first pull begins
      base::LogLine(base::LogLevel::kWarning, "reputation_pull_failed")
          .Kv("error", s.message());
    }
  }
  int64_t seeded_bytes = 0;
  if (ledger && cfg.tarpit.enabled) {
    seeded_bytes =
        SeedReputation(ledger.get(), server.get(), cfg.server.seed_bytes);
  }
  if (follower) follower->Start();

  // HTTP API (JSON, /metrics, /healthz) on its own port; refuses a
  // non-loopback address without api.token.
  std::unique_ptr<api::HttpServer> http;
  if (cfg.api.enabled) {
    auto exempt = ledger::ParseExempt(cfg.tarpit.exempt);
    if (!exempt.ok()) return Fail(exempt.error());
    http = std::make_unique<api::HttpServer>(
        cfg.api, ledger.get(), std::move(exempt).value(),
        ConsoleInfo(cfg, server.get(), "none since the start"));
    http->SetTraps(trap_ledger.get());
    http->SetMemoryInfo({.limit = budgets.limit,
                         .source = budgets.source,
                         .reputation_bytes = budgets.reputation_bytes,
                         .ledger_pending_bytes = budgets.ledger_pending_bytes,
                         .seed_bytes = budgets.seed_bytes,
                         .seeded_bytes = seeded_bytes});
    http->SetCapture(capture.get());
    if (cfg.traps.enabled) http->AddMetrics(&net::TrapSiteMetrics);
    if (auto s = http->Start(); !s.ok()) return Fail(s.message());
  }
  // The trap site (public, its own port; docs/TRAPS.md).
  std::unique_ptr<traps::Site> trap_pages;
  std::unique_ptr<net::TrapServer> trap_site;
  if (cfg.traps.enabled && trap_keys) {
    trap_pages = std::make_unique<traps::Site>(
        cfg.traps, *trap_keys, traps::LoadWords(cfg.traps.words));
    net::TrapServer::HarvestSink harvest;
    if (trap_ledger) {
      harvest = [t = trap_ledger.get()](const traps::Harvest& h) {
        t->AddHarvest(h);
      };
    }
    trap_site = std::make_unique<net::TrapServer>(cfg.traps, trap_pages.get(),
                                                  std::move(harvest),
                                                  &base::SystemClock::Get());
    if (auto s = trap_site->Start(); !s.ok()) return Fail(s.message());
  }

  // Everything is bound, opened and started: from here on the process
  // needs no capability, no new program (but nft at exit with a rule
  // owned) and only the system calls of app/sandbox.cc.
  std::string landlock = "off";
  if (cfg.server.sandbox) {
    FileView view = ServerFileView(cfg, config_file);
    view.reads_anywhere = view.reads_anywhere || firewall;
    auto abi = RestrictFiles(view);
    if (abi.ok()) {
      landlock = "abi" + std::to_string(*abi);
    } else {
      landlock = "unavailable";
      base::LogLine(base::LogLevel::kWarning, "landlock_off")
          .Kv("reason", abi.error())
          .Kv("hint",
              "the file system is not restricted by the process; rely on "
              "the systemd unit's ReadWritePaths=");
    }
    ThreadFilterOptions kinds{
        .worker_files =
            cfg.capture.sample_every > 0 && !cfg.capture.dir.empty(),
        .store_network = cfg.ledger.store == "postgresql"};
    if (auto s = PrepareThreadFilters(kinds); !s.ok()) {
      return Fail("server.sandbox: " + s.message() +
                  " (set server.sandbox = false to run without it)");
    }
    if (auto s = EnterSandbox({.allow_exec = firewall}); !s.ok()) {
      return Fail("server.sandbox: " + s.message() +
                  " (set server.sandbox = false to run without it)");
    }
    if (auto s = RestrictThreadKinds(); !s.ok()) {
      base::LogLine(base::LogLevel::kWarning, "thread_filters_off")
          .Kv("reason", s.message());
    }
  }
  for (const auto& addr : server->LocalAddresses()) {
    base::LogLine(base::LogLevel::kInfo, "listening").Kv("address", addr);
  }
  if (dns) {
    base::LogLine(base::LogLevel::kInfo, "dnsbl_listening")
        .Kv("address", dns->LocalAddress())
        .Kv("zone", cfg.dnsbl.zone);
  }
  base::LogLine(base::LogLevel::kInfo, "started")
      .Kv("version", SPAMSINK_VERSION)
      .Kv("persona", cfg.smtp.persona)
      .Kv("hostname", cfg.server.hostname)
      .Kv("tarpit", cfg.tarpit.enabled ? "on" : "off")
      .Kv("exempt", uint64_t(cfg.tarpit.exempt.size()))
      .Kv("ledger", !cfg.ledger.enabled                ? "off"
                    : cfg.ledger.store == "postgresql" ? "postgresql"
                                                       : cfg.ledger.db_path)
      .Kv("sandbox", cfg.server.sandbox ? "on" : "off")
      .Kv("landlock", landlock)
      .Kv("pid", int64_t(getpid()))
      .Kv("uid", int64_t(getuid()));

  // SIGHUP reloads; SIGTERM and SIGINT stop. The thread owns the running
  // configuration from here on (the server keeps its own copies).
  std::thread signals([&server, &http, sigs, reload, budgets, running = cfg,
                       tls = tls != nullptr, tap = capture.get()]() mutable {
    for (;;) {
      int sig = 0;
      if (sigwait(&sigs, &sig) != 0) continue;
      if (sig == SIGHUP) {
        base::LogLine(base::LogLevel::kInfo, "reloading").Kv("signal", sig);
        Reload(reload, budgets, &running, server.get(), http.get(), tls, tap);
        continue;
      }
      base::LogLine(base::LogLevel::kInfo, "stopping").Kv("signal", sig);
      server->Stop();
      return;
    }
  });
  signals.detach();

  server->Run();
  if (firewall) {
    // The name was good enough for the add script, so this cannot fail.
    RunNft(FirewallScript(cfg, FirewallAction::kDelete).value(), "remove");
  }
  if (dns) dns->Stop();
  if (dnsbl_index) dnsbl_index->StopLookups();  // before the ledger closes
  if (trap_site) trap_site->Stop();
  if (http) http->Stop();  // before the ledger it reads goes away
  if (follower) follower->Stop();
  if (capture) capture->Stop();  // writes what is queued
  trap_ledger.reset();           // flushes what is queued
  if (ledger) {
    if (auto s = ledger->Close(); !s.ok()) {
      base::LogLine(base::LogLevel::kError, "ledger_close_failed")
          .Kv("error", s.message());
      return 1;
    }
  }
  base::LogLine(base::LogLevel::kInfo, "stopped");
  return 0;
}

}  // namespace app
