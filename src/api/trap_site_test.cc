#include "api/trap_site.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <vector>

namespace api {
namespace {

// One raw request on a fresh loopback connection; the status code of the
// reply (0 if none came).
int Status(int port, const std::string& request, std::string* body = nullptr) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return 0;
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string reply;
  char buf[8192];
  // Until the body is complete (cpp-httplib may keep a connection open for
  // a while after an error reply), or the peer closes.
  for (int i = 0; i < 1000; ++i) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    reply.append(buf, size_t(n));
    size_t end = reply.find("\r\n\r\n");
    size_t cl = reply.find("Content-Length: ");
    if (end != std::string::npos && cl != std::string::npos && cl < end &&
        reply.size() >= end + 4 + std::stoul(reply.substr(cl + 16))) {
      break;
    }
  }
  close(fd);
  if (body)
    *body = reply.substr(std::min(reply.size(), reply.find("\r\n\r\n") + 4));
  if (reply.compare(0, 9, "HTTP/1.1 ") != 0) return 0;
  return std::stoi(reply.substr(9, 3));
}

std::string Get(const std::string& target, const std::string& extra = "") {
  return "GET " + target +
         " HTTP/1.1\r\nHost: x\r\nUser-Agent: harvester/1.0\r\n"
         "Connection: close\r\n" +
         extra + "\r\n";
}

class TrapSiteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.listen = "127.0.0.1:0";
    options_.read_timeout = 1;  // bounds a request the server gives up on
    options_.domains = {"trap.example"};
    site_ = std::make_unique<traps::Site>(
        options_, traps::KeyRing::Parse({"1:the-site-secret-key"}).value(),
        traps::LoadWords("/nonexistent"));
    server_ = std::make_unique<TrapSite>(
        options_, site_.get(),
        [this](const traps::Harvest& h) {
          std::lock_guard<std::mutex> lock(mu_);
          harvests_.push_back(h);
        },
        &clock_);
    ASSERT_TRUE(server_->Start().ok());
  }
  traps::Options options_;
  base::FakeClock clock_;
  std::unique_ptr<traps::Site> site_;
  std::unique_ptr<TrapSite> server_;
  std::mutex mu_;
  std::vector<traps::Harvest> harvests_;
};

TEST_F(TrapSiteTest, ServesPagesAndRecordsTheHarvest) {
  int port = server_->port();
  std::string body;
  EXPECT_EQ(Status(port, Get("/robots.txt"), &body), 200);
  EXPECT_EQ(body, "User-agent: *\nDisallow: /people/\n");
  EXPECT_EQ(Status(port, Get("/people/some-page/"), &body), 200);
  EXPECT_NE(body.find("@trap.example"), std::string::npos);
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(harvests_.size(), 1u);
  EXPECT_EQ(harvests_[0].ip, "127.0.0.1");
  EXPECT_EQ(harvests_[0].user_agent, "harvester/1.0");
  EXPECT_EQ(harvests_[0].page, "/people/some-page/");
  EXPECT_EQ(harvests_[0].time, clock_.WallSeconds());
}

TEST_F(TrapSiteTest, HostileRequestsGetClearCodesAndNoHarvest) {
  int port = server_->port();
  EXPECT_EQ(Status(port, Get("/people/../../etc/passwd")), 400);
  EXPECT_EQ(Status(port, Get("/people/%2e%2e/%2e%2e/etc/passwd")), 400);
  EXPECT_EQ(Status(port, Get("/people/%ff%fe/")), 400);
  EXPECT_EQ(Status(port, Get("/people/%00/")), 400);
  EXPECT_EQ(Status(port, Get("/etc/passwd")), 404);
  // A request line or a header over cpp-httplib's 8 KiB line limit.
  EXPECT_EQ(Status(port, Get("/people/" + std::string(9000, 'a') + "/")), 414);
  std::string huge = "X-Junk: " + std::string(9000, 'j') + "\r\n";
  int s = Status(port, Get("/people/", huge));
  EXPECT_TRUE(s == 0 || s == 400) << s;
  // A user agent is cut before it is recorded.
  std::string long_ua = "User-Agent: " + std::string(4000, 'u') + "\r\n";
  EXPECT_EQ(Status(port, "GET /people/x/ HTTP/1.1\r\nHost: x\r\n" + long_ua +
                             "Connection: close\r\n\r\n"),
            200);
  EXPECT_EQ(Status(port,
                   "POST /people/ HTTP/1.1\r\nHost: x\r\n"
                   "Content-Length: 0\r\nConnection: close\r\n\r\n") /
                100,
            4);
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(harvests_.size(), 1u);
  EXPECT_EQ(harvests_[0].user_agent.size(), kMaxUserAgent);
}

}  // namespace
}  // namespace api
