// End-to-end tests of the smtpsend binary on loopback: against Postfix's
// smtp-sink (skipped when it is not installed), against spamsink (skipped
// until it is built), and against bare sockets for the failure classes.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sender/loopback_test_util.h"

namespace sender_test {
namespace {

using nlohmann::json;

constexpr const char* kSmtpSink = "/usr/sbin/smtp-sink";

int CountFiles(const std::string& dir) {
  int n = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file()) n++;
  return n;
}

class SmtpSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    smtpsend_ = BuildPath("smtpsend");
    if (smtpsend_.empty() || access(smtpsend_.c_str(), X_OK) != 0)
      GTEST_SKIP() << "SPAMSINK_BUILD_DIR/smtpsend not built";
    if (access(kSmtpSink, X_OK) != 0) GTEST_SKIP() << "no smtp-sink";
    char tmpl[] = "/tmp/smtpsend_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dump_ = tmpl;
    chmod(dump_.c_str(), 0777);  // smtp-sink may run as nobody
    port_ = FreePort();
    std::vector<std::string> argv = {kSmtpSink, "-c"};
    if (geteuid() == 0) argv.insert(argv.end(), {"-u", "nobody"});
    argv.insert(argv.end(), {"-d", dump_ + "/%H%M%S.",
                             "127.0.0.1:" + std::to_string(port_), "256"});
    sink_ = Spawn(argv);
    ASSERT_TRUE(WaitForPort(port_, 5000)) << "smtp-sink did not start";
  }
  void TearDown() override {
    Stop(sink_);
    if (!dump_.empty()) std::filesystem::remove_all(dump_);
  }
  ProcResult Send(std::vector<std::string> args) {
    args.insert(args.begin(), {smtpsend_, "-p", std::to_string(port_)});
    return RunCapture(args, 60);
  }

  std::string smtpsend_, dump_;
  int port_ = 0;
  Child sink_;
};

TEST_F(SmtpSinkTest, CountAloneSendsAndPrintsClassicLines) {
  ProcResult r = Send({"-n", "3"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("Sent 3 messages in "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Sending rate: "), std::string::npos);
  EXPECT_NE(r.out.find("Average delivery time: "), std::string::npos);
  EXPECT_EQ(CountFiles(dump_), 3);
}

TEST_F(SmtpSinkTest, JsonCountsMatchWhatTheSinkReceived) {
  ProcResult r =
      Send({"-s", "4", "-m", "5", "-n", "50", "--recipients", "3", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["messages"]["accepted"], 50);
  EXPECT_EQ(j["messages"]["total"], 50);
  EXPECT_EQ(j["messages"]["failed_unexpectedly"], 0);
  // At least n/m sessions: near the end the budget splits across slots.
  EXPECT_GE(j["sessions"]["total"].get<int>(), 10);
  EXPECT_EQ(j["sessions"]["accepted"], j["sessions"]["total"]);
  EXPECT_EQ(j["recipients"]["accepted"], 150);
  EXPECT_EQ(j["latency_ms"]["end_of_data"]["count"], 50);
  EXPECT_EQ(j["latency_ms"]["rcpt"]["count"], 150);
  EXPECT_GT(j["rates"]["messages_per_s"].get<double>(), 0);
  EXPECT_EQ(CountFiles(dump_), 50);
}

TEST_F(SmtpSinkTest, LockStepSizeRangeAndManySourceAddresses) {
  ProcResult r =
      Send({"-s", "5", "-n", "20", "--no-pipelining", "--size-min", "10",
            "--size-max", "5000", "--source-range", "127.77.0.0/24", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["messages"]["accepted"], 20);
  EXPECT_EQ(CountFiles(dump_), 20);
}

TEST_F(SmtpSinkTest, HeldSessionsAreAnnounced) {
  ProcResult r = Send({"-s", "20", "-n", "20", "--hold", "0.3", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["extras"]["held_sessions"], 20);
  EXPECT_NE(r.err.find("holding 20 sessions"), std::string::npos) << r.err;
}

TEST_F(SmtpSinkTest, AbortedMessagesDoNotFailTheRun) {
  ProcResult r =
      Send({"-s", "2", "-n", "10", "--abort-in-data", "1", "--json"});
  EXPECT_EQ(r.status, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["messages"]["aborted"], 10);
  EXPECT_EQ(CountFiles(dump_), 0);
}

// Failure classes against bare sockets.
class BareSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    smtpsend_ = BuildPath("smtpsend");
    if (smtpsend_.empty() || access(smtpsend_.c_str(), X_OK) != 0)
      GTEST_SKIP() << "SPAMSINK_BUILD_DIR/smtpsend not built";
  }
  std::string smtpsend_;
};

TEST_F(BareSocketTest, RefusedConnectionsFailAsConnect) {
  int port = FreePort();  // nothing listens there
  ProcResult r = RunCapture(
      {smtpsend_, "-p", std::to_string(port), "-n", "4", "-s", "2", "--json"});
  EXPECT_EQ(r.status, 1) << r.err;
  json j = json::parse(r.out);
  // -n counts accepted messages: each failure is retried once at most
  // (n retries in all), so 4 + 4 attempts.
  EXPECT_EQ(j["messages"]["connect"], 8);
  EXPECT_EQ(j["sessions"]["connect"], 8);
}

TEST_F(BareSocketTest, SilentServerTimesOut) {
  // A listener that never accepts: the kernel completes the handshake, no
  // banner ever comes.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ProcResult r =
      RunCapture({smtpsend_, "-p", std::to_string(ntohs(a.sin_port)), "-n", "2",
                  "-s", "2", "--phase-timeout", "0.2", "--json"});
  close(fd);
  EXPECT_EQ(r.status, 1) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["messages"]["timeout"], 4);  // 2, and 2 retries
}

TEST_F(BareSocketTest, RefusesTargetsOutsideLoopback) {
  // Refused before any connection attempt is made.
  ProcResult r = RunCapture({smtpsend_, "-n", "1", "192.0.2.1"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("not loopback"), std::string::npos) << r.err;
}

TEST_F(BareSocketTest, NeedsCountOrDuration) {
  ProcResult r = RunCapture({smtpsend_});
  EXPECT_EQ(r.status, 2);
}

}  // namespace
}  // namespace sender_test

namespace sender_test {
namespace {

// Against spamsink itself: what smtpsend reports equals what the sink
// counted (read from its /metrics).
class SpamsinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    smtpsend_ = BuildPath("smtpsend");
    std::string spamsink = BuildPath("spamsink");
    if (smtpsend_.empty() || access(smtpsend_.c_str(), X_OK) != 0 ||
        access(spamsink.c_str(), X_OK) != 0)
      GTEST_SKIP() << "spamsink or smtpsend not built";
    char tmpl[] = "/tmp/smtpsend_spamsink.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    port_ = FreePort();
    api_port_ = FreePort();
    std::vector<std::string> argv = {spamsink,
                                     "--listen",
                                     "127.0.0.1:" + std::to_string(port_),
                                     "--db",
                                     dir_ + "/ledger.db",
                                     "--api-listen",
                                     "127.0.0.1:" + std::to_string(api_port_),
                                     "--server-max-connections-per-ip",
                                     "1000"};
    for (const auto& a : ExtraArgs()) argv.push_back(a);
    server_ = Spawn(argv);
    ASSERT_TRUE(WaitForPort(port_, 5000)) << "spamsink did not start";
    ASSERT_TRUE(WaitForPort(api_port_, 5000)) << "spamsink API did not start";
  }
  void TearDown() override {
    Stop(server_);
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  virtual std::vector<std::string> ExtraArgs() { return {}; }
  double Metric(const std::string& name) {
    return MetricValue(HttpGet(api_port_, "/metrics"), name);
  }
  // Polls a counter until it reaches want (the sink may count a session a
  // moment after the client has gone); bounded to two seconds.
  double AwaitMetric(const std::string& name, double want) {
    double v = -1;
    for (int i = 0; i < 100; ++i) {
      v = Metric(name);
      if (v >= want) break;
      usleep(20000);
    }
    return v;
  }

  std::string smtpsend_, dir_;
  int port_ = 0, api_port_ = 0;
  Child server_;
};

TEST_F(SpamsinkTest, JsonCountsEqualWhatSpamsinkCounted) {
  double before = Metric("spamsink_messages_accepted_total");
  ASSERT_GE(before, 0) << "no messages_accepted_total in /metrics";
  ProcResult r =
      RunCapture({smtpsend_, "-p", std::to_string(port_), "-s", "8", "-m", "10",
                  "-n", "200", "--recipients", "2", "--json"});
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  json j = json::parse(r.out);
  EXPECT_EQ(j["messages"]["accepted"], 200);
  EXPECT_EQ(AwaitMetric("spamsink_messages_accepted_total", before + 200),
            before + 200);
}

TEST_F(SpamsinkTest, BdatAndStartTls) {
  ProcResult r =
      RunCapture({smtpsend_, "-p", std::to_string(port_), "-s", "4", "-m", "5",
                  "-n", "40", "--bdat", "--starttls-share", "0.5", "--json"});
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  json j = json::parse(r.out);
  EXPECT_EQ(j["messages"]["accepted"], 40);
  EXPECT_GT(j["extras"]["starttls"].get<int>(), 0);
}

TEST_F(SpamsinkTest, Ipv4SmtpsendNAloneWorksAsTheOriginalReadme) {
  ProcResult r =
      RunCapture({smtpsend_, "-p", std::to_string(port_), "-n", "100"});
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("Sent 100 messages in "), std::string::npos) << r.out;
}

// A tarpit that holds every banner for a minute.
class SpamsinkTarpitTest : public SpamsinkTest {
 protected:
  std::vector<std::string> ExtraArgs() override {
    return {"--tarpit-enabled",      "true", "--tarpit-stutter",      "false",
            "--tarpit-greeting-min", "60",   "--tarpit-greeting-max", "60"};
  }
};

// SIGTERM stops the run: sessions still waiting on a slow server are cut
// short after a grace period, and the report is printed, instead of
// waiting out the greeting delay or --phase-timeout.
TEST_F(SpamsinkTarpitTest, SigtermCutsRunningSessionsShort) {
  double before = Metric("spamsink_tarpit_sessions_total");
  ASSERT_GE(before, 0) << "no tarpit_sessions_total in /metrics";
  std::string out_path = dir_ + "/smtpsend.out";
  std::string port = std::to_string(port_);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(smtpsend_.c_str(), smtpsend_.c_str(), "-p", port.c_str(), "-s", "3",
          "-n", "3", "--phase-timeout", "120", "--ignore-failures",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // (>=: the start-up probe's own session may be counted after `before`.)
  EXPECT_GE(AwaitMetric("spamsink_tarpit_sessions_total", before + 3),
            before + 3);
  kill(pid, SIGTERM);
  // Bounded: 30 s, against the 60 s greeting it would otherwise wait for.
  int status = -1;
  bool exited = false;
  for (int i = 0; i < 3000 && !exited; ++i) {
    exited = waitpid(pid, &status, WNOHANG) == pid;
    if (!exited) usleep(10000);
  }
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  ASSERT_TRUE(exited) << "smtpsend still running 30 s after SIGTERM";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::ifstream in(out_path);
  std::string out((std::istreambuf_iterator<char>(in)),
                  std::istreambuf_iterator<char>());
  EXPECT_NE(out.find("sessions: 3 (clean 0; failed: connect 0, timeout 3"),
            std::string::npos)
      << out;
}

class SpamsinkProxyTest : public SpamsinkTest {
 protected:
  std::vector<std::string> ExtraArgs() override {
    return {"--server-proxy-trusted", "127.0.0.0/8"};
  }
};

TEST_F(SpamsinkProxyTest, ProxyHeadersV1AndV2AreAccepted) {
  for (const char* v : {"v1", "v2"}) {
    ProcResult r = RunCapture({smtpsend_, "-p", std::to_string(port_), "-s",
                               "2", "-n", "10", "--proxy", v, "--proxy-clients",
                               "198.51.100.0/24", "--json"});
    ASSERT_EQ(r.status, 0) << v << r.err << r.out;
    EXPECT_EQ(json::parse(r.out)["messages"]["accepted"], 10) << v;
  }
  EXPECT_EQ(AwaitMetric("spamsink_proxy_headers_total", 20), 20);
}

}  // namespace
}  // namespace sender_test
