// SIGHUP's decisions (what a new configuration changes live and what waits
// for a restart) and --check-config's checks of files and directories.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "api/token.h"
#include "app/commands.h"

namespace app {
namespace {

// Settings bound at start: listeners and threads, privileges, the PROXY
// networks, the TLS context, the ledger's store, the API's listener and the
// firewall rule applied at start.
void KeepRestartOnly(const config::Config& running, config::Config* c) {
  auto& s = c->server;
  const auto& r = running.server;
  s.listen = r.listen;
  s.user = r.user;
  s.proxy_trusted = r.proxy_trusted;
  s.threads = r.threads;
  s.backlog = r.backlog;
  s.fd_reserve = r.fd_reserve;
  c->smtp.starttls = running.smtp.starttls;
  c->smtp.tls_cert = running.smtp.tls_cert;
  c->smtp.tls_key = running.smtp.tls_key;
  c->ledger = running.ledger;
  // The token is re-read (a rotated token_file) and may change; the
  // listener may not.
  std::string token = c->api.token, token_file = c->api.token_file;
  c->api = running.api;
  c->api.token = token;
  c->api.token_file = token_file;
  c->tarpit.drop_percent = running.tarpit.drop_percent;
  c->tarpit.drop_data_only = running.tarpit.drop_data_only;
  c->tarpit.nft_table = running.tarpit.nft_table;
}

std::string Directory(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

ReloadPlan PlanReload(const config::Config& running,
                      const config::Config& next) {
  ReloadPlan plan;
  plan.apply = next;
  KeepRestartOnly(running, &plan.apply);
  plan.applied = config::ChangedKeys(running, plan.apply);
  plan.need_restart = config::ChangedKeys(plan.apply, next);
  return plan;
}

base::Status CheckSystem(const config::Config& c,
                         std::vector<std::string>* warnings) {
  auto err = [](const std::string& m) { return base::Status::Error(m); };
  for (auto [name, path] : {std::pair{"smtp.tls_cert", &c.smtp.tls_cert},
                            {"smtp.tls_key", &c.smtp.tls_key}}) {
    if (path->empty()) continue;
    if (access(path->c_str(), R_OK) != 0) {
      return err(std::string(name) + ": \"" + *path + "\": cannot be read (" +
                 std::strerror(errno) + ")");
    }
  }
  if (c.api.enabled && !c.api.token_file.empty()) {
    auto token = api::ReadTokenFile(c.api.token_file);
    if (!token.ok()) return token.status();
    if (!c.server.user.empty()) {
      warnings->push_back("api.token_file: \"" + c.api.token_file +
                          "\" must also be readable by user '" + c.server.user +
                          "' (checked as the current user)");
    }
  }
  if (c.ledger.enabled && c.ledger.store != "postgresql") {
    const std::string& db = c.ledger.db_path;
    bool exists = access(db.c_str(), F_OK) == 0;
    std::string target = exists ? db : Directory(db);
    if (access(target.c_str(), W_OK) != 0) {
      std::string why = std::strerror(errno);
      std::string m =
          "ledger.db_path: \"" + target + "\" is not writable (" + why + ")";
      if (!c.server.user.empty() && geteuid() == 0) {
        // Root may write where the server's user may not: only say so.
        warnings->push_back(m);
      } else {
        return err(m);
      }
    } else if (!c.server.user.empty()) {
      warnings->push_back("ledger.db_path: \"" + target +
                          "\" must also be writable by user '" + c.server.user +
                          "' (checked as the current user)");
    }
  }
  return {};
}

}  // namespace app
