// spamsink: wiring only. Parses the command line, assembles the
// configuration (the same for every command) and runs one command: the
// server (app/serve.cc), `api` (app/api_command.cc), `export`
// (ledger/export_command.cc) or `firewall` (app/firewall_command.cc).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <iostream>

#include "api/token.h"
#include "app/commands.h"
#include "base/clock.h"
#include "config/cli.h"
#include "config/config.h"
#include "ledger/export.h"

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "spamsink: %s\n", message.c_str());
  return 1;
}

int Main(int argc, char** argv) {
  CLI::App app{
      "spamsink: a memory hole for spam. Answers SMTP as a believable mail "
      "server, accepts and discards everything, records every sending IP.\n"
      "With no options it listens on 127.0.0.1:25 and [::1]:25 with the "
      "defaults of --print-defaults. Every command reads the same "
      "configuration (--config FILE and the setting flags).",
      "spamsink"};
  config::CommandLine main_line;
  bool check = false, print_defaults = false, print_reference = false;
  bool print_manpage = false;
  bool version = false;
  app.add_flag("--check-config", check,
               "Check the configuration (file and flags) and exit");
  app.add_flag("--print-defaults", print_defaults,
               "Print every setting with its default as TOML and exit");
  app.add_flag("--print-reference", print_reference,
               "Print the configuration reference (Markdown) and exit");
  app.add_flag("--print-manpage", print_manpage,
               "Print the manual page spamsink.toml(5) (roff) and exit");
  app.add_flag("-V,--version", version, "Print the version and exit");
  config::AddConfigOptions(&app, &main_line);

  auto* fw = app.add_subcommand(
      "firewall",
      "Print the nftables script that drops tarpit.drop_percent of the "
      "packets to the server.listen ports (table tarpit.nft_table), for "
      "'nft -f -'");
  config::CommandLine fw_line;
  bool fw_print = false, fw_delete = false;
  auto* print_flag = fw->add_flag(
      "--print", fw_print, "Print the script that adds the table (default)");
  fw->add_flag("--delete", fw_delete, "Print the script that removes it")
      ->excludes(print_flag);
  config::AddConfigOptions(fw, &fw_line);

  auto* ex = app.add_subcommand(
      "export",
      "Print a blocklist from the ledger database (ledger.db_path, --db), "
      "read-only and offline");
  config::CommandLine ex_line;
  config::AddConfigOptions(ex, &ex_line);
  ex->allow_extras();  // the export's own options: ledger::RunExportCommand
  ex->footer(std::string("Export options:\n") + ledger::ExportUsage() +
             "formats: " + ledger::FormatNames());

  auto* ap = app.add_subcommand(
      "api",
      "Serve the HTTP API and console from a fleet's shared PostgreSQL "
      "ledger (ledger.store = \"postgresql\") without listening for SMTP: "
      "a central read node (docs/FLEET.md)");
  config::CommandLine ap_line;
  config::AddConfigOptions(ap, &ap_line);

  auto* cf = app.add_subcommand(
      "config",
      "Print the effective configuration (file, then flags) as TOML, like "
      "postconf; --non-default: only what differs from the defaults, like "
      "postconf -n");
  config::CommandLine cf_line;
  bool cf_non_default = false;
  cf->add_flag("-n,--non-default", cf_non_default,
               "Print only the settings that differ from their defaults");
  config::AddConfigOptions(cf, &cf_line);
  auto* tr = app.add_subcommand(
      "traps",
      "Print signed trap addresses for publishing by hand (forums, paste "
      "sites); spam to them is attributed to --label (docs/TRAPS.md)");
  config::CommandLine tr_line;
  app::TrapsRequest tr_req;
  tr->add_option("--generate", tr_req.count, "How many addresses")->required();
  tr->add_option("--domain", tr_req.domain, "One of traps.domains")->required();
  tr->add_option("--label", tr_req.label,
                 "Where they will be published (shown as the harvester)")
      ->required();
  config::AddConfigOptions(tr, &tr_line);
  app.require_subcommand(0, 1);
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
  if (print_manpage) {
    std::fputs(config::ReferenceMan().c_str(), stdout);
    return 0;
  }
  std::vector<const config::CommandLine*> lines = {&main_line};
  if (fw->parsed()) lines.push_back(&fw_line);
  if (ex->parsed()) lines.push_back(&ex_line);
  if (cf->parsed()) lines.push_back(&cf_line);
  if (ap->parsed()) lines.push_back(&ap_line);
  if (tr->parsed()) lines.push_back(&tr_line);
  auto cfg = config::Load(lines);
  if (!cfg.ok()) return Fail(cfg.error());
  if (cf->parsed()) {
    std::fputs(config::EffectiveToml(*cfg, cf_non_default).c_str(), stdout);
    return 0;
  }
  if (check) {
    std::vector<std::string> warnings;
    auto s = app::CheckSystem(*cfg, &warnings);
    for (const auto& w : warnings) {
      std::fprintf(stderr, "spamsink: warning: %s\n", w.c_str());
    }
    if (!s.ok()) return Fail(s.message());
    std::printf("spamsink: configuration OK\n");
    return 0;
  }
  if (fw->parsed()) {
    return app::RunFirewall(
        *cfg,
        fw_delete ? app::FirewallAction::kDelete : app::FirewallAction::kPrint,
        std::cout, std::cerr);
  }
  if (tr->parsed()) {
    return app::RunTraps(*cfg, tr_req, base::SystemClock::Get().WallSeconds(),
                         std::cout, std::cerr);
  }
  if (ex->parsed()) {
    auto exempt = ledger::ParseExempt(cfg->tarpit.exempt);
    if (!exempt.ok()) return Fail(exempt.error());
    return ledger::RunExportCommand(ex->remaining(), cfg->ledger.db_path,
                                    *exempt, std::cout, std::cerr,
                                    cfg->ledger.ipv6_prefix);
  }
  // SIGHUP reads the same file and flags again.
  auto reload = [lines] { return config::Load(lines); };
  if (ap->parsed()) return app::ServeApi(std::move(cfg).value(), reload);
  std::string config_file;  // the last --config wins (config::Load)
  for (const auto* l : lines) {
    if (!l->file.empty()) config_file = l->file;
  }
  return app::Serve(std::move(cfg).value(), reload, config_file);
}

}  // namespace

// Errors are values everywhere below; an exception reaching this point is a
// bug, reported as one line and exit status 1 rather than std::terminate.
int main(int argc, char** argv) {
  // Before any thread or child: the token leaves the environment here.
  api::TakeTokenFromEnvironment();
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    return Fail(std::string("internal error: ") + e.what());
  } catch (...) {
    return Fail("internal error: unknown exception");
  }
}
