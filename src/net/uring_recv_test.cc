// The io_uring executor's receive path: one multishot receive serves a
// connection's commands, and input that arrives while the connection's
// machine is not reading (a client that sends but never reads our
// replies) neither pins a provided buffer nor piles up in memory.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "base/metrics.h"
#include "net/server.h"
#include "net/server_impl.h"
#include "net/uring_impl.h"

namespace net {
namespace {

ServerParams Params() {
  ServerParams p;
  p.server.listen = {"127.0.0.1:0"};
  p.server.threads = 1;
  p.server.executor = "io_uring";
  p.log_sessions = false;
  p.smtp.max_junk_commands = 1 << 30;
  p.smtp.max_commands = 1 << 30;
  p.session = *smtp::MakeSessionOptions(p.smtp, "mx.test", false);
  return p;
}

struct Running {
  Server& server;
  std::thread thread;
  ~Running() {
    server.Stop();
    if (thread.joinable()) thread.join();
  }
};

uint16_t PortOf(Server& s) {
  auto a = s.LocalAddresses().at(0);
  return uint16_t(std::stoi(a.substr(a.rfind(':') + 1)));
}

int Dial(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

// Reads until the text holds `lines` CRLFs (or 5 s pass); the text.
std::string ReadLines(int fd, size_t lines) {
  std::string got;
  size_t seen = 0;
  for (int i = 0; i < 100000 && seen < lines; ++i) {
    char b[65536];
    ssize_t n = recv(fd, b, sizeof b, 0);
    if (n <= 0) break;
    for (ssize_t j = 0; j < n; ++j) seen += b[j] == '\n';
    got.append(b, size_t(n));
  }
  return got;
}

void SendAll(int fd, const std::string& s) {
  ASSERT_EQ(send(fd, s.data(), s.size(), MSG_NOSIGNAL), ssize_t(s.size()));
}

// A connection that talks command by command (each reply read before the
// next command) is served by one multishot receive, not one per command.
TEST(UringRecv, OneMultishotReceiveServesSeveralCommands) {
  if (!ProbeUring().empty()) GTEST_SKIP() << ProbeUring();
  Server server(Params());
  ASSERT_TRUE(server.Bind().ok());
  Running run{server, std::thread([&] { server.Run(); })};
  uint64_t armed0 = base::CounterTotal(base::Counter::kUringMultishotArmed);
  int fd = Dial(PortOf(server));
  EXPECT_EQ(ReadLines(fd, 1).substr(0, 4), "220 ");
  SendAll(fd, "EHLO client.test\r\n");
  EXPECT_NE(ReadLines(fd, 1).find("250"), std::string::npos);
  for (int i = 0; i < 8; ++i) {
    SendAll(fd, "NOOP\r\n");
    EXPECT_EQ(ReadLines(fd, 1).substr(0, 4), "250 ") << i;
  }
  SendAll(fd, "QUIT\r\n");
  EXPECT_EQ(ReadLines(fd, 1).substr(0, 4), "221 ");
  close(fd);
  EXPECT_EQ(base::CounterTotal(base::Counter::kUringMultishotArmed) - armed0,
            1u);
}

// A client pipelines NOOPs and never reads: the server's replies fill the
// socket and its send waits, so its machine stops reading. What the
// multishot receive brought meanwhile is copied aside (the buffers go back
// at once) and the receive ends, so the rest stays in the kernel's socket
// buffer: the bytes held stay under the pool's size although the client
// wrote many times more. Then the client reads: every NOOP is answered,
// none lost. (Fails if the receive went on while the machine waited.)
TEST(UringRecv, AClientThatDoesNotReadPinsNoBuffer) {
  if (!ProbeUring().empty()) GTEST_SKIP() << ProbeUring();
  Server server(Params());
  ASSERT_TRUE(server.Bind().ok());
  Running run{server, std::thread([&] { server.Run(); })};
  uint64_t held0 = base::CounterTotal(base::Counter::kUringRecvHeld);
  int fd = Dial(PortOf(server));
  EXPECT_EQ(ReadLines(fd, 1).substr(0, 4), "220 ");
  SendAll(fd, "EHLO client.test\r\n");
  EXPECT_NE(ReadLines(fd, 1).find("250 "), std::string::npos);

  std::string chunk;
  for (int i = 0; i < 4096; ++i) chunk += "NOOP\r\n";
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  size_t sent = 0;  // bytes; up to 256 MiB, until the client must wait
  int64_t most_held = 0;
  while (sent < (size_t(256) << 20)) {
    ssize_t n = send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n > 0) {
      sent += size_t(n);
      if (size_t(n) < chunk.size())
        chunk = chunk.substr(n) + chunk.substr(0, n);
    } else {
      ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << errno;
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, 500) == 0) break;  // the server stopped taking input
    }
    most_held = std::max(most_held, g_uring_held_bytes.load());
  }
  EXPECT_LT(sent, size_t(256) << 20) << "the server never stopped reading";
  // (Whether the multishot receive brought input while the send waited,
  // or the connection had gone over to single receives as bulk input,
  // depends on the timing: either way nothing may pile up.)
  RecordProperty(
      "held_events",
      int(base::CounterTotal(base::Counter::kUringRecvHeld) - held0));
  // The kernel fills buffers as input arrives until the end is seen: what
  // it brought in one loop turn (at most the small pool) is held, no more.
  constexpr int64_t kPool = int64_t(kBuffers * kBufferSize);
  EXPECT_LE(most_held, kPool);
  EXPECT_LE(g_uring_held_bytes.load(), kPool);
  EXPECT_GT(sent, size_t(2 * kPool));

  // (The rotation after a partial send keeps the stream whole: sent / 6
  // complete NOOPs, the last one perhaps cut.)
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  size_t noops = sent / 6;
  std::string replies = ReadLines(fd, noops);
  size_t lines = 0;
  for (char c : replies) lines += c == '\n';
  EXPECT_EQ(lines, noops);
  EXPECT_EQ(replies.substr(0, 4), "250 ");
  close(fd);
}

}  // namespace
}  // namespace net
