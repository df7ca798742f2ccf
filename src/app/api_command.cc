// spamsink api: a fleet's central read node. Serves the HTTP API and the
// console from the shared PostgreSQL ledger, with no SMTP listener, no
// DNSBL, no trap site and no tarpit: it records nothing and writes nothing.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "api/http_server.h"
#include "api/token.h"
#include "app/commands.h"
#include "base/log.h"
#include "ledger/export.h"
#include "ledger/ledger.h"

namespace app {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "spamsink api: %s\n", message.c_str());
  return 1;
}

// SIGHUP: what an API node can change live, the token (api.token_file is
// read again: rotation) and tarpit.exempt (never exported). Anything wrong
// keeps the running values.
void ReloadApi(const Reloader& reload, api::HttpServer* http) {
  auto next = reload();
  base::Result<std::string> token =
      next.ok() ? api::ResolveToken(next->api)
                : base::Result<std::string>(next.status());
  auto exempt = next.ok()
                    ? ledger::ParseExempt(next->tarpit.exempt)
                    : base::Result<std::vector<base::Cidr>>(next.status());
  if (!token.ok() || !exempt.ok()) {
    base::LogLine(base::LogLevel::kError, "reload_failed")
        .Kv("error", !token.ok() ? token.error() : exempt.error())
        .Kv("kept", "the running configuration");
    return;
  }
  http->SetToken(std::move(token).value());
  http->SetExempt(std::move(exempt).value());
  base::LogLine(base::LogLevel::kInfo, "reloaded")
      .Kv("applied", "api.token,tarpit.exempt")
      .Kv("restart_needed", "everything else");
}

}  // namespace

int ServeApi(config::Config cfg, Reloader reload) {
  umask(027);
  base::LogLevel level;
  base::ParseLogLevel(cfg.log.level, &level);
  base::SetLogLevel(level);
  if (!cfg.ledger.enabled || cfg.ledger.store != "postgresql") {
    return Fail(
        "ledger.store: must be \"postgresql\" (this command serves a "
        "fleet's shared ledger; a single sink serves its own API with "
        "api.enabled)");
  }
  if (!cfg.api.enabled) {
    return Fail("api.enabled: false leaves this command nothing to serve");
  }
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // A reader: it never expires records (the sinks do, by their own
  // ledger.retention_days), never reads a spill file, and records no
  // sessions, so it commits nothing and its sink_id appears nowhere in the
  // database.
  ledger::Options lo = cfg.ledger;
  lo.retention_days = 0;
  lo.max_spill_bytes = 0;  // a sink's spill beside db_path is not ours
  auto opened = ledger::Ledger::Open(lo);
  if (!opened.ok()) return Fail(opened.error());
  std::unique_ptr<ledger::Ledger> ledger = std::move(opened).value();

  auto exempt = ledger::ParseExempt(cfg.tarpit.exempt);
  if (!exempt.ok()) return Fail(exempt.error());
  std::vector<std::pair<std::string, std::string>> info = {
      {"Role", "fleet API node (spamsink api): no SMTP listener"},
      {"API listener", cfg.api.listen},
      {"config", config::EffectiveToml(cfg, false)}};
  api::HttpServer http(cfg.api, ledger.get(), std::move(exempt).value(),
                       std::move(info));
  if (auto s = http.Start(); !s.ok()) return Fail(s.message());
  base::LogLine(base::LogLevel::kInfo, "started")
      .Kv("version", SPAMSINK_VERSION)
      .Kv("role", "api")
      .Kv("ledger", "postgresql")
      .Kv("pid", int64_t(getpid()));

  for (;;) {  // until SIGTERM or SIGINT
    int sig = 0;
    if (sigwait(&sigs, &sig) != 0) continue;
    if (sig == SIGHUP) {
      ReloadApi(reload, &http);
      continue;
    }
    base::LogLine(base::LogLevel::kInfo, "stopping").Kv("signal", sig);
    break;
  }
  http.Stop();
  ledger->Close();
  base::LogLine(base::LogLevel::kInfo, "stopped");
  return 0;
}

}  // namespace app
