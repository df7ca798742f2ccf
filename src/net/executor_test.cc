// The choice of executor (server.executor): what runs, what is logged, and
// that a refused io_uring falls back to asio or, when demanded, fails Bind.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace net
