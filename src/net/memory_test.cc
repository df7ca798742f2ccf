// server.memory_limit: the server sheds load above the ceiling (accepting
// pauses, the oldest held tarpit sessions are cut) and resumes below the
// low-water mark. The RSS is injected (ServerParams::rss): no test
// exhausts real memory.
#include <gtest/gtest.h>
#include <poll.h>

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "base/metrics.h"
#include "net/recording_sink_test_util.h"
#include "net/server.h"
#include "net/server_impl.h"

namespace net {
namespace {

using asio::ip::tcp;
constexpr int64_t kMiB = 1 << 20;
constexpr int64_t kLimit = 100 * kMiB;

using Sink = RecordingSink;

// The RSS the server reads: `high` by the next `high_reads` readings, then
// `steady`. (Above the limit the server trims and reads again: one check
// over the limit takes two readings.)
struct FakeRss {
  std::atomic<int64_t> steady{10 * kMiB};
  std::atomic<int64_t> high{0};
  std::atomic<int> high_reads{0};
  std::atomic<int> readings{0};
  int64_t Read() {
    ++readings;
    if (high_reads.fetch_sub(1) > 0) return high.load();
    return steady.load();
  }
};

// Stops the server and joins its thread however the test ends.
struct Running {
  Server& server;
  std::thread thread;
  ~Running() {
    server.Stop();
    if (thread.joinable()) thread.join();
  }
};

// Whether sock gets a line within ms; the line (or "").
std::string ReadLine(tcp::socket& sock, int ms) {
  std::string got;
  while (got.find("\r\n") == std::string::npos) {
    pollfd pfd{sock.native_handle(), POLLIN, 0};
    if (poll(&pfd, 1, ms) != 1) return got;
    char buf[512];
    asio::error_code ec;
    size_t n = sock.read_some(asio::buffer(buf), ec);
    if (ec) return got;
    got.append(buf, n);
  }
  return got;
}

template <class F>
bool WaitFor(F done) {  // 5 s at most
  for (int i = 0; i < 500; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

class MemoryLimitTest : public ::testing::TestWithParam<std::string> {};

// Four clients held by a minute-long greeting delay, one worker; one
// reading above the limit cuts one round (a quarter of the held: the oldest
// one) and pauses accepting; readings between the low-water mark and the
// limit keep accepting paused and cut nothing; one below it resumes.
TEST_P(MemoryLimitTest, ShedsTheOldestHeldAndPausesUntilLowWater) {
  if (GetParam() == "io_uring" && !ProbeUring().empty()) {
    GTEST_SKIP() << "io_uring unusable here: " << ProbeUring();
  }
  FakeRss rss;
  Sink sink;
  ServerParams p;
  p.server.listen = {"127.0.0.1:0"};
  p.server.threads = 1;
  p.server.executor = GetParam();
  p.server.memory_limit = kLimit;
  p.server.proxy_timeout = 0.2;  // sweeps every 25 ms
  p.log_sessions = false;
  p.tarpit.enabled = true;
  p.tarpit.greeting = {60, 60};
  p.session = *smtp::MakeSessionOptions(p.smtp, "mx.test", false);
  p.sink = &sink;
  p.rss = [&rss] { return rss.Read(); };
  Server server(std::move(p));
  ASSERT_TRUE(server.Bind().ok());
  auto addr = server.LocalAddresses().at(0);
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"),
                   uint16_t(std::stoi(addr.substr(addr.rfind(':') + 1))));
  Running run{server, std::thread([&] { server.Run(); })};
  uint64_t shed0 = base::CounterTotal(base::Counter::kMemoryShedSessions);
  uint64_t reached0 = base::CounterTotal(base::Counter::kMemoryLimitReached);

  asio::io_context io;
  std::vector<std::unique_ptr<tcp::socket>> held;
  for (int i = 0; i < 4; ++i) {  // one at a time: the accept order is known
    held.push_back(std::make_unique<tcp::socket>(io));
    held.back()->connect(ep);
    ASSERT_TRUE(WaitFor([&] { return server.open_connections() == i + 1; }));
  }
  ASSERT_TRUE(WaitFor([] { return base::g_held_connections.load() == 4; }));

  // Above the limit once, then between the marks.
  rss.steady = 95 * kMiB;
  rss.high = 150 * kMiB;
  rss.high_reads = 2;
  EXPECT_EQ(ReadLine(*held[0], 5000).substr(0, 4), "421 ");
  ASSERT_TRUE(WaitFor([&] { return server.open_connections() == 3; }));
  EXPECT_TRUE(WaitFor([] { return base::g_paused_accepts.load() > 0; }));
  EXPECT_EQ(base::g_memory_rss_bytes.load(), 95 * kMiB);
  tcp::socket late(io);
  late.connect(ep);  // the kernel completes it; the server does not take it
  int r0 = rss.readings.load();
  ASSERT_TRUE(WaitFor([&] { return rss.readings.load() >= r0 + 8; }));
  EXPECT_EQ(server.open_connections(), 3);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(ReadLine(*held[i], 0), "") << i;

  // Below the low-water mark: accepting resumes, nothing more is cut.
  rss.steady = 89 * kMiB;
  EXPECT_TRUE(WaitFor([&] { return server.open_connections() == 4; }));
  EXPECT_TRUE(WaitFor([] { return base::g_paused_accepts.load() == 0; }));
  EXPECT_EQ(base::CounterTotal(base::Counter::kMemoryShedSessions) - shed0, 1u);
  EXPECT_EQ(base::CounterTotal(base::Counter::kMemoryLimitReached) - reached0,
            1u);

  server.Stop();
  run.thread.join();
  auto records = sink.records();
  ASSERT_EQ(records.size(), 5u);
  int cut = 0;
  for (const auto& r : records) {
    if (r.close_reason != peer::CloseReason::kMemoryLimit) continue;
    ++cut;
    EXPECT_EQ(r.client_port, held[0]->local_endpoint().port());
  }
  EXPECT_EQ(cut, 1);
}

INSTANTIATE_TEST_SUITE_P(Executors, MemoryLimitTest,
                         ::testing::Values("asio", "io_uring"));

}  // namespace
}  // namespace net
