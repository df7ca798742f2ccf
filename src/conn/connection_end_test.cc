// How a connection ends (connection_end.cc): the persona's last words.
#include <gtest/gtest.h>

#include "conn/connection.h"
#include "conn/machine_fixture.h"

namespace conn {
namespace {

// Its own suite name: the fixture is a distinct class in each test file.
class LastWords : public Machine {};

// Postfix's idle-timeout 421 goes through smtpd_chat_reply(): past the
// soft error limit (10 errors) it waits the error sleep (1 s) first, as
// every reply then does. The wait is the machine's timer (a fake clock
// here), and the linger after it still comes.
TEST_F(LastWords, PostfixIdleTimeoutSleepsPastTheSoftErrorLimit) {
  Begin();
  Take();
  std::string batch;
  for (int i = 0; i < 10; ++i) batch += "XYZZY\r\n";
  Client(batch);  // 10 errors
  Take();
  clock_.Advance(seconds(300));
  ASSERT_EQ(m_->Expired(clock_.Now()), CloseReason::kIdleTimeout);
  c_ = m_->OnAbort(CloseReason::kIdleTimeout);
  Pump();
  ASSERT_EQ(writes_.size(), 1u);
  EXPECT_DOUBLE_EQ(writes_[0].wait, 1);
  EXPECT_EQ(writes_[0].bytes, "421 4.4.2 mx.test Error: timeout exceeded\r\n");
  EXPECT_TRUE(half_closed_);
  EXPECT_EQ(m_->Summary().close_reason, CloseReason::kIdleTimeout);
}

// Below the soft limit (and for a shutdown) the 421 goes at once.
TEST_F(LastWords, IdleTimeoutBelowTheSoftLimitAndShutdownDoNotSleep) {
  Begin();
  Take();
  std::string batch;
  for (int i = 0; i < 9; ++i) batch += "XYZZY\r\n";
  Client(batch);
  Take();
  clock_.Advance(seconds(300));
  c_ = m_->OnAbort(CloseReason::kIdleTimeout);
  Pump();
  ASSERT_EQ(writes_.size(), 1u);
  EXPECT_DOUBLE_EQ(writes_[0].wait, 0);

  Begin();
  Take();
  Client(batch + "XYZZY\r\nXYZZY\r\n");  // 11 errors
  Take();
  c_ = m_->OnAbort(CloseReason::kShutdown);
  Pump();
  ASSERT_EQ(writes_.size(), 1u);
  EXPECT_DOUBLE_EQ(writes_[0].wait, 0);
}

}  // namespace
}  // namespace conn
