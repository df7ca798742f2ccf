// Running spamsink as an operator runs Postfix: signals, the effective
// configuration, deeper checks, session ids, separate nftables tables.
// Each test runs build/spamsink on loopback (or in a network namespace it
// makes) and stops it by pid.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "app/cli_test_util.h"
#include "ledger/sqlite_store.h"
#include "ledger/test_util.h"

namespace app_test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class OperatorCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string bin = SpamsinkPath();
    if (bin.empty() || access(bin.c_str(), X_OK) != 0) {
      GTEST_SKIP() << "SPAMSINK_BUILD_DIR/spamsink not built";
    }
  }
};

const std::vector<std::string> kLoopback = {
    "--listen",         "127.0.0.1:0", "--api-enabled", "false",
    "--ledger-enabled", "false",       "--hostname",    "mx.test"};

std::vector<std::string> With(std::vector<std::string> a,
                              const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::string Persona(const std::string& banner) {
  return "[smtp]\npersona = \"custom\"\ncustom_banner = \"" + banner + "\"\n";
}

// SIGHUP used to stop the server with exit status 0 (so systemd's
// Restart=on-failure left it down). Now it reloads: a live change applies
// to new sessions, a broken file keeps the running configuration, and the
// log says what was applied and what needs a restart.
TEST_F(OperatorCli, SighupReloadsAndABrokenFileKeepsTheRunningConfig) {
  ledger::testing::TempDir dir;
  const std::string toml = dir.File("spamsink.toml");
  WriteFile(toml, Persona("first ESMTP"));
  Daemon d(With({"--config", toml}, kLoopback));
  int port = d.Port();
  ASSERT_GT(port, 0) << d.err();
  EXPECT_EQ(Banner(port), "220 mx.test first ESMTP");

  WriteFile(toml, Persona("second ESMTP") + "[server]\nthreads = 3\n");
  d.Signal(SIGHUP);
  std::string line = d.WaitFor("event=reloaded");
  ASSERT_NE(line, "") << d.err();
  EXPECT_THAT(line, HasSubstr("applied=smtp.custom_banner "));
  EXPECT_THAT(line, HasSubstr("restart_needed=server.threads"));
  EXPECT_TRUE(d.Running());
  EXPECT_EQ(Banner(port), "220 mx.test second ESMTP");

  WriteFile(toml, Persona("third") + "[server]\nmax_conections = 5\n");
  d.Signal(SIGHUP);
  line = d.WaitFor("event=reload_failed");
  EXPECT_THAT(line, HasSubstr("max_conections: unknown key"));
  EXPECT_TRUE(d.Running());
  EXPECT_EQ(Banner(port), "220 mx.test second ESMTP");
  EXPECT_EQ(d.Stop(), 0);
}

// The status of GET path on 127.0.0.1:port with a bearer token ("" for
// none); 0 on a failure. A few lines of HTTP/1.0, so this test needs no
// HTTP library.
int HttpStatus(int port, const std::string& path, const std::string& token) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string req = "GET " + path + " HTTP/1.0\r\n";
  if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
  req += "\r\n";
  char buf[64] = {};
  ssize_t n = -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      send(fd, req.data(), req.size(), MSG_NOSIGNAL) == ssize_t(req.size())) {
    n = recv(fd, buf, sizeof buf - 1, MSG_WAITALL);
  }
  close(fd);
  int status = 0;
  if (n > 0) std::sscanf(buf, "HTTP/1.%*d %d", &status);
  return status;
}

// The API's port from its event=api_listening line (0 if none yet).
int ApiPort(Daemon& d) {
  std::string line = d.WaitFor("event=api_listening");
  std::smatch m;
  if (!std::regex_search(line, m, std::regex("address=[^ ]*:([0-9]+)"))) {
    return 0;
  }
  return std::stoi(m[1]);
}

// The token can live in a file (not in the configuration, not in ps) that
// SIGHUP reads again: rotating it is writing the file and reloading. A
// file others can read is refused at start and at reload.
TEST_F(OperatorCli, ApiTokenFromAFileRotatesOnSighup) {
  ledger::testing::TempDir dir;
  const std::string token = dir.File("api.token");
  WriteFile(token, "first-token\n");
  chmod(token.c_str(), 0600);
  Daemon d({"--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0",
            "--api-token-file", token, "--ledger-enabled", "false"});
  int api = ApiPort(d);
  ASSERT_GT(api, 0) << d.err();
  EXPECT_EQ(HttpStatus(api, "/metrics", ""), 401);
  EXPECT_EQ(HttpStatus(api, "/metrics", "first-token"), 200);

  WriteFile(token, "second-token\n");
  d.Signal(SIGHUP);
  std::string line = d.WaitFor("event=reloaded");
  EXPECT_THAT(line, HasSubstr("api_token=file")) << d.err();
  EXPECT_EQ(HttpStatus(api, "/metrics", "first-token"), 401);
  EXPECT_EQ(HttpStatus(api, "/metrics", "second-token"), 200);

  chmod(token.c_str(), 0644);
  d.Signal(SIGHUP);
  line = d.WaitFor("event=reload_failed");
  EXPECT_THAT(line, HasSubstr("error=\"api.token_file: "));
  EXPECT_THAT(line, HasSubstr(token + "\\\": mode 0644 lets other users"));
  EXPECT_EQ(HttpStatus(api, "/metrics", "second-token"), 200);
  EXPECT_EQ(d.Stop(), 0);

  RunResult r =
      RunSpamsink({"--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0",
                   "--api-token-file", token, "--ledger-enabled", "false"});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("mode 0644 lets other users read"));
  RunResult both = RunSpamsink(
      {"--check-config", "--api-token", "x", "--api-token-file", token});
  EXPECT_NE(both.status, 0);
  EXPECT_THAT(both.err, HasSubstr("api.token and api.token_file"));
}

// The whole answer (status line, headers, body) to GET path on
// 127.0.0.1:port over HTTP/1.0; "" on a failure.
std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string req = "GET " + path + " HTTP/1.0\r\n\r\n", out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      send(fd, req.data(), req.size(), MSG_NOSIGNAL) == ssize_t(req.size())) {
    char buf[4096];
    // Bounded: the server closes after an HTTP/1.0 answer; at most 4 MB.
    for (int i = 0; i < 1024; ++i) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, size_t(n));
    }
  }
  close(fd);
  return out;
}

// The console's Server page shows the running configuration: a reload
// replaces it and says what it applied; a failed one says why and keeps
// showing what still runs.
TEST_F(OperatorCli, ConsoleServerPageFollowsSighup) {
  ledger::testing::TempDir dir;
  const std::string toml = dir.File("spamsink.toml");
  WriteFile(toml, Persona("first ESMTP"));
  Daemon d({"--config", toml, "--listen", "127.0.0.1:0", "--api-listen",
            "127.0.0.1:0", "--ledger-enabled", "false"});
  int api = ApiPort(d);
  ASSERT_GT(api, 0) << d.err();
  std::string page = HttpGet(api, "/server");
  EXPECT_THAT(page, HasSubstr("custom_banner = &quot;first ESMTP&quot;"));
  EXPECT_THAT(page, HasSubstr("none since the start"));

  WriteFile(toml, Persona("second ESMTP") + "[server]\nthreads = 3\n");
  d.Signal(SIGHUP);
  ASSERT_NE(d.WaitFor("event=reloaded"), "") << d.err();
  page = HttpGet(api, "/server");
  EXPECT_THAT(page, HasSubstr("custom_banner = &quot;second ESMTP&quot;"));
  EXPECT_THAT(page, Not(HasSubstr("first ESMTP")));
  EXPECT_THAT(page, HasSubstr("applied: smtp.custom_banner; waiting for a "
                              "restart: server.threads"));

  WriteFile(toml, Persona("third") + "[server]\nmax_conections = 5\n");
  d.Signal(SIGHUP);
  ASSERT_NE(d.WaitFor("event=reload_failed"), "") << d.err();
  page = HttpGet(api, "/server");
  EXPECT_THAT(page, HasSubstr("max_conections: unknown key"));
  EXPECT_THAT(page, HasSubstr("custom_banner = &quot;second ESMTP&quot;"));
  EXPECT_EQ(d.Stop(), 0);
}

std::string SessionId(Daemon& d, int port) {
  Banner(port);
  std::string line = d.WaitFor("event=session ");
  std::smatch m;
  if (!std::regex_search(line, m, std::regex("session=([^ ]+)"))) return "";
  return m[1];
}

// Ids used to be a per-worker hex counter ("0000001") that every instance
// and every restart repeated.
TEST_F(OperatorCli, SessionIdsDifferAcrossInstancesAndRestarts) {
  std::vector<std::string> ids;
  for (int run = 0; run < 2; ++run) {
    Daemon a(kLoopback), b(kLoopback);
    int pa = a.Port(), pb = b.Port();
    ASSERT_GT(pa, 0) << a.err();
    ASSERT_GT(pb, 0) << b.err();
    ids.push_back(SessionId(a, pa));
    ids.push_back(SessionId(b, pb));
    // The session line carries the tarpit's fields too.
    EXPECT_THAT(a.err(), HasSubstr(" tarpit=no delay=0.000 "));
  }
  std::regex shape("[0-9a-f]{12}-[0-9]+-[0-9a-f]+");
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_TRUE(std::regex_match(ids[i], shape)) << ids[i];
    for (size_t j = 0; j < i; ++j) EXPECT_NE(ids[i], ids[j]);
  }
}

// postconf and postconf -n: the effective configuration, and only what
// differs from the defaults; the output reads back as the same settings.
TEST_F(OperatorCli, ConfigPrintsTheEffectiveAndTheNonDefaultSettings) {
  ledger::testing::TempDir dir;
  const std::string toml = dir.File("spamsink.toml");
  WriteFile(toml, "[tarpit]\njitter = 0.3\nexempt = [\"192.0.2.0/24\"]\n");
  RunResult n =
      RunSpamsink({"config", "--non-default", "-c", toml, "--tarpit-enabled"});
  EXPECT_EQ(n.status, 0) << n.err;
  EXPECT_EQ(n.out,
            "[tarpit]\nenabled = true\nexempt = [\"192.0.2.0/24\"]\n"
            "jitter = 0.3\n");
  RunResult all = RunSpamsink({"config", "--config", toml});
  EXPECT_EQ(all.status, 0) << all.err;
  EXPECT_THAT(all.out, HasSubstr("\njitter = 0.3\n"));
  EXPECT_THAT(all.out, HasSubstr("\ndegrade_at = 0.8\n"));
  // No float noise (10 zeros: ledger.max_sources = 10000000 has 7).
  EXPECT_THAT(all.out, Not(HasSubstr("0000000000")));
  const std::string back = dir.File("back.toml");
  WriteFile(back, all.out);
  RunResult again = RunSpamsink({"config", "-n", "--config", back});
  EXPECT_EQ(again.out, "[tarpit]\nexempt = [\"192.0.2.0/24\"]\njitter = 0.3\n");
  RunResult defaults = RunSpamsink({"--print-defaults"});
  EXPECT_THAT(defaults.out, HasSubstr("\njitter = 0.2\n"));
  EXPECT_THAT(defaults.out, Not(HasSubstr("0000000000")));
}

TEST_F(OperatorCli, BooleanFlagsWorkBare) {
  RunResult r = RunSpamsink({"--tarpit-enabled", "--check-config"});
  EXPECT_EQ(r.status, 0) << r.err;
  RunResult c = RunSpamsink(
      {"config", "-n", "--tarpit-enabled", "--tarpit-stutter", "false"});
  EXPECT_EQ(c.out, "[tarpit]\nenabled = true\nstutter = false\n") << c.err;
}

TEST_F(OperatorCli, UnknownKeysGetADidYouMean) {
  ledger::testing::TempDir dir;
  const std::string toml = dir.File("spamsink.toml");
  WriteFile(toml, "[server]\nmax_conections = 5\n");
  RunResult r = RunSpamsink({"--check-config", "--config", toml});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err,
              HasSubstr(toml + ":2: server.max_conections: unknown key; did "
                               "you mean server.max_connections?"));
  WriteFile(toml, "[tarpitt]\nenabled = true\n");
  r = RunSpamsink({"--check-config", "--config", toml});
  EXPECT_THAT(r.err, HasSubstr("did you mean [tarpit]?"));
}

// --check-config used to pass missing TLS files, an unwritable database
// directory and hold_budget 900 > session_timeout 600 (tarpit off).
TEST_F(OperatorCli, CheckConfigChecksFilesAndContradictions) {
  RunResult tls =
      RunSpamsink({"--check-config", "--smtp-tls-cert", "/nonexistent/cert.pem",
                   "--smtp-tls-key", "/nonexistent/key.pem"});
  EXPECT_EQ(tls.status, 1);
  EXPECT_THAT(tls.err, HasSubstr("smtp.tls_cert: \"/nonexistent/cert.pem\""));
  RunResult db =
      RunSpamsink({"--check-config", "--db", "/nonexistent/dir/s.db"});
  EXPECT_EQ(db.status, 1);
  EXPECT_THAT(db.err, HasSubstr("ledger.db_path: \"/nonexistent/dir\""));
  RunResult hold =
      RunSpamsink({"--check-config", "--tarpit-hold-budget", "900"});
  EXPECT_EQ(hold.status, 1);
  EXPECT_THAT(hold.err, HasSubstr("tarpit.hold_budget: 900 must be below "
                                  "smtp.session_timeout (600)"));
}

// --check-config tries each listener: a port held by another socket is a
// warning (the running server holds its own before a reload), and a
// setting that names a bad address is an error naming the key.
TEST_F(OperatorCli, CheckConfigTriesTheListeners) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const std::string busy = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  RunResult held = RunSpamsink(
      {"--check-config", "--listen", busy, "--api-enabled", "false"});
  close(fd);
  EXPECT_EQ(held.status, 0) << held.err;
  EXPECT_THAT(held.err,
              HasSubstr("server.listen: \"" + busy + "\" is in use now"));
  RunResult freed = RunSpamsink(
      {"--check-config", "--listen", busy, "--api-enabled", "false"});
  EXPECT_EQ(freed.status, 0) << freed.err;
  EXPECT_THAT(freed.err, Not(HasSubstr("in use")));
}

// Runs a shell script in a new network namespace (its own, empty nftables
// ruleset); returns its output, or nullopt when namespaces or nft are
// unavailable here.
std::optional<std::string> InNetns(const std::string& script) {
  std::string cmd = "unshare -n sh -e -c '" + script + "' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return std::nullopt;
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  int status = pclose(p);
  if (status != 0) return "FAILED: " + out;
  return out;
}

// The drop rule and the exported sets used to share "table inet spamsink":
// applying the rule deleted the sets. Now each loads and goes without
// touching the other.
TEST_F(OperatorCli, DropRuleAndExportedSetsLiveInSeparateTables) {
  auto probe = InNetns("nft list ruleset");
  if (!probe || probe->starts_with("FAILED")) {
    GTEST_SKIP() << "no network namespace or nft here: "
                 << probe.value_or("popen failed");
  }
  ledger::testing::TempDir dir;
  const std::string db = dir.File("s.db");
  {
    auto store = ledger::OpenSqliteStore(db);
    ASSERT_TRUE(store.ok());
    ledger::SourceRecord r;
    r.ip = ledger::testing::Ip("192.0.2.9");
    r.first_seen = r.last_seen = 1714521600;
    r.connections = r.messages = 1;
    ASSERT_TRUE((*store)->Apply({r}).ok());
  }
  const std::string bin = SpamsinkPath();
  const std::string drop = dir.File("drop.nft"), del = dir.File("del.nft"),
                    sets = dir.File("sets.nft");
  ASSERT_EQ(RunSpamsink({"export", "--db", db, "--format", "nftables",
                         "--output", sets})
                .status,
            0);
  const std::vector<std::string> rule = {"--tarpit-drop-percent", "10",
                                         "--listen", "0.0.0.0:2525"};
  WriteFile(drop, RunSpamsink(With({"firewall"}, rule)).out);
  WriteFile(del, RunSpamsink(With({"firewall", "--delete"}, rule)).out);
  auto out =
      InNetns("nft -f " + sets + "; nft -f " + drop +
              "; echo ==; nft list tables; nft list set inet spamsink "
              "sources_v4; nft -f " +
              del + "; echo ==; nft list tables; nft -f " + sets + "; nft -f " +
              drop + "; nft -f " + sets + "; echo ==; nft list tables");
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(*out,
            "==\ntable inet spamsink\ntable inet spamsink_drop\n"
            "table inet spamsink {\n\tset sources_v4 {\n"
            "\t\ttype ipv4_addr\n\t\tflags interval\n"
            "\t\telements = { 192.0.2.9 }\n\t}\n}\n"
            "==\ntable inet spamsink\n"
            "==\ntable inet spamsink\ntable inet spamsink_drop\n");
}

// Started as root with --user, the server used to lose CAP_NET_ADMIN with
// its other privileges and leave its drop rule behind at exit. It now keeps
// that one capability (not effective; ambient for nft), removes the rule
// when it stops, and has no other capability while it runs.
TEST_F(OperatorCli, DropRuleIsRemovedAtExitAfterUser) {
  auto probe = InNetns("nft list ruleset");
  if (!probe || probe->starts_with("FAILED") || geteuid() != 0) {
    GTEST_SKIP() << "needs root, a network namespace and nft: "
                 << probe.value_or("popen failed");
  }
  ledger::testing::TempDir dir;
  const std::string log = dir.File("log");
  // Bounded waits (100 x 50 ms) for states, not for a delay. grep -s: the
  // background shell may not have created the log yet at the first look.
  auto out = InNetns(
      "ip link set lo up 2>/dev/null || true; " + SpamsinkPath() +
      " --listen 127.0.0.1:2525 --api-enabled false --ledger-enabled false "
      "--user nobody --tarpit-drop-percent 10 2>" +
      log + " & pid=$!; i=0; until grep -qs event=started " + log +
      "; do i=$((i+1)); [ $i -lt 100 ] || exit 3; sleep 0.05; done; "
      "nft list tables; grep -E \"^Cap(Prm|Eff|Amb)\" /proc/$pid/status; "
      "kill -TERM $pid; st=0; wait $pid || st=$?; echo status=$st; echo ==; "
      "nft list tables");
  ASSERT_TRUE(out.has_value());
  std::ifstream in(log);
  std::string err((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(*out,
            "table inet spamsink_drop\n"
            "CapPrm:\t0000000000001000\n"
            "CapEff:\t0000000000000000\n"
            "CapAmb:\t0000000000001000\n"
            "status=0\n==\n")
      << err;
  EXPECT_THAT(err, HasSubstr("event=firewall action=remove"));
}

// The security review found NoNewPrivs 0 and the ledger's files created
// -rw-r--r-- under the usual umask 022: now no_new_privs is set once the
// server runs, and its files are created under umask 027.
TEST_F(OperatorCli, NoNewPrivsAndLedgerFilesClosedToOthers) {
  ledger::testing::TempDir dir;
  const std::string db = dir.File("s.db");
  mode_t old = umask(022);  // what a shell usually leaves
  Daemon d({"--listen", "127.0.0.1:0", "--api-enabled", "false",
            "--ledger-enabled", "true", "--db", db, "--hostname", "mx.test"});
  umask(old);
  std::string started = d.WaitFor("event=started");
  ASSERT_THAT(started, HasSubstr("pid="));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(started, m, std::regex("pid=([0-9]+)")));
  std::ifstream status("/proc/" + m[1].str() + "/status");
  std::string line, nnp, seccomp, cap_eff;
  while (std::getline(status, line)) {
    if (line.rfind("NoNewPrivs:", 0) == 0) nnp = line;
    if (line.rfind("Seccomp:", 0) == 0) seccomp = line;
    if (line.rfind("CapEff:", 0) == 0) cap_eff = line;
  }
  EXPECT_THAT(nnp, ::testing::MatchesRegex("NoNewPrivs:[ \t]*1"));
  // server.sandbox (default on): the seccomp filter and no capabilities,
  // although this test runs the server as root.
  EXPECT_THAT(seccomp, ::testing::MatchesRegex("Seccomp:[ \t]*2"));
  EXPECT_THAT(cap_eff, ::testing::MatchesRegex("CapEff:[ \t]*0+"));
  EXPECT_THAT(started, HasSubstr("sandbox=on"));
  for (const char* suffix : {"", "-wal", "-shm"}) {
    struct stat st {};
    std::string path = db + suffix;
    if (stat(path.c_str(), &st) != 0) continue;  // -wal/-shm come later
    EXPECT_EQ(st.st_mode & 027, 0u)
        << path << " mode " << std::oct << (st.st_mode & 0777);
  }
  struct stat st {};
  ASSERT_EQ(stat(db.c_str(), &st), 0);
  EXPECT_EQ(d.Stop(), 0);
}

// server.memory_limit left at its default is derived (cgroup or MemTotal)
// and sizes the other budgets; set, it is the config's. The start's log
// line, /healthz and /metrics say which and show each budget.
TEST_F(OperatorCli, MemoryLimitIsDerivedAndSizesTheBudgets) {
  Daemon d({"--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0",
            "--ledger-enabled", "false"});
  std::string line = d.WaitFor("event=memory_budgets");
  EXPECT_THAT(line, ::testing::ContainsRegex("source=(cgroup|meminfo) "));
  int api = ApiPort(d);
  ASSERT_GT(api, 0) << d.err();
  std::string health = HttpGet(api, "/healthz");
  EXPECT_THAT(health, ::testing::ContainsRegex(
                          "\"limit_source\": ?\"(cgroup|meminfo)\""));
  EXPECT_THAT(health, HasSubstr("\"reputation_budget_bytes\""));
  EXPECT_EQ(d.Stop(), 0);

  ledger::testing::TempDir dir;
  const std::string toml = dir.File("spamsink.toml");
  WriteFile(toml, "[server]\nmemory_limit = 67108864\n");
  Daemon set({"--config", toml, "--listen", "127.0.0.1:0", "--api-listen",
              "127.0.0.1:0", "--ledger-enabled", "false"});
  line = set.WaitFor("event=memory_budgets");
  EXPECT_THAT(line, HasSubstr("memory_limit=67108864 source=config "
                              "reputation_bytes=16777216 "
                              "ledger_pending_bytes=8388608 "
                              "seed_bytes=8388608"));
  api = ApiPort(set);
  ASSERT_GT(api, 0) << set.err();
  std::string metrics = HttpGet(api, "/metrics");
  EXPECT_THAT(metrics, HasSubstr("spamsink_memory_limit_bytes 67108864"));
  EXPECT_THAT(metrics, HasSubstr("spamsink_peer_cache_budget_bytes 16777216"));
  EXPECT_THAT(metrics,
              HasSubstr("spamsink_ledger_pending_budget_bytes 8388608"));
  EXPECT_THAT(metrics,
              HasSubstr("spamsink_memory_limit_source{source=\"config\"} 1"));
  EXPECT_EQ(set.Stop(), 0);
}

// SPAMSINK_API_TOKEN is a token source besides api.token_file: it
// satisfies the non-loopback rule, authenticates, and is never printed nor
// left in /proc/PID/environ.
TEST_F(OperatorCli, ApiTokenFromTheEnvironmentIsNeverShown) {
  const std::string secret = "env-T0ken-4-test";
  RunResult open = RunSpamsink({"--check-config", "--api-listen",
                                "0.0.0.0:8025", "--ledger-enabled", "false"});
  EXPECT_NE(open.status, 0);
  EXPECT_THAT(open.err, HasSubstr("api.token: required"));
  setenv("SPAMSINK_API_TOKEN", secret.c_str(), 1);
  RunResult checked =
      RunSpamsink({"--check-config", "--api-listen", "0.0.0.0:8025",
                   "--ledger-enabled", "false"});
  EXPECT_EQ(checked.status, 0) << checked.err;
  Daemon d({"--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0",
            "--ledger-enabled", "false"});
  unsetenv("SPAMSINK_API_TOKEN");
  int api = ApiPort(d);
  ASSERT_GT(api, 0) << d.err();
  EXPECT_EQ(HttpStatus(api, "/metrics", ""), 401);
  EXPECT_EQ(HttpStatus(api, "/metrics", secret), 200);
  std::smatch m;
  std::string started = d.WaitFor("event=started");
  ASSERT_TRUE(std::regex_search(started, m, std::regex("pid=([0-9]+)")));
  std::ifstream environ("/proc/" + m[1].str() + "/environ", std::ios::binary);
  std::string env((std::istreambuf_iterator<char>(environ)),
                  std::istreambuf_iterator<char>());
  EXPECT_FALSE(env.empty());
  EXPECT_THAT(env, Not(HasSubstr(secret)));
  d.Signal(SIGHUP);  // the reload keeps the token it took at start
  EXPECT_THAT(d.WaitFor("event=reloaded"), HasSubstr("api_token=environment"));
  EXPECT_EQ(HttpStatus(api, "/metrics", secret), 200);
  EXPECT_EQ(d.Stop(), 0);
  EXPECT_THAT(d.err(), Not(HasSubstr(secret)));
}

}  // namespace
}  // namespace app_test
