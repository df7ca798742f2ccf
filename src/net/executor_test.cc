// The choice of executor (server.executor): what runs, what is logged, and
// that a refused io_uring falls back to asio or, when demanded, fails Bind.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/metrics.h"
#include "net/recording_sink_test_util.h"
#include "net/server.h"
#include "net/server_impl.h"
#include "net/uring_impl.h"

namespace net {
namespace {

ServerParams Params(const std::string& executor,
                    std::function<std::string()> probe) {
  ServerParams p;
  p.server.listen = {"127.0.0.1:0"};
  p.server.threads = 1;
  p.server.executor = executor;
  p.log_sessions = false;
  p.session = *smtp::MakeSessionOptions(p.smtp, "mx.test", false);
  p.uring_probe = std::move(probe);
  return p;
}

// The io_uring executor with no tarpit, for many clients from 127.0.0.1.
ServerParams PlainUring(SessionSink* sink) {
  ServerParams p = Params("io_uring", nullptr);
  p.tarpit.enabled = false;
  p.server.max_connections_per_ip = 1000;
  p.sink = sink;
  return p;
}

// The port of a bound server's first address.
uint16_t PortOf(Server& s) {
  std::string addr = s.LocalAddresses().at(0);
  return uint16_t(std::stoi(addr.substr(addr.rfind(':') + 1)));
}

std::string Refuse() {
  return "io_uring_setup: Operation not permitted (test)";
}

TEST(Executor, AutoFallsBackToAsioWhenRefusedAndSaysWhy) {
  Server s(Params("auto", Refuse));
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(s.Bind().ok());
  std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(s.executor(), "asio");
  EXPECT_NE(log.find("event=executor executor=asio reason=\"auto: io_uring "
                     "is unusable: io_uring_setup: Operation not permitted "
                     "(test)\""),
            std::string::npos)
      << log;
}

TEST(Executor, DemandedButRefusedIoUringFailsBind) {
  Server s(Params("io_uring", Refuse));
  auto st = s.Bind();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("io_uring is unusable here: io_uring_setup"),
            std::string::npos)
      << st.message();
}

TEST(Executor, AsioWhenConfigured) {
  Server s(Params("asio", [] { return std::string("never asked"); }));
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(s.Bind().ok());
  std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(s.executor(), "asio");
  EXPECT_NE(log.find("event=executor executor=asio reason=configured"),
            std::string::npos)
      << log;
}

TEST(Executor, AutoPicksIoUringWhereTheKernelAllowsIt) {
  std::string why = ProbeUring();
  if (!why.empty()) GTEST_SKIP() << "io_uring unusable here: " << why;
  Server s(Params("auto", nullptr));
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(s.Bind().ok());
  std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(s.executor(), "io_uring");
  EXPECT_NE(log.find("event=executor executor=io_uring reason=\"auto: "
                     "io_uring is usable\""),
            std::string::npos)
      << log;
}

// fd_reserve beyond the descriptor limit: every accept loop pauses at once,
// the gauge behind /healthz's "listeners paused" says so, and it is back to
// 0 when the server stops.
TEST(Executor, PausedAcceptingIsAGaugeOnBothExecutors) {
  for (std::string executor : {"asio", "io_uring"}) {
    if (executor == "io_uring" && !ProbeUring().empty()) continue;
    ServerParams p = Params(executor, nullptr);
    p.server.fd_reserve = 1 << 30;
    Server s(std::move(p));
    ASSERT_TRUE(s.Bind().ok());
    EXPECT_EQ(base::g_paused_accepts.load(), 0);
    std::thread t([&] { s.Run(); });
    bool seen = false;
    for (int i = 0; i < 500 && !seen; ++i) {  // 5 s at most
      seen = base::g_paused_accepts.load() > 0;
      if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(seen) << executor;
    s.Stop();
    t.join();
    EXPECT_EQ(base::g_paused_accepts.load(), 0) << executor;
  }
}

// A blocking loopback client; reads time out after 5 s.
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

// What the server sent first: its text, "<closed>", or "<error>".
std::string FirstBytes(int fd) {
  char b[512];
  ssize_t n = recv(fd, b, sizeof b, 0);
  if (n == 0) return "<closed>";
  if (n < 0) return "<" + std::string(std::strerror(errno)) + ">";
  return std::string(b, size_t(n));
}

bool Greeted(int fd) { return FirstBytes(fd).rfind("220", 0) == 0; }

// FirstBytes, resumed after EINTR (the server shares this process: a
// blocking recv of the test's can be interrupted), a bounded number of times.
std::string Answer(int fd) {
  std::string got = FirstBytes(fd);
  for (int i = 0; i < 10 && got == "<Interrupted system call>"; ++i) {
    got = FirstBytes(fd);
  }
  return got;
}

// The descriptor reserve leaves room for two sessions: the second accept
// stops accepting (io_uring: cancels the multishot accept), a third client
// waits in the backlog unserved, and is greeted once the first two leave.
TEST(Executor, AcceptingStopsAtTheReserveAndResumes) {
  rlimit rl{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  for (std::string executor : {"asio", "io_uring"}) {
    if (executor == "io_uring" && !ProbeUring().empty()) continue;
    ServerParams p = Params(executor, nullptr);
    p.tarpit.enabled = false;
    // Paused when open + reserve + 16 >= the limit, i.e. at 2 open.
    p.server.fd_reserve = int(rl.rlim_cur) - 16 - 2;
    Server s(std::move(p));
    ASSERT_TRUE(s.Bind().ok());
    uint16_t port = PortOf(s);
    std::thread t([&] { s.Run(); });
    int a = Dial(port), b = Dial(port);
    EXPECT_TRUE(Greeted(a)) << executor;
    EXPECT_TRUE(Greeted(b)) << executor;
    bool paused = false;
    for (int i = 0; i < 500 && !paused; ++i) {  // 5 s at most
      paused = base::g_paused_accepts.load() > 0;
      if (!paused) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(paused) << executor;
    int c = Dial(port);  // completes in the backlog, is not served
    timeval shortwait{0, 300000};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &shortwait, sizeof shortwait);
    EXPECT_FALSE(Greeted(c)) << executor;
    ::close(a);
    ::close(b);
    timeval tv{5, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string got = FirstBytes(c);
    if (got.rfind("220", 0) != 0) {
      // c came in the moment before the multishot accept's cancel took
      // effect (seen once under ASan in a loaded CI run): it was taken and
      // answered at once (`got` says how), never served beyond the
      // reserve. A new client shows that accepting resumed.
      int d = Dial(port);
      EXPECT_TRUE(Greeted(d)) << executor << "; c got " << got;
      ::close(d);
    }
    ::close(c);
    s.Stop();
    t.join();
  }
}

// The API's sockets count in the descriptor reserve: with (pretend) API
// connections filling the limit, the SMTP accept loops pause.
TEST(Executor, ApiConnectionsCountInTheDescriptorReserve) {
  for (std::string executor : {"asio", "io_uring"}) {
    if (executor == "io_uring" && !ProbeUring().empty()) continue;
    Server s(Params(executor, nullptr));
    ASSERT_TRUE(s.Bind().ok());
    base::g_api_connections += base::g_fd_limit.load();
    std::thread t([&] { s.Run(); });
    bool seen = false;
    for (int i = 0; i < 500 && !seen; ++i) {  // 5 s at most
      seen = base::g_paused_accepts.load() > 0;
      if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    base::g_api_connections -= base::g_fd_limit.load();
    EXPECT_TRUE(seen) << executor;
    s.Stop();
    t.join();
  }
}

// A sink whose first Record blocks its worker until Release(): the test
// can then queue input on many connections while the worker is away.
class BlockingSink final : public SessionSink {
 public:
  void Record(const peer::SessionSummary&) override {
    std::unique_lock lock(mu_);
    if (blocked_once_) return;
    blocked_once_ = true;
    entered_ = true;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return released_; });
  }
  bool WaitEntered() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(5),
                        [&] { return entered_; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool blocked_once_ = false, entered_ = false, released_ = false;
};

// A request's user_data carries its session's serial, and a cancel reaches
// only the request of the serial it names: a cancel meant for a session
// freed earlier in the loop turn leaves the new session that took its
// address alone (the kernel's own matching, on a real ring).
TEST(Executor, ACancelReachesOnlyTheSerialItNames) {
  io_uring ring;
  if (io_uring_queue_init(8, &ring, 0) < 0) GTEST_SKIP() << "no io_uring";
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  alignas(8) static char object[8];  // where both "sessions" live
  uint64_t old_one = Data(object, kSession, 41);
  uint64_t new_one = Data(object, kSession, 42);
  EXPECT_NE(old_one, new_one);
  EXPECT_EQ(AddressOf(new_one), static_cast<void*>(object));
  EXPECT_EQ(Tag(new_one & kTagMask), kSession);
  char buf[16];
  io_uring_sqe* q = io_uring_get_sqe(&ring);
  io_uring_prep_recv(q, sv[0], buf, sizeof buf, 0);
  io_uring_sqe_set_data64(q, new_one);
  auto cancel = [&](uint64_t target) {
    io_uring_sqe* c = io_uring_get_sqe(&ring);
    io_uring_prep_cancel64(c, target, 0);
    io_uring_sqe_set_data64(c, kIgnore);
    EXPECT_GE(io_uring_submit(&ring), 1);
  };
  // Reads the next n completions: user_data -> res.
  auto reap = [&](int n) {
    std::map<uint64_t, int> got;
    for (int i = 0; i < n; ++i) {
      io_uring_cqe* e = nullptr;
      if (io_uring_wait_cqe(&ring, &e) != 0) break;
      got[io_uring_cqe_get_data64(e)] = e->res;
      io_uring_cqe_seen(&ring, e);
    }
    return got;
  };
  cancel(old_one);  // the freed session's cancel: nothing to cancel
  auto first = reap(1);
  ASSERT_EQ(first.count(kIgnore), 1u);
  EXPECT_EQ(first[kIgnore], -ENOENT);
  ASSERT_EQ(::send(sv[1], "x", 1, 0), 1);  // the live read still completes
  auto second = reap(1);
  ASSERT_EQ(second.count(new_one), 1u);
  EXPECT_EQ(second[new_one], 1);
  q = io_uring_get_sqe(&ring);  // and its own serial does cancel it
  io_uring_prep_recv(q, sv[0], buf, sizeof buf, 0);
  io_uring_sqe_set_data64(q, new_one);
  cancel(new_one);
  auto third = reap(2);
  ASSERT_EQ(third.count(new_one), 1u);
  EXPECT_EQ(third[new_one], -ECANCELED);
  io_uring_queue_exit(&ring);
  ::close(sv[0]);
  ::close(sv[1]);
}

// More reads complete at once than the worker has receive buffers: the
// reads that find the pool empty (ENOBUFS) are tried again and every client
// is answered. The worker is held in the sink while the clients write, so
// all their reads complete in one batch when it comes back.
TEST(Executor, ReadsBeyondTheBufferPoolAreTriedAgain) {
  if (!ProbeUring().empty()) GTEST_SKIP() << "io_uring unusable here";
  BlockingSink sink;
  Server s(PlainUring(&sink));
  ASSERT_TRUE(s.Bind().ok());
  uint16_t port = PortOf(s);
  std::thread t([&] { s.Run(); });
  std::vector<int> fds;
  for (unsigned i = 0; i < 3 * kBuffers; ++i) {
    fds.push_back(Dial(port));
    EXPECT_EQ(Answer(fds.back()).substr(0, 4), "220 ") << i;
  }
  int blocker = Dial(port);
  EXPECT_EQ(Answer(blocker).substr(0, 4), "220 ");
  ::close(blocker);  // its session's end blocks the worker in the sink
  ASSERT_TRUE(sink.WaitEntered());
  uint64_t dry = base::CounterTotal(base::Counter::kRecvNoBuffers);
  const std::string ehlo = "EHLO client.test\r\n";
  for (int fd : fds) {
    EXPECT_EQ(::send(fd, ehlo.data(), ehlo.size(), 0), ssize_t(ehlo.size()));
  }
  sink.Release();
  for (size_t i = 0; i < fds.size(); ++i) {
    EXPECT_EQ(Answer(fds[i]).substr(0, 4), "250-") << i;
    ::close(fds[i]);
  }
  EXPECT_GT(base::CounterTotal(base::Counter::kRecvNoBuffers), dry);
  s.Stop();
  t.join();
}

// Plain io_uring sessions idle in a read wait as packed records (the banner
// and each reply end in a park) and, remade at each read, answer and record
// as if never parked.
TEST(Executor, IdleIoUringSessionsWaitParkedAndAnswerAsBefore) {
  if (!ProbeUring().empty()) GTEST_SKIP() << "io_uring unusable here";
  RecordingSink sink;
  Server s(PlainUring(&sink));
  ASSERT_TRUE(s.Bind().ok());
  uint16_t port = PortOf(s);
  std::thread t([&] { s.Run(); });
  uint64_t parks = base::CounterTotal(base::Counter::kUringSessionsParked);
  const int kClients = 20;
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  auto say = [&](int fd, const std::string& line) {
    EXPECT_EQ(::send(fd, line.data(), line.size(), 0), ssize_t(line.size()));
    return Answer(fd);
  };
  for (int i = 0; i < kClients; ++i) {
    fds.push_back(Dial(port));
    sockaddr_in a{};
    socklen_t len = sizeof a;
    getsockname(fds.back(), reinterpret_cast<sockaddr*>(&a), &len);
    ports.push_back(ntohs(a.sin_port));
    EXPECT_EQ(Answer(fds.back()).substr(0, 4), "220 ");
    std::string name = "c" + std::to_string(i) + ".test";
    EXPECT_EQ(say(fds.back(), "EHLO " + name + "\r\n").substr(0, 4), "250-");
  }
  // After the banner and after EHLO, every session parked (the last one
  // parks once its reply's send has completed, just after the client
  // read it).
  auto parked = [&] {
    return base::CounterTotal(base::Counter::kUringSessionsParked) - parks;
  };
  for (int i = 0; i < 500 && parked() < 2 * kClients; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // 5 s max
  }
  EXPECT_GE(parked(), uint64_t(2 * kClients));
  for (int fd : fds) {
    EXPECT_EQ(say(fd, "MAIL FROM:<a@b.test>\r\n").substr(0, 3), "250");
    EXPECT_EQ(say(fd, "RCPT TO:<x@y.test>\r\n").substr(0, 3), "250");
    EXPECT_EQ(say(fd, "DATA\r\n").substr(0, 3), "354");
    EXPECT_EQ(say(fd, "hello\r\n.\r\n").substr(0, 3), "250");
    EXPECT_EQ(say(fd, "QUIT\r\n").substr(0, 3), "221");
    ::close(fd);
  }
  for (int i = 0; i < 500 && sink.records().size() < size_t(kClients); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // 5 s max
  }
  auto records = sink.records();
  ASSERT_EQ(records.size(), size_t(kClients));
  for (const auto& r : records) {
    auto it = std::find(ports.begin(), ports.end(), r.client_port);
    ASSERT_NE(it, ports.end()) << r.client_port;
    int i = int(it - ports.begin());
    EXPECT_EQ(r.client.ToString(), "127.0.0.1");
    ASSERT_EQ(r.helo_names.size(), 1u);
    EXPECT_EQ(r.helo_names[0].name, "c" + std::to_string(i) + ".test");
    EXPECT_EQ(r.messages, 1u);
    EXPECT_EQ(r.recipients, 1u);
    EXPECT_EQ(r.commands, 5u);  // the body's end is not one
    EXPECT_EQ(r.close_reason, peer::CloseReason::kQuit);
    EXPECT_GT(r.duration_seconds, 0);
    EXPECT_GT(r.start_wall, 0);
  }
  s.Stop();
  t.join();
}

}  // namespace
}  // namespace net
