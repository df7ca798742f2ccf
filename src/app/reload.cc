// SIGHUP's decisions (what a new configuration changes live and what waits
// for a restart) and --check-config's checks of files and directories.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "api/token.h"
#include "app/commands.h"
#include "base/endpoint.h"

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
  s.memory_limit = r.memory_limit;
  s.reputation_bytes = r.reputation_bytes;
  s.seed_bytes = r.seed_bytes;
  s.sandbox = r.sandbox;
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
  c->capture = running.capture;
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

namespace {

// What binding ep (SOCK_STREAM or SOCK_DGRAM) would meet now: 0 or errno.
// A throwaway socket with SO_REUSEADDR, as the listeners set it, so a port
// in TIME_WAIT is not reported.
int TryBind(const base::Endpoint& ep, int type) {
  sockaddr_storage ss{};
  socklen_t len;
  int family;
  if (ep.address.is_v4()) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = family = AF_INET;
    a->sin_port = htons(ep.port);
    a->sin_addr.s_addr = htonl(ep.address.v4());
    len = sizeof(sockaddr_in);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = family = AF_INET6;
    a->sin6_port = htons(ep.port);
    std::memcpy(&a->sin6_addr, ep.address.bytes().data(), 16);
    len = sizeof(sockaddr_in6);
  }
  int fd = socket(family, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  int e = bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 ? 0 : errno;
  close(fd);
  return e;
}

// Checks that each listener could be bound: a port below 1024 without the
// privilege, or an address this host does not have, is an error; a port in
// use is only a warning, since the running server holds its own ports when
// `systemctl reload` runs --check-config before the SIGHUP.
base::Status CheckListeners(const config::Config& c,
                            std::vector<std::string>* warnings) {
  struct L {
    std::string key;
    std::string text;
    int type;
  };
  std::vector<L> all;
  for (const auto& l : c.server.listen) {
    all.push_back({"server.listen", l, SOCK_STREAM});
  }
  if (c.api.enabled) all.push_back({"api.listen", c.api.listen, SOCK_STREAM});
  if (c.dnsbl.enabled) {
    all.push_back({"dnsbl.listen", c.dnsbl.listen, SOCK_DGRAM});
    all.push_back({"dnsbl.listen", c.dnsbl.listen, SOCK_STREAM});
  }
  if (c.traps.enabled) {
    all.push_back({"traps.listen", c.traps.listen, SOCK_STREAM});
  }
  for (const auto& l : all) {
    auto ep = base::Endpoint::Parse(l.text);
    if (!ep.ok()) return base::Status::Error(l.key + ": " + ep.error());
    if (ep->port == 0) continue;
    int e = TryBind(*ep, l.type);
    std::string where =
        l.key + ": \"" + l.text + "\"" + (l.type == SOCK_DGRAM ? " (UDP)" : "");
    if (e == 0) continue;
    if (e == EADDRINUSE) {
      warnings->push_back(where +
                          " is in use now (by the running spamsink, before "
                          "a reload? otherwise start-up will fail)");
    } else if (e == EACCES) {
      return base::Status::Error(
          where + ": port " + std::to_string(ep->port) +
          " needs root (then server.user) or CAP_NET_BIND_SERVICE");
    } else {
      return base::Status::Error(where + ": cannot be bound (" +
                                 std::strerror(e) + ")");
    }
  }
  return {};
}

}  // namespace

base::Status CheckSystem(const config::Config& c,
                         std::vector<std::string>* warnings) {
  auto err = [](const std::string& m) { return base::Status::Error(m); };
  if (auto s = CheckListeners(c, warnings); !s.ok()) return s;
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
