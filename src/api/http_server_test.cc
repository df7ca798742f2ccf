#include "api/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ledger/test_util.h"

namespace api {
namespace {

// Writes `request` to 127.0.0.1:port and returns what the server sent
// before it closed or `seconds` passed (the socket never half-closes, so
// a server waiting for more of the request gets nothing more).
std::string RawExchange(int port, const std::string& request, int seconds) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  timeval tv{seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          ssize_t(request.size())) {
    char buf[4096];
    for (int i = 0; i < 64; ++i) {  // bounded: 256 KB at most
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, n);
    }
  }
  close(fd);
  return out;
}

// api.listen is read by base::Endpoint; a bad value is an error naming the
// setting and the value, never an exception (std::stoi used to throw).
TEST(HttpServer, BadListenIsAnErrorNamingTheSetting) {
  for (const char* bad : {"127.0.0.1", "::1:80", "127.0.0.1:99999", ":80",
                          "127.0.0.1:abc", "127.0.0.1:99999999999999999999"}) {
    Options c;
    c.listen = bad;
    HttpServer s(c, nullptr);
    auto st = s.Start();
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.message().rfind("api.listen: \"" + std::string(bad) + "\"", 0),
              0u)
        << st.message();
  }
}

TEST(HttpServer, RefusesPublicAddressWithoutToken) {
  Options c;
  c.listen = "0.0.0.0:0";
  HttpServer s(c, nullptr);
  auto st = s.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("token"), std::string::npos) << st.message();
  c.listen = "[::]:0";
  HttpServer s6(c, nullptr);
  EXPECT_FALSE(s6.Start().ok());
  c.listen = "example.com:80";
  HttpServer s7(c, nullptr);
  EXPECT_FALSE(s7.Start().ok());
}

TEST(HttpServer, ServesOverLoopback) {
  base::FakeClock clock;
  auto l = ledger::Ledger::Create(ledger::NewMemoryStore(), {}, &clock, false);
  l->Record(ledger::testing::Session("192.0.2.44", 3, 300));
  ASSERT_TRUE(l->Flush().ok());
  Options c;
  c.listen = "127.0.0.1:0";
  c.token = "tok";
  HttpServer s(c, l.get());
  ASSERT_TRUE(s.Start().ok());
  ASSERT_GT(s.port(), 0);
  httplib::Client cli("127.0.0.1", s.port());
  cli.set_connection_timeout(5, 0);
  auto r = cli.Get("/healthz");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  r = cli.Get("/api/v1/sources/192.0.2.44");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  httplib::Headers auth = {{"Authorization", "Bearer tok"}};
  r = cli.Get("/api/v1/sources/192.0.2.44", auth);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(nlohmann::json::parse(r->body)["messages"], 3);
  r = cli.Get("/api/v1/sources?cidr=192.0.2.0%2F24&sort=bytes", auth);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(nlohmann::json::parse(r->body)["total"], 1);
  r = cli.Get("/api/v1/export?format=plain", auth);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "192.0.2.44\n");
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; charset=utf-8");
  // Streamed, never held whole in memory (the security review saw one
  // export raise the peak by 160 MB).
  EXPECT_EQ(r->get_header_value("Transfer-Encoding"), "chunked");
  r = cli.Post("/api/v1/sources", auth, "", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  s.Stop();
  EXPECT_FALSE(cli.Get("/healthz"));
}

// A write without a body (curl -X POST) is answered at once with 405 and
// the methods that work; httplib alone waited for a body until its read
// timeout and then sent an empty 400. HEAD answers every GET endpoint.
TEST(HttpServer, BodilessWritesAre405AndHeadWorksEverywhere) {
  base::FakeClock clock;
  auto l = ledger::Ledger::Create(ledger::NewMemoryStore(), {}, &clock, false);
  l->Record(ledger::testing::Session("192.0.2.44", 3, 300));
  ASSERT_TRUE(l->Flush().ok());
  Options c;
  c.listen = "127.0.0.1:0";
  c.token = "tok";
  HttpServer s(c, l.get());
  ASSERT_TRUE(s.Start().ok());
  for (const char* method : {"POST", "PUT", "DELETE", "PATCH"}) {
    std::string reply = RawExchange(
        s.port(),
        std::string(method) +
            " /api/v1/sources HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Authorization: Bearer tok\r\nConnection: close\r\n\r\n",
        3);
    EXPECT_EQ(reply.rfind("HTTP/1.1 405", 0), 0u) << method << ": " << reply;
    EXPECT_NE(reply.find("Allow: GET, HEAD\r\n"), std::string::npos) << reply;
  }
  // The token is still checked first, and an unknown path is still 404.
  std::string reply =
      RawExchange(s.port(),
                  "POST /api/v1/sources HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "Connection: close\r\n\r\n",
                  3);
  EXPECT_EQ(reply.rfind("HTTP/1.1 401", 0), 0u) << reply;
  reply = RawExchange(s.port(),
                      "DELETE /nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Connection: close\r\n\r\n",
                      3);
  EXPECT_EQ(reply.rfind("HTTP/1.1 404", 0), 0u) << reply;

  httplib::Client cli("127.0.0.1", s.port());
  cli.set_connection_timeout(5, 0);
  httplib::Headers auth = {{"Authorization", "Bearer tok"}};
  // With a body: read, then 405, and the connection stays usable.
  auto r = cli.Post("/api/v1/stats", auth, "{\"a\":1}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->get_header_value("Allow"), "GET, HEAD");
  for (const char* path :
       {"/healthz", "/metrics", "/api/v1/sources", "/api/v1/sources/192.0.2.44",
        "/api/v1/stats", "/api/v1/cost", "/api/v1/export?format=plain"}) {
    r = cli.Head(path, auth);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_EQ(r->body, "") << path;
    auto get = cli.Get(path, auth);
    ASSERT_TRUE(get) << path;
    EXPECT_EQ(r->get_header_value("Content-Type"),
              get->get_header_value("Content-Type"))
        << path;
  }
}

TEST(HttpServer, BusyPortIsAnError) {
  Options c;
  c.listen = "127.0.0.1:0";
  HttpServer a(c, nullptr);
  ASSERT_TRUE(a.Start().ok());
  c.listen = "127.0.0.1:" + std::to_string(a.port());
  HttpServer b(c, nullptr);
  EXPECT_FALSE(b.Start().ok());
}

// Runs a shell command line: its output (stdout and stderr), and its exit
// status in *status.
std::string Shell(const std::string& command, int* status) {
  std::string out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) {
    *status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

// api.tls_cert / api.tls_key: the API speaks HTTPS only; a real client
// (curl) verifies the certificate made by the openssl command.
TEST(HttpServer, ServesHttpsWithTheGivenCertificate) {
  ledger::testing::TempDir dir;
  const std::string cert = dir.File("api.crt"), key = dir.File("api.key");
  int status = 0;
  std::string made = Shell(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
      "-nodes -days 2 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
          key + " -out " + cert,
      &status);
  ASSERT_EQ(status, 0) << made;
  Options c;
  c.listen = "127.0.0.1:0";
  c.tls_cert = cert;
  c.tls_key = key;
  HttpServer s(c, nullptr);
  auto started = s.Start();
  ASSERT_TRUE(started.ok()) << started.message();
  const std::string url =
      "https://127.0.0.1:" + std::to_string(s.port()) + "/healthz";
  std::string out =
      Shell("curl -sS --max-time 10 --cacert " + cert +
                " -w ' http=%{http_code} verify=%{ssl_verify_result}'"
                " " +
                url,
            &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("\"status\": \"ok\""), std::string::npos) << out;
  EXPECT_NE(out.find(" http=200 verify=0"), std::string::npos) << out;
  // TLS 1.1 is refused by the server even to a client that allows it
  // (OpenSSL 3 allows it only at security level 0); TLS 1.2 is served.
  const std::string connect =
      "openssl s_client -connect 127.0.0.1:" + std::to_string(s.port()) +
      " -CAfile " + cert + " -verify_return_error </dev/null ";
  out = Shell(connect + "-tls1_1 -cipher DEFAULT@SECLEVEL=0", &status);
  EXPECT_NE(status, 0) << out;
  out = Shell(connect + "-tls1_2", &status);
  EXPECT_EQ(status, 0) << out;
  // Without the certificate to trust, the client refuses the server.
  out = Shell("curl -sS --max-time 10 " + url, &status);
  EXPECT_NE(status, 0) << out;
  // Plain HTTP on the TLS port gets no HTTP answer.
  std::string plain = RawExchange(s.port(), "GET /healthz HTTP/1.0\r\n\r\n", 5);
  EXPECT_EQ(plain.find("HTTP/1."), std::string::npos) << plain;
  // And the server still answers over TLS after that.
  out = Shell("curl -sS --max-time 10 --cacert " + cert + " " + url, &status);
  EXPECT_EQ(status, 0) << out;
}

// What is wrong with the TLS settings stops the start, naming the setting.
TEST(HttpServer, TlsSettingsAreCheckedAtStart) {
  ledger::testing::TempDir dir;
  const std::string junk = dir.File("junk.pem");
  std::ofstream(junk) << "not a certificate\n";
  struct Case {
    std::string cert, key, want;
  } cases[] = {
      {junk, "", "api.tls_cert and api.tls_key must be given together"},
      {dir.File("missing.crt"), junk,
       "api.tls_cert: \"" + dir.File("missing.crt") + "\": "},
      {junk, junk, "api.tls_cert / api.tls_key: not a PEM certificate"},
  };
  for (const auto& k : cases) {
    Options c;
    c.listen = "127.0.0.1:0";
    c.tls_cert = k.cert;
    c.tls_key = k.key;
    HttpServer s(c, nullptr);
    auto st = s.Start();
    ASSERT_FALSE(st.ok()) << k.want;
    EXPECT_EQ(st.message().rfind(k.want, 0), 0u) << st.message();
  }
}

}  // namespace
}  // namespace api
