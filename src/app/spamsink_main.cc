// spamsink: wiring only. Reads the config, builds the parts, runs the
// server until SIGTERM/SIGINT, and flushes the ledger before exiting.
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <thread>

#include "api/http_server.h"
#include "base/log.h"
#include "config/cli.h"
#include "config/config.h"
#include "ledger/export.h"
#include "ledger/ledger.h"
#include "net/server.h"
#include "net/tls.h"
#include "tarpit/firewall.h"

namespace {

// Feeds ended sessions to the ledger.
class LedgerSink final : public net::SessionSink {
 public:
  explicit LedgerSink(ledger::Ledger* ledger) : ledger_(ledger) {}
  void Record(const smtp::SessionRecord& r) override { ledger_->Record(r); }

 private:
  ledger::Ledger* ledger_;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "spamsink: %s\n", message.c_str());
  return 1;
}

base::Status DropPrivileges(const std::string& user) {
  passwd* pw = getpwnam(user.c_str());
  if (!pw) return base::Status::Error("--user: no such user '" + user + "'");
  if (setgroups(0, nullptr) != 0 || setgid(pw->pw_gid) != 0 ||
      setuid(pw->pw_uid) != 0) {
    return base::Status::Error("--user: cannot switch to '" + user +
                               "' (start as root to drop privileges)");
  }
  return {};
}

std::string SystemHostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') {
    return "localhost";
  }
  return buf;
}

// Feeds a ruleset to `nft -f -`. Needs CAP_NET_ADMIN; failure is logged,
// never fatal: the sink works without the packet-drop rule.
bool RunNft(const std::string& script, const char* what) {
  FILE* nft = popen("nft -f - 2>&1", "w");
  if (!nft) return false;
  std::fwrite(script.data(), 1, script.size(), nft);
  int status = pclose(nft);
  if (status != 0) {
    base::LogLine(base::LogLevel::kWarning, "firewall_failed")
        .Kv("action", what)
        .Kv("hint",
            "needs nft and CAP_NET_ADMIN; print the rules with 'spamsink "
            "firewall --print' and apply them yourself");
    return false;
  }
  base::LogLine(base::LogLevel::kInfo, "firewall").Kv("action", what);
  return true;
}

// The tarpit's reputation starts from what the ledger knows, most recent
// senders first, up to kMaxSeeded of them.
void SeedReputation(ledger::Ledger* ledger, net::Server* server) {
  constexpr uint64_t kMaxSeeded = 1 << 20;
  constexpr uint64_t kPage = 10000;
  ledger::SourceQuery q;
  q.sort = ledger::SortKey::kLastSeen;
  q.limit = kPage;
  uint64_t seeded = 0;
  while (seeded < kMaxSeeded) {
    auto page = ledger->Sources(q);
    if (!page.ok() || page->records.empty()) break;
    for (const auto& r : page->records) {
      tarpit::PeerHistory h;
      h.connections = int64_t(r.connections);
      h.messages = int64_t(r.messages);
      h.early_talks = int64_t(r.early_talker);
      h.bare_lf = int64_t(r.bare_lf);
      h.protocol_errors = int64_t(r.protocol_errors);
      h.seconds_held = r.seconds_held;
      server->SeedHistory(r.ip, h);
    }
    seeded += page->records.size();
    q.offset += kPage;
  }
  base::LogLine(base::LogLevel::kInfo, "reputation_loaded")
      .Kv("sources", seeded);
}

int FirewallCommand(const config::Config& cfg, bool remove) {
  if (remove) {
    auto script = tarpit::DeleteScript(cfg.tarpit.nft_table);
    if (!script.ok()) return Fail(script.error());
    std::cout << *script;
    return 0;
  }
  auto rules = tarpit::MakeDropRuleset(cfg.tarpit, cfg.server.listen, {});
  if (!rules.ok()) return Fail(rules.error());
  auto script = tarpit::AddScript(*rules);
  if (!script.ok()) return Fail(script.error());
  std::cout << *script;
  return 0;
}

int Main(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == "export") {
    std::vector<std::string> args(argv + 2, argv + argc);
    return ledger::RunExportCommand(args, std::cout, std::cerr);
  }

  CLI::App app{
      "spamsink: a memory hole for spam. Answers SMTP as a believable mail "
      "server, accepts and discards everything, records every sending IP.\n"
      "With no options it listens on 127.0.0.1:25 and [::1]:25 with the "
      "defaults of --print-defaults. Subcommands: 'spamsink export --help' "
      "(blocklists from the ledger), 'spamsink firewall' (nftables rules).",
      "spamsink"};
  std::string config_file;
  bool check = false, print_defaults = false, print_reference = false;
  bool version = false;
  app.add_option("-c,--config", config_file, "TOML configuration file");
  app.add_flag("--check-config", check,
               "Check the configuration (file and flags) and exit");
  app.add_flag("--print-defaults", print_defaults,
               "Print every setting with its default as TOML and exit");
  app.add_flag("--print-reference", print_reference,
               "Print the configuration reference (Markdown) and exit");
  app.add_flag("-V,--version", version, "Print the version and exit");
  bool fw_print = false, fw_delete = false;
  auto* fw = app.add_subcommand(
      "firewall",
      "Print the nftables ruleset that drops a share of packets "
      "to the SMTP port (tarpit.drop_percent)");
  fw->add_flag("--print", fw_print, "Print the ruleset that adds the table");
  fw->add_flag("--delete", fw_delete, "Print the ruleset that removes it");
  config::Overrides overrides;
  config::AddFlags(&app, &overrides);
  CLI11_PARSE(app, argc, argv);

  if (version) {
    std::printf("spamsink %s\n", SPAMSINK_VERSION);
    return 0;
  }
  if (print_defaults) {
    std::fputs(config::DefaultsToml().c_str(), stdout);
    return 0;
  }
  if (print_reference) {
    std::fputs(config::ReferenceMarkdown().c_str(), stdout);
    return 0;
  }
  config::Config cfg;
  if (!config_file.empty()) {
    auto loaded = config::LoadFile(config_file);
    if (!loaded.ok()) return Fail(loaded.error());
    cfg = *loaded;
  }
  if (auto s = config::ApplyOverrides(overrides, &cfg); !s.ok()) {
    return Fail(s.message());
  }
  if (auto s = config::Validate(cfg); !s.ok()) return Fail(s.message());
  if (check) {
    std::printf("spamsink: configuration OK\n");
    return 0;
  }
  if (fw->parsed()) return FirewallCommand(cfg, fw_delete);

  base::LogLevel level;
  base::ParseLogLevel(cfg.log.level, &level);
  base::SetLogLevel(level);
  if (cfg.server.hostname.empty()) cfg.server.hostname = SystemHostname();

  std::shared_ptr<asio::ssl::context> tls;
  if (cfg.smtp.starttls) {
    auto ctx = net::MakeTlsContext(cfg.smtp.tls_cert, cfg.smtp.tls_key,
                                   cfg.server.hostname);
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
  signal(SIGPIPE, SIG_IGN);

  net::ServerParams params;
  params.config = cfg;
  params.session = *session;
  params.tls = tls;
  auto server = std::make_unique<net::Server>(std::move(params));
  if (auto s = server->Bind(); !s.ok()) return Fail(s.message());
  // The packet-drop rule (tarpit.drop_percent), applied for our lifetime,
  // before privileges go (nft needs CAP_NET_ADMIN). After --user, removing
  // it at exit fails unless the process kept that capability; the warning
  // then says how ('spamsink firewall --delete | nft -f -').
  bool firewall = false;
  if (cfg.tarpit.drop_percent > 0) {
    auto rules = tarpit::MakeDropRuleset(cfg.tarpit, cfg.server.listen, {});
    auto script = rules.ok() ? tarpit::AddScript(*rules)
                             : base::Result<std::string>(rules.status());
    if (script.ok()) {
      firewall = RunNft(*script, "apply");
    } else {
      base::LogLine(base::LogLevel::kWarning, "firewall_failed")
          .Kv("error", script.error());
    }
  }

  if (!cfg.server.user.empty()) {
    if (auto s = DropPrivileges(cfg.server.user); !s.ok()) {
      return Fail(s.message());
    }
  } else if (geteuid() == 0) {
    base::LogLine(base::LogLevel::kWarning, "running_as_root")
        .Kv("hint", "use --user nobody to drop privileges after binding");
  }

  std::unique_ptr<ledger::Ledger> ledger;
  std::unique_ptr<LedgerSink> sink;
  if (cfg.ledger.enabled) {
    auto opened = ledger::Ledger::Open(cfg.ledger);
    if (!opened.ok()) {
      std::string hint = cfg.server.user.empty()
                             ? ""
                             : " (its directory must be writable by user '" +
                                   cfg.server.user +
                                   "'; set ledger.db_path / --db)";
      return Fail("ledger.db_path: " + opened.error() + hint);
    }
    ledger = std::move(opened).value();
    sink = std::make_unique<LedgerSink>(ledger.get());
  }
  server->SetSink(sink.get());
  if (ledger && cfg.tarpit.enabled) SeedReputation(ledger.get(), server.get());

  // HTTP API (JSON, /metrics, /healthz) on its own port; refuses a
  // non-loopback address without api.token.
  std::unique_ptr<api::HttpServer> http;
  if (cfg.api.enabled) {
    http = std::make_unique<api::HttpServer>(cfg.api, ledger.get());
    if (auto s = http->Start(); !s.ok()) return Fail(s.message());
  }

  for (const auto& addr : server->LocalAddresses()) {
    base::LogLine(base::LogLevel::kInfo, "listening").Kv("address", addr);
  }
  base::LogLine(base::LogLevel::kInfo, "started")
      .Kv("version", SPAMSINK_VERSION)
      .Kv("persona", cfg.smtp.persona)
      .Kv("hostname", cfg.server.hostname)
      .Kv("ledger", cfg.ledger.enabled ? cfg.ledger.db_path : "off");

  std::thread signals([&server, sigs] {
    int sig = 0;
    sigwait(&sigs, &sig);
    base::LogLine(base::LogLevel::kInfo, "stopping").Kv("signal", sig);
    server->Stop();
  });
  signals.detach();

  server->Run();
  if (firewall) RunNft(*tarpit::DeleteScript(cfg.tarpit.nft_table), "remove");
  if (http) http->Stop();  // before the ledger it reads goes away
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

}  // namespace

// Errors are values everywhere below; an exception reaching this point is a
// bug, reported as one line and exit status 1 rather than std::terminate.
int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    return Fail(std::string("internal error: ") + e.what());
  } catch (...) {
    return Fail("internal error: unknown exception");
  }
}
