#include "net/trap_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <vector>

namespace net {
namespace {

// A loopback connection from `from` (127.0.0.0/8) to the site.
int Connect(int port, const char* from = "127.0.0.1") {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  inet_pton(AF_INET, from, &src.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
    close(fd);
    return -1;
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

size_t ContentLength(const std::string& reply) {
  size_t cl = reply.find("Content-Length: ");
  return cl == std::string::npos ? 0 : std::stoul(reply.substr(cl + 16));
}

// Reads until the headers and at least `min_body` bytes of body (all of it
// when min_body is npos) have come, the peer closes, or 5 s pass without a
// byte. *reads counts the recv calls that returned data.
std::string Read(int fd, size_t min_body = std::string::npos,
                 int* reads = nullptr) {
  std::string reply;
  char buf[8192];
  for (int i = 0; i < 10000; ++i) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    if (reads) ++*reads;
    reply.append(buf, size_t(n));
    size_t end = reply.find("\r\n\r\n");
    if (end == std::string::npos) continue;
    size_t want = std::min(min_body, ContentLength(reply));
    if (reply.size() >= end + 4 + want) break;
  }
  return reply;
}

// One raw request on a fresh loopback connection; the status code of the
// reply (0 if none came).
int Status(int port, const std::string& request, std::string* body = nullptr,
           const char* from = "127.0.0.1") {
  int fd = Connect(port, from);
  if (fd < 0) return 0;
  (void)send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string reply = Read(fd);
  close(fd);
  size_t end = reply.find("\r\n\r\n");
  if (body) *body = end == std::string::npos ? "" : reply.substr(end + 4);
  if (reply.compare(0, 9, "HTTP/1.1 ") != 0) return 0;
  return std::stoi(reply.substr(9, 3));
}

std::string Get(const std::string& target, const std::string& extra = "") {
  return "GET " + target +
         " HTTP/1.1\r\nHost: x\r\nUser-Agent: harvester/1.0\r\n"
         "Connection: close\r\n" +
         extra + "\r\n";
}

class TrapServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.listen = "127.0.0.1:0";
    options_.read_timeout = 1;  // bounds a request the server gives up on
    options_.domains = {"trap.example"};
    site_ = std::make_unique<traps::Site>(
        options_, traps::KeyRing::Parse({"1:the-site-secret-key"}).value(),
        traps::LoadWords("/nonexistent"));
  }
  void Start() {
    server_ = std::make_unique<TrapServer>(
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
  std::unique_ptr<TrapServer> server_;
  std::mutex mu_;
  std::vector<traps::Harvest> harvests_;
};

TEST_F(TrapServerTest, ServesPagesAndRecordsTheHarvest) {
  Start();
  int port = server_->port();
  std::string body;
  EXPECT_EQ(Status(port, Get("/robots.txt"), &body), 200);
  EXPECT_EQ(body, "User-agent: *\nDisallow: /people/\n");
  EXPECT_EQ(Status(port, Get("/people/some-page/?q=1"), &body), 200);
  EXPECT_NE(body.find("@trap.example"), std::string::npos);
  EXPECT_EQ(Status(port, "HEAD /people/x/ HTTP/1.0\r\n\r\n", &body), 200);
  EXPECT_EQ(body, "");
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(harvests_.size(), 2u);
  EXPECT_EQ(harvests_[0].ip, "127.0.0.1");
  EXPECT_EQ(harvests_[0].user_agent, "harvester/1.0");
  EXPECT_EQ(harvests_[0].page, "/people/some-page/");
  EXPECT_EQ(harvests_[0].time, clock_.WallSeconds());
}

TEST_F(TrapServerTest, HostileRequestsGetClearCodesAndNoHarvest) {
  Start();
  int port = server_->port();
  EXPECT_EQ(Status(port, Get("/people/../../etc/passwd")), 400);
  EXPECT_EQ(Status(port, Get("/people/%2e%2e/%2e%2e/etc/passwd")), 400);
  EXPECT_EQ(Status(port, Get("/people/%ff%fe/")), 400);
  EXPECT_EQ(Status(port, Get("/people/%00/")), 400);
  EXPECT_EQ(Status(port, Get("/etc/passwd")), 404);
  EXPECT_EQ(Status(port, "GET people HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(Status(port, "junk\r\n\r\n"), 400);
  // A request line, or all the headers, over 8 KiB.
  EXPECT_EQ(Status(port, Get("/people/" + std::string(9000, 'a') + "/")), 414);
  std::string huge = "X-Junk: " + std::string(9000, 'j') + "\r\n";
  EXPECT_EQ(Status(port, Get("/people/", huge)), 431);
  // A client that never finishes its request is dropped after read_timeout.
  EXPECT_EQ(Status(port, "GET /people/ HTTP/1.1\r\n"), 0);
  // A user agent is cut before it is recorded.
  std::string long_ua = "User-Agent: " + std::string(4000, 'u') + "\r\n";
  EXPECT_EQ(Status(port, "GET /people/x/ HTTP/1.1\r\nHost: x\r\n" + long_ua +
                             "Connection: close\r\n\r\n"),
            200);
  EXPECT_EQ(Status(port,
                   "POST /people/ HTTP/1.1\r\nHost: x\r\n"
                   "Content-Length: 0\r\nConnection: close\r\n\r\n"),
            405);
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(harvests_.size(), 1u);
  EXPECT_EQ(harvests_[0].user_agent.size(), kMaxTrapUserAgent);
}

TEST(ForwardedClient, TrustsOnlyTheConfiguredProxies) {
  auto ip = [](const char* t) { return base::IpAddress::Parse(t).value(); };
  std::vector<base::Cidr> trusted = {base::Cidr::Parse("10.0.0.0/8").value(),
                                     base::Cidr::Parse("::1").value()};
  // Not from a trusted proxy: the header is the client's word, ignored.
  EXPECT_EQ(ForwardedClient(ip("192.0.2.7"), "198.51.100.1", trusted),
            ip("192.0.2.7"));
  // From one: the rightmost address that is not a trusted proxy; what a
  // client wrote to the left of it is not believed.
  EXPECT_EQ(ForwardedClient(ip("10.1.1.1"), "6.6.6.6, 198.51.100.1", trusted),
            ip("198.51.100.1"));
  EXPECT_EQ(ForwardedClient(ip("10.1.1.1"), "198.51.100.1 , 10.2.2.2", trusted),
            ip("198.51.100.1"));
  EXPECT_EQ(ForwardedClient(ip("::1"), "2001:db8::5", trusted),
            ip("2001:db8::5"));
  // No header, a garbled one, or only proxies.
  EXPECT_EQ(ForwardedClient(ip("10.1.1.1"), "", trusted), ip("10.1.1.1"));
  EXPECT_EQ(ForwardedClient(ip("10.1.1.1"), "unknown", trusted),
            ip("10.1.1.1"));
  EXPECT_EQ(ForwardedClient(ip("10.1.1.1"), "10.3.3.3, 10.2.2.2", trusted),
            ip("10.3.3.3"));
  EXPECT_EQ(ForwardedClient(ip("10.1.1.1"), "198.51.100.1", {}),
            ip("10.1.1.1"));
}

TEST(TrickleSchedule, SpreadsTheBodyOverTheDelay) {
  EXPECT_TRUE(TrickleSchedule(0, 10).empty());
  auto s = TrickleSchedule(1000, 64);
  ASSERT_EQ(s.size(), size_t(kTrickleChunks));
  size_t next = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    EXPECT_EQ(s[i].offset, next);
    EXPECT_DOUBLE_EQ(s[i].at, 2.0 * double(i));
    next += s[i].size;
  }
  EXPECT_EQ(next, 1000u);
  EXPECT_EQ(s.back().size, 1000u - 31 * (1000 / 32));
  auto tiny = TrickleSchedule(3, 3);
  ASSERT_EQ(tiny.size(), 3u);
  EXPECT_DOUBLE_EQ(tiny[2].at, 2.0);
}

// A held client: its headers and first piece came, the rest is due in a
// minute.
int Hold(int port, const char* from, const std::string& extra = "") {
  int fd = Connect(port, from);
  std::string req = Get("/people/held/", extra);
  (void)send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string part = Read(fd, 1);
  size_t end = part.find("\r\n\r\n");
  EXPECT_NE(end, std::string::npos);
  EXPECT_LT(part.size() - end - 4, ContentLength(part)) << "not held";
  return fd;
}

TEST_F(TrapServerTest, SlowResponsesAreBoundedInTotal) {
  options_.page_delay = 60;
  options_.max_slow_clients = 1;
  options_.max_slow_per_client = 5;
  Start();
  int port = server_->port();
  int held = Hold(port, "127.0.0.1");
  EXPECT_EQ(server_->slow_clients(), 1);
  // Beyond the bound a page goes out at once, from any address (Read gives
  // up after 5 s without a byte, far less than the delay).
  std::string body;
  EXPECT_EQ(Status(port, Get("/people/a/"), &body, "127.0.0.2"), 200);
  EXPECT_NE(body.find("</html>"), std::string::npos);
  // robots.txt and errors are never slow.
  EXPECT_EQ(Status(port, Get("/robots.txt")), 200);
  close(held);
  server_->Stop();  // with a client still held: returns at once
}

TEST_F(TrapServerTest, SlowResponsesAreBoundedPerClient) {
  options_.page_delay = 60;
  options_.max_slow_clients = 10;
  options_.max_slow_per_client = 1;
  Start();
  int port = server_->port();
  int a = Hold(port, "127.0.0.1");
  std::string body;
  EXPECT_EQ(Status(port, Get("/people/a/"), &body, "127.0.0.1"), 200);
  EXPECT_NE(body.find("</html>"), std::string::npos);
  int b = Hold(port, "127.0.0.3");  // another client is still held
  EXPECT_EQ(server_->slow_clients(), 2);
  close(a);
  close(b);
}

TEST_F(TrapServerTest, ATrickledPageIsTheWholePage) {
  Start();
  std::string fast;
  ASSERT_EQ(Status(server_->port(), Get("/people/p/"), &fast), 200);
  server_.reset();
  options_.page_delay = 0.4;  // 32 pieces, 12.5 ms apart
  Start();
  int fd = Connect(server_->port());
  std::string req = Get("/people/p/");
  (void)send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  int reads = 0;
  std::string reply = Read(fd, std::string::npos, &reads);
  close(fd);
  EXPECT_EQ(reply.substr(reply.find("\r\n\r\n") + 4), fast);
  EXPECT_GE(reads, 8);  // pieces, not one write
}

TEST_F(TrapServerTest, XForwardedForOnlyFromTrustedProxies) {
  options_.trusted_proxies = {"127.0.0.2/32"};
  options_.page_delay = 60;
  options_.max_slow_per_client = 1;
  Start();
  int port = server_->port();
  auto xff = [](const char* ip) {
    return "X-Forwarded-For: " + std::string(ip) + "\r\n";
  };
  // Untrusted: the header is ignored (this client is held, per-client 1).
  int a = Hold(port, "127.0.0.1", xff("203.0.113.9"));
  // Behind the trusted proxy, two clients are two clients: both held.
  int b = Hold(port, "127.0.0.2", xff("203.0.113.9"));
  int c = Hold(port, "127.0.0.2", xff("6.6.6.6, 203.0.113.10"));
  EXPECT_EQ(server_->slow_clients(), 3);
  // The same client again through the proxy: its bound, a page at once.
  std::string body;
  EXPECT_EQ(
      Status(port, Get("/people/z/", xff("203.0.113.9")), &body, "127.0.0.2"),
      200);
  EXPECT_NE(body.find("</html>"), std::string::npos);
  close(a);
  close(b);
  close(c);
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(harvests_.size(), 4u);
  EXPECT_EQ(harvests_[0].ip, "127.0.0.1");
  EXPECT_EQ(harvests_[1].ip, "203.0.113.9");
  EXPECT_EQ(harvests_[2].ip, "203.0.113.10");
  EXPECT_EQ(harvests_[3].ip, "203.0.113.9");
}

// A figure of TrapSiteMetrics (-1 when there is none of that name).
double Figure(const std::string& name, const std::string& labels = "") {
  for (const auto& m : TrapSiteMetrics()) {
    if (m.name == name && m.labels == labels) return m.value;
  }
  return -1;
}

TEST_F(TrapServerTest, MetricsCountHeldServedSlowedAndRefusedClients) {
  const std::string kTotal = "bound=\"max_slow_clients\"";
  const std::string kPerClient = "bound=\"max_slow_per_client\"";
  const std::string kClients = "bound=\"max_clients\"";
  const double held0 = Figure("trap_slow_clients");
  const double served0 = Figure("trap_pages_served_total");
  const double slowed0 = Figure("trap_pages_slowed_total");
  const double total0 = Figure("trap_clients_refused_total", kTotal);
  const double per0 = Figure("trap_clients_refused_total", kPerClient);
  const double clients0 = Figure("trap_clients_refused_total", kClients);
  ASSERT_GE(held0, 0);
  ASSERT_GE(clients0, 0);

  // max_clients: two held, the third connection is closed at once.
  options_.page_delay = 60;
  options_.max_clients = 2;
  Start();
  int a = Hold(server_->port(), "127.0.0.1");
  int b = Hold(server_->port(), "127.0.0.2");
  EXPECT_EQ(Figure("trap_slow_clients"), held0 + 2);
  int c = Connect(server_->port(), "127.0.0.3");
  char byte;
  EXPECT_EQ(recv(c, &byte, 1, 0), 0);  // closed, not timed out
  EXPECT_EQ(Figure("trap_clients_refused_total", kClients), clients0 + 1);
  close(c);
  close(a);
  close(b);
  server_.reset();  // held ones end with the server: the gauge follows
  EXPECT_EQ(Figure("trap_slow_clients"), held0);

  // The slow bounds: per client, then in total; pages go out at once.
  options_.max_clients = 100;
  options_.max_slow_clients = 2;
  options_.max_slow_per_client = 1;
  Start();
  int port = server_->port();
  a = Hold(port, "127.0.0.1");
  EXPECT_EQ(Status(port, Get("/people/a/"), nullptr, "127.0.0.1"), 200);
  EXPECT_EQ(Figure("trap_clients_refused_total", kPerClient), per0 + 1);
  b = Hold(port, "127.0.0.2");
  EXPECT_EQ(Figure("trap_slow_clients"), held0 + 2);
  EXPECT_EQ(Status(port, Get("/people/b/"), nullptr, "127.0.0.3"), 200);
  EXPECT_EQ(Figure("trap_clients_refused_total", kTotal), total0 + 1);
  EXPECT_EQ(Status(port, Get("/robots.txt")), 200);  // not a page
  EXPECT_EQ(Figure("trap_pages_served_total"), served0 + 6);
  EXPECT_EQ(Figure("trap_pages_slowed_total"), slowed0 + 4);
  // As /metrics renders them.
  std::string text = base::RenderPrometheus(TrapSiteMetrics());
  EXPECT_NE(text.find("# TYPE spamsink_trap_slow_clients gauge\n"
                      "spamsink_trap_slow_clients " +
                      std::to_string(int(held0) + 2) + "\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("spamsink_trap_clients_refused_total{bound=\"max_"
                      "clients\"}"),
            std::string::npos);
  close(a);
  close(b);
}

// A PROXY v2 header for a TCP over IPv4 client (command 1 = PROXY, 0 = LOCAL).
std::string ProxyV2(const char* client, int command = 1) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h += char(0x20 | command);
  h += char(0x11);  // AF_INET, STREAM
  h += std::string("\0\x0c", 2);
  in_addr a{};
  inet_pton(AF_INET, client, &a);
  h.append(reinterpret_cast<const char*>(&a), 4);
  inet_pton(AF_INET, "127.0.0.1", &a);
  h.append(reinterpret_cast<const char*>(&a), 4);
  h += std::string("\x15\xb3\0\x50", 4);  // ports 5555 -> 80
  return h;
}

TEST_F(TrapServerTest, ProxyHeadersOnlyFromTrustedProxies) {
  options_.trusted_proxies = {"127.0.0.2/32"};
  Start();
  int port = server_->port();
  const char* kProxy = "127.0.0.2";
  const std::string kV1 = "PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n";
  const double refused0 =
      Figure("trap_clients_refused_total", "bound=\"proxy_header\"");
  // From the trusted proxy: the harvester is the header's client.
  EXPECT_EQ(Status(port, kV1 + Get("/people/v1/"), nullptr, kProxy), 200);
  EXPECT_EQ(Status(port, ProxyV2("203.0.113.8") + Get("/people/v2/"), nullptr,
                   kProxy),
            200);
  // LOCAL (the proxy's own health check) and no header at all: the proxy.
  EXPECT_EQ(Status(port, ProxyV2("203.0.113.9", 0) + Get("/people/l/"), nullptr,
                   kProxy),
            200);
  EXPECT_EQ(Status(port, Get("/people/n/"), nullptr, kProxy), 200);
  // From anyone else a header is not honoured: closed, nothing served.
  EXPECT_EQ(Status(port, kV1 + Get("/people/u1/"), nullptr, "127.0.0.1"), 0);
  EXPECT_EQ(Status(port, ProxyV2("203.0.113.8") + Get("/people/u2/"), nullptr,
                   "127.0.0.1"),
            0);
  // Malformed headers from the trusted proxy: closed.
  for (const std::string& bad :
       {std::string("PROXY TCP4 999.0.113.7 127.0.0.1 5555 80\r\n"),
        std::string("PROXY TCP4 203.0.113.7\r\n"),
        std::string("PROXY ") + std::string(200, 'x'),
        ProxyV2("203.0.113.8").replace(12, 1, "\x31")}) {  // version 3
    EXPECT_EQ(Status(port, bad + Get("/people/m/"), nullptr, kProxy), 0) << bad;
  }
  EXPECT_EQ(Figure("trap_clients_refused_total", "bound=\"proxy_header\""),
            refused0 + 6);
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(harvests_.size(), 4u);
  EXPECT_EQ(harvests_[0].ip, "203.0.113.7");
  EXPECT_EQ(harvests_[1].ip, "203.0.113.8");
  EXPECT_EQ(harvests_[2].ip, "127.0.0.2");
  EXPECT_EQ(harvests_[3].ip, "127.0.0.2");
}

}  // namespace
}  // namespace net
