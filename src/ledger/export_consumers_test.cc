// Exports fed to their real consumers: nft -c, postmap, rbldnsd + dig.
// A consumer that is missing (or needs privileges we lack) skips its test.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "ledger/export.h"
#include "ledger/test_util.h"

namespace ledger {
namespace {

using ::testing::HasSubstr;
using testing::Ip;
using ::testing::Not;
using testing::TempDir;

struct Output {
  int status = -1;
  std::string text;  // stdout and stderr
};

// Runs a shell command line built only from fixed words and test paths.
Output Shell(const std::string& cmd) {
  Output o;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return o;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) o.text.append(buf, n);
  int st = pclose(p);
  o.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return o;
}

bool Have(const std::string& tool) {
  return Shell("command -v " + tool).status == 0;
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

std::vector<SourceRecord> Records() {
  std::vector<SourceRecord> out;
  auto add = [&](const std::string& ip, uint64_t messages) {
    SourceRecord r;
    r.ip = Ip(ip);
    r.first_seen = 1714521600;
    r.last_seen = 1714525200;
    r.connections = 1;
    r.messages = messages;
    out.push_back(r);
  };
  add("192.0.2.1", 3);
  add("192.0.2.2", 1);
  add("192.0.2.3", 1);
  add("198.51.100.77", 9);
  add("127.0.0.2", 1);  // the RFC 5782 test point
  add("2001:db8::1", 2);
  add("2001:db8:0:1::5", 4);
  for (int i = 0; i < 300; ++i) {
    add("10.1." + std::to_string(i / 200) + "." + std::to_string(i % 200), 1);
  }
  return out;
}

ExportOptions Opts(Format f) {
  ExportOptions o;
  o.format = f;
  o.now = 1714528800;
  return o;
}

TEST(Consumers, NftAcceptsTheSetScript) {
  if (!Have("nft")) GTEST_SKIP() << "nft not installed (Debian: nftables)";
  TempDir dir;
  std::string bad = dir.File("bad.nft");
  Write(bad,
        "table inet spamsink { set s { type ipv4_addr; } }\n"
        "add element inet spamsink s { 300.1.1.1 }\n");
  Output b = Shell("nft -c -f " + bad);
  if (b.text.find("Operation not permitted") != std::string::npos) {
    GTEST_SKIP() << "nft -c needs CAP_NET_ADMIN here: " << b.text;
  }
  ASSERT_NE(b.status, 0) << "nft -c accepted a bad address: the check is void";
  for (int v4_prefix : {32, 24}) {
    auto o = Opts(Format::kNftables);
    o.v4_prefix = v4_prefix;
    std::string file = dir.File("sources.nft");
    Write(file, Export(Records(), o));
    Output r = Shell("nft -c -f " + file);
    EXPECT_EQ(r.status, 0) << r.text << "\n" << Export(Records(), o);
  }
  // An empty export is a valid script too.
  std::string empty = dir.File("empty.nft");
  Write(empty, Export({}, Opts(Format::kNftables)));
  Output r = Shell("nft -c -f " + empty);
  EXPECT_EQ(r.status, 0) << r.text;
}

TEST(Consumers, PostmapAnswersFromTheCidrMap) {
  if (!Have("postmap"))
    GTEST_SKIP() << "postmap not installed (Debian: postfix)";
  TempDir dir;
  Write(dir.File("main.cf"), "");  // postmap wants a config directory
  std::string map = dir.File("spamsink.cidr");
  auto o = Opts(Format::kPostfix);
  Write(map, Export(Records(), o));
  auto query = [&](const std::string& ip) {
    return Shell("postmap -c " + dir.path().string() + " -q " + ip +
                 " cidr:" + map);
  };
  Output r = query("198.51.100.77");
  EXPECT_EQ(r.status, 0) << r.text;
  EXPECT_THAT(r.text, HasSubstr("REJECT spamsink: 9 messages"));
  EXPECT_THAT(r.text, Not(HasSubstr("warning")));
  r = query("2001:db8:0:1::5");
  EXPECT_EQ(r.status, 0) << r.text;
  EXPECT_THAT(r.text, HasSubstr("REJECT spamsink: 4 messages"));
  r = query("192.0.2.9");
  EXPECT_EQ(r.status, 1) << r.text;  // not listed
  EXPECT_THAT(r.text, Not(HasSubstr("warning")));

  // Widened networks must have clean host bits (postmap warns otherwise).
  o.v4_prefix = 24;
  o.v6_prefix = 64;
  Write(map, Export(Records(), o));
  r = query("192.0.2.200");
  EXPECT_EQ(r.status, 0) << r.text;
  EXPECT_THAT(r.text, HasSubstr("from 3 addresses"));
  EXPECT_THAT(r.text, Not(HasSubstr("warning")));
}

int FreeUdpPort() {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// rbldnsd serving one zone from dir, stopped (by its pid) on destruction.
class Rbldnsd {
 public:
  Rbldnsd(const std::string& dir, const std::string& zone_spec) {
    port_ = FreeUdpPort();
    std::string bind = "127.0.0.1/" + std::to_string(port_);
    std::string log = dir + "/rbldnsd.log";
    pid_ = fork();
    if (pid_ == 0) {
      if (freopen(log.c_str(), "w", stderr) == nullptr ||
          freopen(log.c_str(), "a", stdout) == nullptr) {
        _exit(126);
      }
      execlp("rbldnsd", "rbldnsd", "-n", "-q", "-b", bind.c_str(), "-w",
             dir.c_str(), zone_spec.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~Rbldnsd() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  // dig +short for name/type, retried while rbldnsd starts (bounded).
  Output Dig(const std::string& name, const std::string& type,
             bool expect_answer) {
    Output r;
    for (int i = 0; i < 40; ++i) {
      r = Shell("dig @127.0.0.1 -p " + std::to_string(port_) +
                " +tries=1 +time=1 " + name + " " + type);
      bool answered = r.text.find("status:") != std::string::npos;
      if (answered &&
          (!expect_answer || r.text.find("ANSWER: 0") == std::string::npos)) {
        return r;
      }
      usleep(50 * 1000);  // waiting for the server to load, not a test delay
    }
    return r;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

TEST(Consumers, RbldnsdAnswersForListedAddresses) {
  if (!Have("rbldnsd") || !Have("dig")) {
    GTEST_SKIP() << "rbldnsd or dig missing (Debian: rbldnsd, dnsutils)";
  }
  TempDir dir;
  std::filesystem::permissions(dir.path(), std::filesystem::perms::all);
  Write(dir.File("bl.zone"), Export(Records(), Opts(Format::kRbldnsd)));
  std::filesystem::permissions(dir.File("bl.zone"),
                               std::filesystem::perms::owner_read |
                                   std::filesystem::perms::group_read |
                                   std::filesystem::perms::others_read);
  Rbldnsd server(dir.path().string(), "bl.test:combined:bl.zone");

  Output r = server.Dig("77.100.51.198.bl.test", "TXT", true);
  EXPECT_THAT(r.text, HasSubstr("status: NOERROR")) << r.text;
  EXPECT_THAT(r.text, HasSubstr("\"spamsink: 9 messages, 1 connections"));
  r = server.Dig("77.100.51.198.bl.test", "A", true);
  EXPECT_THAT(r.text, HasSubstr("127.0.0.2")) << r.text;
  // RFC 5782 test points: 127.0.0.2 listed, 127.0.0.1 not.
  r = server.Dig("2.0.0.127.bl.test", "A", true);
  EXPECT_THAT(r.text, HasSubstr("127.0.0.2")) << r.text;
  r = server.Dig("1.0.0.127.bl.test", "A", false);
  EXPECT_THAT(r.text, HasSubstr("status: NXDOMAIN")) << r.text;
  // IPv6: 2001:db8:0:1::5 reversed by nibbles.
  r = server.Dig(
      "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test",
      "TXT", true);
  EXPECT_THAT(r.text, HasSubstr("\"spamsink: 4 messages")) << r.text;
  r = server.Dig("bl.test", "SOA", true);
  EXPECT_THAT(r.text, HasSubstr("hostmaster.localhost.")) << r.text;
}

TEST(Consumers, RbldnsdLoadsTheSingleFamilyDatasets) {
  if (!Have("rbldnsd") || !Have("dig")) {
    GTEST_SKIP() << "rbldnsd or dig missing (Debian: rbldnsd, dnsutils)";
  }
  TempDir dir;
  std::filesystem::permissions(dir.path(), std::filesystem::perms::all);
  Write(dir.File("v4"), Export(Records(), Opts(Format::kRbldnsdIp4set)));
  Write(dir.File("v6"), Export(Records(), Opts(Format::kRbldnsdIp6trie)));
  Rbldnsd server(dir.path().string(), "bl.test:ip4set:v4");
  Rbldnsd server6(dir.path().string(), "bl6.test:ip6trie:v6");
  Output r = server.Dig("3.2.0.192.bl.test", "A", true);
  EXPECT_THAT(r.text, HasSubstr("127.0.0.2")) << r.text;
  r = server6.Dig(
      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl6."
      "test",
      "A", true);
  EXPECT_THAT(r.text, HasSubstr("127.0.0.2")) << r.text;
}

}  // namespace
}  // namespace ledger
