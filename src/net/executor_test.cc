// The choice of executor (server.executor): what runs, what is logged, and
// that a refused io_uring falls back to asio or, when demanded, fails Bind.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "base/metrics.h"
#include "net/server.h"
#include "net/server_impl.h"

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

}  // namespace
}  // namespace net
