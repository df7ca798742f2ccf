// The spamsink binary's command line: listen addresses, the export and
// firewall subcommands. Each test runs build/spamsink as an operator would.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "app/cli_test_util.h"
#include "ledger/sqlite_store.h"
#include "ledger/test_util.h"

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

// Nothing but the SMTP listener: no API port, no database, no firewall,
// no STARTTLS (without a ledger the self-signed RSA key would be made at
// every start: about 2 s on a loaded machine, longer than some waits here).
const std::vector<std::string> kQuiet = {"--api-enabled",    "false",
                                         "--ledger-enabled", "false",
                                         "--smtp-starttls",  "false"};

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

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// A ledger database holding the given sources.
void MakeDb(const std::string& path, const std::vector<std::string>& ips) {
  auto store = ledger::OpenSqliteStore(path);
  ASSERT_TRUE(store.ok()) << store.error();
  std::vector<ledger::SourceRecord> records;
  for (const auto& ip : ips) {
    ledger::SourceRecord r;
    r.ip = ledger::testing::Ip(ip);
    r.first_seen = 1714521600;
    r.last_seen = 1714525200;
    r.connections = 1;
    r.messages = 1;
    records.push_back(r);
  }
  ASSERT_TRUE((*store)->Apply(records).ok());
}

// `spamsink export --config f.toml` used to ignore ledger.db_path and open
// spamsink.db in the working directory.
TEST_F(SpamsinkCli, ExportReadsTheDatabaseOfTheConfig) {
  ledger::testing::TempDir dir;
  MakeDb(dir.File("from-config.db"), {"192.0.2.1", "2001:db8::7"});
  MakeDb(dir.File("spamsink.db"), {"198.51.100.9"});  // the old default
  MakeDb(dir.File("from-flag.db"), {"203.0.113.5"});
  const std::string toml = dir.File("spamsink.toml");
  WriteFile(toml,
            "[ledger]\ndb_path = \"" + dir.File("from-config.db") + "\"\n");

  RunResult r = RunSpamsink({"export", "--config", toml, "--format", "plain"},
                            20, dir.path().string());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "192.0.2.1\n2001:db8::7\n");

  // The configuration given before the subcommand counts the same.
  r = RunSpamsink({"--config", toml, "export", "--format=plain"}, 20,
                  dir.path().string());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "192.0.2.1\n2001:db8::7\n");

  // --db (the flag of ledger.db_path) overrides the file.
  r = RunSpamsink({"export", "--config", toml, "--format", "plain", "--db",
                   dir.File("from-flag.db")},
                  20, dir.path().string());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "203.0.113.5\n");

  // Without a file: ledger.db_path's default, relative to the directory.
  r = RunSpamsink({"export", "--format", "plain", "--min-messages", "1"}, 20,
                  dir.path().string());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "198.51.100.9\n");

  // The file is checked like the server's: a bad value is an error.
  WriteFile(toml, "[ledger]\ndb_path = 5\n");
  r = RunSpamsink({"export", "--config", toml, "--format", "plain"});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr(toml + ":2: ledger.db_path: expected a string"));
  EXPECT_EQ(r.out, "");

  // The export's own options are still checked.
  r = RunSpamsink({"export", "--config", toml, "--colour", "x"});
  EXPECT_NE(r.status, 0);
}

TEST_F(SpamsinkCli, FirewallPrintIsTheDefaultAndDeleteRemoves) {
  const std::vector<std::string> settings = {"--tarpit-drop-percent",
                                             "20",
                                             "--tarpit-nft-table",
                                             "sink_test",
                                             "--listen",
                                             "192.0.2.1:smtp"};
  RunResult plain = RunSpamsink(With({"firewall"}, settings));
  EXPECT_EQ(plain.status, 0) << plain.err;
  EXPECT_THAT(plain.out, HasSubstr("table inet sink_test {\n"));
  EXPECT_THAT(plain.out, HasSubstr("ip daddr 192.0.2.1 tcp dport 25 "));
  RunResult print = RunSpamsink(With({"firewall", "--print"}, settings));
  EXPECT_EQ(print.status, 0) << print.err;
  EXPECT_EQ(print.out, plain.out);

  RunResult del = RunSpamsink(With({"firewall", "--delete"}, settings));
  EXPECT_EQ(del.status, 0) << del.err;
  EXPECT_EQ(del.out, "table inet sink_test {}\ndelete table inet sink_test\n");

  RunResult both =
      RunSpamsink(With({"firewall", "--print", "--delete"}, settings));
  EXPECT_NE(both.status, 0);
  EXPECT_EQ(both.out, "");
  EXPECT_THAT(both.err, HasSubstr("--delete"));

  // With nothing to drop, printing the add script is an error that says so.
  RunResult nothing = RunSpamsink({"firewall", "--print"});
  EXPECT_EQ(nothing.status, 1);
  EXPECT_THAT(nothing.err, HasSubstr("tarpit.drop_percent"));
}

TEST_F(SpamsinkCli, FirewallReadsTheConfigFile) {
  ledger::testing::TempDir dir;
  const std::string toml = dir.File("spamsink.toml");
  WriteFile(toml,
            "[server]\nlisten = [\"0.0.0.0:2525\"]\n"
            "[tarpit]\ndrop_percent = 5\nnft_table = \"from_file\"\n");
  RunResult r = RunSpamsink({"firewall", "--config", toml});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("table inet from_file {\n"));
  EXPECT_THAT(r.out, HasSubstr("meta nfproto ipv4 tcp dport 2525 "));
  EXPECT_THAT(r.out, HasSubstr("numgen random mod 10000 < 500 "));
}

// `spamsink firewall --delete` used to paste tarpit.nft_table into the
// script unchecked: "x {}\nflush ruleset" printed a script that empties
// every table of the host.
TEST_F(SpamsinkCli, FirewallRefusesAnInjectedTableName) {
  for (const char* table : {"x {}\nflush ruleset", "x; flush ruleset"}) {
    for (const char* action : {"--delete", "--print"}) {
      RunResult r = RunSpamsink({"firewall", action, "--tarpit-drop-percent",
                                 "10", "--tarpit-nft-table", table});
      EXPECT_EQ(r.status, 1) << action << " " << table;
      EXPECT_EQ(r.out, "") << action << " " << table;
      EXPECT_THAT(r.err,
                  HasSubstr(std::string("--tarpit-nft-table "
                                        "(tarpit.nft_table): nft table name "
                                        "\"") +
                            table + "\""));
    }
  }
  ledger::testing::TempDir dir;
  const std::string toml = dir.File("spamsink.toml");
  WriteFile(toml, "[tarpit]\nnft_table = \"t {}\\nflush ruleset\"\n");
  RunResult r = RunSpamsink({"firewall", "--delete", "--config", toml});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr(toml + ":2: tarpit.nft_table: nft table name"));
}

}  // namespace
}  // namespace app_test
