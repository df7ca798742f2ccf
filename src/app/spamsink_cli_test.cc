// The spamsink binary's command line: listen addresses, the export and
// firewall subcommands. Each test runs build/spamsink as an operator would.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "app/cli_test_util.h"

namespace app_test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class SpamsinkCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string bin = SpamsinkPath();
    if (bin.empty() || access(bin.c_str(), X_OK) != 0) {
      GTEST_SKIP() << "SPAMSINK_BUILD_DIR/spamsink not built";
    }
  }
};

// Nothing but the SMTP listener: no API port, no database, no firewall.
const std::vector<std::string> kQuiet = {"--api-enabled", "false",
                                         "--ledger-enabled", "false"};

std::vector<std::string> With(std::vector<std::string> a,
                              const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

struct BadListen {
  const char* value;
  const char* reason;
};
// Each used to be accepted by --check-config: 65561 then listened on port
// 25 (65561 mod 65536), 97000 on port 31464, abc aborted with an uncaught
// std::invalid_argument.
const BadListen kBadListens[] = {
    {"127.0.0.1:65561", "port 65561 is out of range (0 to 65535)"},
    {"127.0.0.1:97000", "port 97000 is out of range (0 to 65535)"},
    {"127.0.0.1:abc",
     "port \"abc\" is neither a number nor a known service name"},
};

TEST_F(SpamsinkCli, BadListenPortsFailCheckConfig) {
  for (const auto& b : kBadListens) {
    RunResult r = RunSpamsink({"--listen", b.value, "--check-config"});
    EXPECT_EQ(r.status, 1) << b.value << "\n" << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr(std::string("--listen (server.listen): \"") +
                                 b.value + "\": " + b.reason));
    EXPECT_THAT(r.out, Not(HasSubstr("configuration OK")));
  }
}

TEST_F(SpamsinkCli, BadListenPortsFailAtStart) {
  for (const auto& b : kBadListens) {
    // 10 s: were it to start (the old behaviour) it is stopped, and fails
    // the status check below.
    RunResult r = RunSpamsink(With({"--listen", b.value}, kQuiet), 10);
    EXPECT_FALSE(r.signalled) << b.value << "\n" << r.err;
    EXPECT_EQ(r.status, 1) << b.value << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(std::string("--listen (server.listen): \"") +
                                 b.value + "\": " + b.reason));
    EXPECT_THAT(r.err, Not(HasSubstr("listening")));
  }
}

TEST_F(SpamsinkCli, BadListenInTheFileNamesFileLineAndKey) {
  char path[] = "/tmp/spamsink_cli_test_XXXXXX.toml";
  int fd = mkstemps(path, 5);
  ASSERT_GE(fd, 0);
  std::string text = "[server]\nlisten = [\"127.0.0.1:97000\"]\n";
  ASSERT_EQ(write(fd, text.data(), text.size()), ssize_t(text.size()));
  close(fd);
  RunResult r = RunSpamsink({"--config", path, "--check-config"});
  unlink(path);
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr(std::string(path) +
                               ":2: server.listen: \"127.0.0.1:97000\": port "
                               "97000 is out of range"));
}

// "127.0.0.1:smtp" used to abort at start (std::stoul threw). It is port 25:
// the server either listens there (as root, port free) or says why not.
TEST_F(SpamsinkCli, ListenServiceNameIsPort25) {
  RunResult check =
      RunSpamsink({"--listen", "127.0.0.1:smtp", "--check-config"});
  EXPECT_EQ(check.status, 0) << check.err;
  RunResult r = RunSpamsink(With({"--listen", "127.0.0.1:smtp"}, kQuiet), 1.5);
  EXPECT_FALSE(r.signalled) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("terminate")));
  if (r.err.find("event=listening") != std::string::npos) {
    EXPECT_THAT(r.err, HasSubstr("event=listening address=127.0.0.1:25\n"));
    EXPECT_EQ(r.status, 0) << r.err;  // stopped by SIGTERM
  } else {
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("cannot listen on 127.0.0.1:smtp"));
  }
}

}  // namespace
}  // namespace app_test
