// Loopback tests of the listener: real sockets on 127.0.0.1, an in-process
// server, a fake clock for timeouts (the sweeper runs on real time every few
// milliseconds but judges deadlines by the injected clock).
#include "net/server.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <mutex>
#include <thread>

#include "base/log.h"
#include "net/recording_sink_test_util.h"
#include "net/server_impl.h"
#include "net/tls.h"

namespace {
// The parts of the configuration the server takes (net/ does not include
// config/, which sits above it).
struct TestConfig {
  net::Options server;
  smtp::Options smtp;
  tarpit::Options tarpit;
  base::LogOptions log;
  int ipv6_prefix = 128;
};
}  // namespace

namespace net {
namespace {

using asio::ip::tcp;

class TestClock final : public base::Clock {
 public:
  base::SteadyTime Now() const override {
    return base::SteadyTime(base::Duration(now_.load()));
  }
  double WallSeconds() const override { return 1764111000; }
  void Advance(std::chrono::seconds s) {
    now_ += std::chrono::duration_cast<base::Duration>(s).count();
  }

 private:
  std::atomic<base::Duration::rep> now_{1};
};

using Sink = RecordingSink;

// The client's TLS handshake, blocking. The server runs in this process, so
// a blocking read of the test's own client can come back with EINTR (seen
// once under ASan with the io_uring executor: "handshake: Interrupted system
// call"); a client in another process never shares the server's process.
// The handshake is resumed then, a bounded number of times.
void Handshake(asio::ssl::stream<tcp::socket&>& tls) {
  asio::error_code ec;
  for (int i = 0; i < 10; ++i) {
    tls.handshake(asio::ssl::stream_base::client, ec);
    if (ec != asio::error::interrupted) break;
  }
  if (ec) throw asio::system_error(ec, "handshake");
}

// A blocking line client with a receive timeout, so no test can hang.
class Client {
 public:
  explicit Client(uint16_t port) : sock_(io_) {
    sock_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    timeval tv{5, 0};
    setsockopt(sock_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  void Send(std::string_view s) { asio::write(sock_, asio::buffer(s)); }
  // Reads one reply (all lines of a multi-line reply); "" on EOF/timeout.
  std::string Reply() {
    std::string reply;
    for (;;) {
      std::string line = Line();
      if (line.empty()) return reply;
      reply += line;
      if (line.size() < 4 || line[3] != '-') return reply;
    }
  }
  std::string Line() {
    for (;;) {
      auto e = buf_.find("\r\n");
      if (e != std::string::npos) {
        std::string line = buf_.substr(0, e + 2);
        buf_.erase(0, e + 2);
        return line;
      }
      // Bounded wait: asio's blocking read would ignore SO_RCVTIMEO.
      pollfd pfd{sock_.native_handle(), POLLIN, 0};
      if (poll(&pfd, 1, 5000) != 1) return "";
      char tmp[4096];
      asio::error_code ec;
      size_t n = sock_.read_some(asio::buffer(tmp), ec);
      if (ec) return "";
      buf_.append(tmp, n);
    }
  }
  tcp::socket& socket() { return sock_; }

 private:
  asio::io_context io_;
  tcp::socket sock_;
  std::string buf_;
};

// Every test runs on both executors. Where the kernel refuses io_uring, its
// half is skipped (and says why); CI's kernel allows it.
class ServerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "io_uring") {
      std::string why = ProbeUring();
      if (!why.empty()) GTEST_SKIP() << "io_uring unusable here: " << why;
    }
  }
  void Start(TestConfig cfg = {}, bool tls = false) {
    cfg.server.listen = {"127.0.0.1:0"};
    cfg.server.executor = GetParam();
    cfg.server.threads = 2;
    cfg.log.sessions = false;
    ServerParams p;
    p.server = cfg.server;
    p.smtp = cfg.smtp;
    p.tarpit = cfg.tarpit;
    p.log_sessions = cfg.log.sessions;
    p.ipv6_prefix = cfg.ipv6_prefix;
    std::shared_ptr<asio::ssl::context> ctx;
    if (tls) {
      auto c = MakeTlsContext("", "", "mx.test");
      ASSERT_TRUE(c.ok()) << c.error();
      ctx = *c;
    }
    auto o = smtp::MakeSessionOptions(cfg.smtp, "mx.test", ctx != nullptr);
    ASSERT_TRUE(o.ok());
    p.session = *o;
    p.tls = ctx;
    p.sink = &sink_;
    p.clock = &clock_;
    server_ = std::make_unique<Server>(std::move(p));
    ASSERT_TRUE(server_->Bind().ok());
    ASSERT_EQ(server_->executor(), GetParam());
    auto addr = server_->LocalAddresses().at(0);
    port_ = uint16_t(std::stoi(addr.substr(addr.rfind(':') + 1)));
    thread_ = std::thread([this] { server_->Run(); });
  }
  void TearDown() override {
    if (server_) server_->Stop();
    if (thread_.joinable()) thread_.join();
  }
  // Waits (bounded) until the sink holds n records.
  bool WaitRecords(size_t n) {
    for (int i = 0; i < 500; ++i) {
      if (sink_.records().size() >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  TestClock clock_;
  Sink sink_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  uint16_t port_ = 0;
};

TEST_P(ServerTest, DeliversAndRecords) {
  Start();
  Client c(port_);
  EXPECT_EQ(c.Reply(), "220 mx.test ESMTP Postfix (Debian/GNU)\r\n");
  c.Send("EHLO me\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n");
  EXPECT_EQ(c.Reply().substr(0, 4), "250-");
  EXPECT_EQ(c.Reply(), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(c.Reply(), "250 2.1.5 Ok\r\n");
  c.Send("DATA\r\n");
  EXPECT_EQ(c.Reply().substr(0, 4), "354 ");
  c.Send("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n");
  EXPECT_EQ(c.Reply().substr(0, 24), "250 2.0.0 Ok: queued as ");
  EXPECT_EQ(c.Reply(), "221 2.0.0 Bye\r\n");
  ASSERT_TRUE(WaitRecords(1));
  auto r = sink_.records()[0];
  EXPECT_EQ(r.client.ToString(), "127.0.0.1");
  EXPECT_EQ(r.messages, 1u);
  EXPECT_EQ(r.bytes, 20u);
  EXPECT_EQ(r.close_reason, peer::CloseReason::kQuit);
}

// Queue ids are random per instance: two servers at the same (fake) time,
// each with its first session, must not hand out the same id.
TEST_P(ServerTest, QueueIdsDifferBetweenInstances) {
  auto queue_id = [this] {
    Client c(port_);
    c.Reply();
    c.Send(
        "HELO me\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n"
        "DATA\r\nx\r\n.\r\n");
    std::string last;
    for (int i = 0; i < 5; ++i) last = c.Reply();
    EXPECT_EQ(last.substr(0, 24), "250 2.0.0 Ok: queued as ");
    return last;
  };
  Start();
  std::string a = queue_id();
  TearDown();
  Start();
  std::string b = queue_id();
  EXPECT_NE(a, b);
}

TEST_P(ServerTest, PerIpCap) {
  TestConfig cfg;
  cfg.server.max_connections_per_ip = 2;
  Start(cfg);
  Client a(port_), b(port_);
  EXPECT_EQ(a.Reply().substr(0, 4), "220 ");
  EXPECT_EQ(b.Reply().substr(0, 4), "220 ");
  Client c(port_);
  EXPECT_EQ(c.Reply(),
            "421 4.7.0 mx.test Error: too many connections from 127.0.0.1\r\n");
  EXPECT_EQ(c.Reply(), "");  // closed
}

// One host holds a whole IPv6 /64: the cap counts the network, so rotating
// addresses within it does not multiply the connections allowed (clients
// given by PROXY headers, the only way to have many IPv6 sources on
// loopback). Another /64 is a different client.
TEST_P(ServerTest, PerIpCapCountsAnIpv6NetworkAsOneClient) {
  TestConfig cfg;
  cfg.server.max_connections_per_ip = 2;
  cfg.server.proxy_trusted = {"127.0.0.0/8"};
  cfg.ipv6_prefix = 64;
  Start(cfg);
  auto from = [&](Client& c, const char* ip) {
    c.Send(std::string("PROXY TCP6 ") + ip + " 2001:db8:ffff::1 40000 25\r\n");
    return c.Reply();
  };
  Client a(port_), b(port_), c(port_), other(port_);
  EXPECT_EQ(from(a, "2001:db8:1:1::1").substr(0, 4), "220 ");
  EXPECT_EQ(from(b, "2001:db8:1:1::2").substr(0, 4), "220 ");
  EXPECT_EQ(from(c, "2001:db8:1:1:ffff::3").substr(0, 9), "421 4.7.0");
  EXPECT_EQ(from(other, "2001:db8:1:2::1").substr(0, 4), "220 ");
}

TEST_P(ServerTest, IdleAndSessionTimeouts) {
  TestConfig cfg;
  cfg.smtp.idle_timeout = 300;
  cfg.smtp.session_timeout = 600;
  Start(cfg);
  Client c(port_);
  EXPECT_EQ(c.Reply().substr(0, 4), "220 ");
  clock_.Advance(std::chrono::seconds(301));
  EXPECT_EQ(c.Reply(), "421 4.4.2 mx.test Error: timeout exceeded\r\n");
  EXPECT_EQ(c.Reply(), "");  // FIN: the server lingers for our close
  clock_.Advance(std::chrono::seconds(2));  // or for a second at most
  ASSERT_TRUE(WaitRecords(1));
  EXPECT_EQ(sink_.records()[0].close_reason, peer::CloseReason::kIdleTimeout);

  Client d(port_);
  EXPECT_EQ(d.Reply().substr(0, 4), "220 ");
  for (int i = 0; i < 4; ++i) {  // keep talking: never idle, but too long
    clock_.Advance(std::chrono::seconds(200));
    d.Send("NOOP\r\n");
    std::string r = d.Reply();
    if (r.starts_with("421")) break;
  }
  clock_.Advance(std::chrono::seconds(2));  // past the lingering close
  ASSERT_TRUE(WaitRecords(2));
  EXPECT_EQ(sink_.records()[1].close_reason,
            peer::CloseReason::kSessionTimeout);
}

TEST_P(ServerTest, ShutdownAnswers421) {
  Start();
  Client c(port_);
  EXPECT_EQ(c.Reply().substr(0, 4), "220 ");
  server_->Stop();
  EXPECT_EQ(c.Reply().substr(0, 9), "421 4.3.2");
  thread_.join();
  ASSERT_EQ(sink_.records().size(), 1u);
  EXPECT_EQ(sink_.records()[0].close_reason, peer::CloseReason::kShutdown);
}

TEST_P(ServerTest, ProxyProtocolFromTrustedNetwork) {
  TestConfig cfg;
  cfg.server.proxy_trusted = {"127.0.0.0/8"};
  Start(cfg);
  Client c(port_);
  c.Send("PROXY TCP4 203.0.113.50 127.0.0.1 40000 25\r\n");
  EXPECT_EQ(c.Reply().substr(0, 4), "220 ");
  c.Send("QUIT\r\n");
  EXPECT_EQ(c.Reply().substr(0, 4), "221 ");
  // Speaking in the same packet as the PROXY header, before our banner,
  // is early talk.
  Client eager(port_);
  eager.Send("PROXY TCP4 203.0.113.51 127.0.0.1 40001 25\r\nQUIT\r\n");
  EXPECT_EQ(eager.Reply().substr(0, 4), "220 ");
  EXPECT_EQ(eager.Reply().substr(0, 4), "221 ");
  Client bad(port_);
  bad.Send("EHLO no-proxy-header\r\n");
  EXPECT_EQ(bad.Reply(), "");  // closed without a banner
  ASSERT_TRUE(WaitRecords(3));
  auto recs = sink_.records();
  bool saw_proxied = false, saw_error = false, saw_early = false;
  for (const auto& r : recs) {
    if (r.client.ToString() == "203.0.113.51") saw_early = r.early_talker;
    if (r.client.ToString() == "203.0.113.50" && r.via_proxy) {
      saw_proxied = true;
      EXPECT_FALSE(r.early_talker);
    }
    if (r.close_reason == peer::CloseReason::kProxyError) saw_error = true;
  }
  EXPECT_TRUE(saw_proxied);
  EXPECT_TRUE(saw_error);
  EXPECT_TRUE(saw_early);
}

// Two instances must not share a certificate serial number (it was
// std::rand() unseeded: the same serial everywhere, a fingerprint).
TEST(Tls, SelfSignedSerialsDiffer) {
  auto serial = [] {
    auto ctx = MakeTlsContext("", "", "mx.test");
    EXPECT_TRUE(ctx.ok());
    X509* x = SSL_CTX_get0_certificate((*ctx)->native_handle());
    BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(x), nullptr);
    char* hex = BN_bn2hex(bn);
    std::string s(hex);
    OPENSSL_free(hex);
    BN_free(bn);
    return s;
  };
  std::string a = serial(), b = serial();
  EXPECT_NE(a, b);
  EXPECT_NE(a, "67C6697351FF4AEC29CDBAABF2FBE346");
  EXPECT_GE(a.size(), 30u);
}

TEST_P(ServerTest, StartTlsThenMail) {
  Start({}, /*tls=*/true);
  Client c(port_);
  EXPECT_EQ(c.Reply().substr(0, 4), "220 ");
  c.Send("EHLO me\r\n");
  EXPECT_NE(c.Reply().find("250-STARTTLS"), std::string::npos);
  // Pipelined plaintext after STARTTLS must be discarded (RFC 3207).
  c.Send("STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n");
  EXPECT_EQ(c.Reply(), "220 2.0.0 Ready to start TLS\r\n");
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.set_verify_mode(asio::ssl::verify_none);
  asio::ssl::stream<tcp::socket&> tls(c.socket(), ctx);
  Handshake(tls);
  auto roundtrip = [&](std::string_view cmd) {
    asio::write(tls, asio::buffer(cmd));
    std::string reply;
    char buf[2048];
    while (reply.size() < 4 || reply.substr(reply.size() - 2) != "\r\n" ||
           reply[reply.rfind("\r\n", reply.size() - 3) == std::string::npos
                     ? 3
                     : reply.rfind("\r\n", reply.size() - 3) + 5] == '-') {
      // A signal may interrupt the client's read (EINTR): read again.
      asio::error_code rec;
      size_t n = 0;
      do {
        n = tls.read_some(asio::buffer(buf), rec);
      } while (rec == asio::error::interrupted);
      if (rec) throw asio::system_error(rec);
      reply.append(buf, n);
    }
    return reply;
  };
  std::string ehlo = roundtrip("EHLO me\r\n");
  EXPECT_EQ(ehlo.find("STARTTLS"), std::string::npos);
  EXPECT_EQ(roundtrip("MAIL FROM:<a@b.example>\r\n"), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(roundtrip("QUIT\r\n"), "221 2.0.0 Bye\r\n");
  ASSERT_TRUE(WaitRecords(1));
  EXPECT_TRUE(sink_.records()[0].tls);
  EXPECT_EQ(sink_.records()[0].transactions, 1u);  // not the injected one
}

TestConfig ShortTarpit() {
  TestConfig cfg;
  cfg.tarpit.enabled = true;
  cfg.tarpit.greeting = {0.2, 0.2};
  for (auto* r : {&cfg.tarpit.helo, &cfg.tarpit.mail, &cfg.tarpit.rcpt,
                  &cfg.tarpit.data, &cfg.tarpit.reply}) {
    *r = {0.05, 0.05};
  }
  cfg.tarpit.data_end = {0.1, 0.1};
  cfg.tarpit.stutter_bytes = 8;
  cfg.tarpit.stutter_interval = 0.005;
  // Evidence escalates delays towards minutes; keep this test's short.
  cfg.tarpit.weight_early_talk = 0;
  return cfg;
}

// Delays are real timers here, so this measures them (short ones) rather
// than asserting on a fake clock: the policy's arithmetic is tested with a
// fake clock in tarpit_test.
TEST_P(ServerTest, TarpitDelaysAndStutters) {
  Start(ShortTarpit());
  auto t0 = std::chrono::steady_clock::now();
  Client c(port_);
  EXPECT_EQ(c.Reply(), "220 mx.test ESMTP Postfix (Debian/GNU)\r\n");
  auto banner = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(banner, std::chrono::milliseconds(200));
  c.Send("EHLO me\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n");
  EXPECT_EQ(c.Reply().substr(0, 4), "250-");
  EXPECT_EQ(c.Reply(), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(c.Reply(), "250 2.1.5 Ok\r\n");
  c.Send("DATA\r\n");
  EXPECT_EQ(c.Reply().substr(0, 4), "354 ");
  c.Send("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n");
  EXPECT_EQ(c.Reply().substr(0, 24), "250 2.0.0 Ok: queued as ");
  EXPECT_EQ(c.Reply(), "221 2.0.0 Bye\r\n");
  ASSERT_TRUE(WaitRecords(1));
  auto r = sink_.records()[0];
  EXPECT_TRUE(r.tarpitted);
  // greeting 0.2 + helo/mail/rcpt/data 4 x 0.05 + data_end 0.1 + QUIT 0.05
  EXPECT_GE(r.delay_seconds, 0.5);
  EXPECT_GE(r.replies_stuttered, 7u);
}

// A bot that says STARTTLS does not escape the tarpit: replies inside TLS
// are delayed and stuttered like plain ones (one machine paces both).
TEST_P(ServerTest, TarpitPacesInsideTls) {
  Start(ShortTarpit(), /*tls=*/true);
  Client c(port_);
  EXPECT_EQ(c.Reply().substr(0, 4), "220 ");
  c.Send("EHLO me\r\n");
  EXPECT_NE(c.Reply().find("250-STARTTLS"), std::string::npos);
  c.Send("STARTTLS\r\n");
  EXPECT_EQ(c.Reply(), "220 2.0.0 Ready to start TLS\r\n");
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.set_verify_mode(asio::ssl::verify_none);
  asio::ssl::stream<tcp::socket&> tls(c.socket(), ctx);
  Handshake(tls);
  auto t0 = std::chrono::steady_clock::now();
  asio::write(tls, asio::buffer(std::string_view(
                       "EHLO me\r\nMAIL FROM:<a@b.example>\r\nQUIT\r\n")));
  std::string got;
  char buf[2048];
  size_t reads = 0;
  asio::error_code ec;
  while (got.find("221 ") == std::string::npos && reads < 10000) {
    got.append(buf, tls.read_some(asio::buffer(buf), ec));
    ++reads;
    if (ec == asio::error::interrupted) continue;  // a signal: read again
    if (ec) break;
  }
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_NE(got.find("250 2.1.0 Ok\r\n"), std::string::npos) << got;
  // Three replies, 0.05 s each, stuttered 8 bytes at a time.
  EXPECT_GE(took, std::chrono::milliseconds(150));
  EXPECT_GT(reads, 10u);
  ASSERT_TRUE(WaitRecords(1));
  auto r = sink_.records()[0];
  EXPECT_TRUE(r.tls);
  EXPECT_TRUE(r.tarpitted);
  // greeting 0.2 + EHLO, STARTTLS 2 x 0.05 + inside TLS 3 x 0.05
  EXPECT_GE(r.delay_seconds, 0.45);
  EXPECT_GE(r.replies_stuttered, 6u);
}

// Shutdown reaches sessions that wait on the tarpit's timer (a greeting
// delay of a minute here): each is told 421 at once and its record is kept.
TEST_P(ServerTest, ShutdownEndsTarpitWaitsAndKeepsRecords) {
  auto cfg = ShortTarpit();
  cfg.tarpit.greeting = {60, 60};
  Start(cfg);
  Client a(port_), b(port_);
  for (int i = 0; i < 500 && server_->open_connections() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(server_->open_connections(), 2);
  server_->Stop();
  thread_.join();  // returns only once every session has ended
  ASSERT_EQ(sink_.records().size(), 2u);
  for (const auto& r : sink_.records()) {
    EXPECT_TRUE(r.tarpitted);
    EXPECT_EQ(r.close_reason, peer::CloseReason::kShutdown);
  }
  EXPECT_EQ(a.Reply().substr(0, 9), "421 4.3.2");  // in place of the banner
  EXPECT_EQ(b.Reply().substr(0, 9), "421 4.3.2");
}

// The same for a short wait (under kWatchPeerFrom: io_uring keeps it in
// the worker's own timer list, not the kernel's): the 421 comes at once,
// not when the 1.9 s greeting delay would have ended.
TEST_P(ServerTest, ShutdownEndsShortWaitsAtOnce) {
  auto cfg = ShortTarpit();
  cfg.tarpit.greeting = {1.9, 1.9};
  Start(cfg);
  auto t0 = std::chrono::steady_clock::now();
  Client a(port_);
  for (int i = 0; i < 150 && server_->open_connections() < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(server_->open_connections(), 1);
  server_->Stop();
  thread_.join();
  EXPECT_EQ(a.Reply().substr(0, 9), "421 4.3.2");
  EXPECT_LT(std::chrono::steady_clock::now() - t0,
            std::chrono::milliseconds(1800));
  ASSERT_EQ(sink_.records().size(), 1u);
  EXPECT_EQ(sink_.records()[0].close_reason, peer::CloseReason::kShutdown);
}

TEST_P(ServerTest, EarlyTalkerIsRefused) {
  Start(ShortTarpit());
  Client c(port_);
  c.Send("EHLO impatient.example\r\n");  // before the banner
  EXPECT_EQ(c.Reply(), "554 5.5.1 mx.test Error: protocol error\r\n");
  EXPECT_EQ(c.Reply(), "503 5.5.1 Error: protocol error\r\n");
  c.Send("QUIT\r\n");
  EXPECT_EQ(c.Reply(), "221 2.0.0 Bye\r\n");
  ASSERT_TRUE(WaitRecords(1));
  EXPECT_TRUE(sink_.records()[0].early_talker);
}

TEST_P(ServerTest, BindErrorNamesTheFix) {
  Start();
  TestConfig cfg;
  cfg.server.listen = {"127.0.0.1:" + std::to_string(port_)};
  cfg.server.threads = 1;
  // SO_REUSEPORT lets a second socket of the same user share the port, so
  // provoke "not available" with an address this host does not have.
  cfg.server.listen = {"192.0.2.1:2525"};
  ServerParams p;
  p.server = cfg.server;
  p.smtp = cfg.smtp;
  p.tarpit = cfg.tarpit;
  p.log_sessions = cfg.log.sessions;
  p.session = *smtp::MakeSessionOptions(cfg.smtp, "h", false);
  Server s(std::move(p));
  auto st = s.Bind();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("cannot listen on 192.0.2.1:2525"),
            std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Executors, ServerTest,
                         ::testing::Values("asio", "io_uring"),
                         [](const auto& info) {
                           return info.param == "asio" ? "Asio" : "Uring";
                         });

}  // namespace
}  // namespace net
