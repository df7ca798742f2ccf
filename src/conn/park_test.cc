// The connection machine parks its SMTP engine while it idles between
// transactions (waiting for the client, or in a tarpit delay) and resumes
// it, unchanged, when the wait ends.
#include <gtest/gtest.h>

#include "conn/machine_fixture.h"

namespace conn {
namespace {

// Its own suite name: the fixture is a distinct class in each test file.
class Parking : public Machine {};

TEST_F(Parking, AnIdleSessionParksItsEngineAndResumesIt) {
  Begin();
  EXPECT_TRUE(Take().starts_with("220 mx.test ESMTP"));
  EXPECT_TRUE(m_->parked());  // waiting for EHLO
  Client("EHLO a.example\r\n");
  ASSERT_EQ(c_.kind, Kind::kRead);
  EXPECT_TRUE(m_->parked());
  // The record is whole while parked.
  auto s = m_->Summary();
  ASSERT_EQ(s.helo_names.size(), 1u);
  EXPECT_EQ(s.helo_names[0].name, "a.example");
  EXPECT_EQ(s.commands, 1u);
  Client("MAIL FROM:<x@b.example>\r\n");
  EXPECT_FALSE(m_->parked());  // a transaction is open
  Client("RCPT TO:<y@c.example>\r\nDATA\r\n");
  EXPECT_FALSE(m_->parked());
  Client("hi\r\n.\r\n");
  EXPECT_TRUE(m_->parked());
  EXPECT_NE(Take().find("250 2.0.0 Ok: queued as "), std::string::npos);
  Client("NOOP");  // a partial line keeps the engine
  EXPECT_FALSE(m_->parked());
  Client("\r\nQUIT\r\n");
  EXPECT_NE(Take().find("221 2.0.0 Bye"), std::string::npos);
  ASSERT_EQ(c_.kind, Kind::kClose);
  s = m_->Summary();
  EXPECT_EQ(s.messages, 1u);
  EXPECT_EQ(s.commands, 6u);  // the body's end is not one
  EXPECT_EQ(s.helo_names[0].name, "a.example");
}

// A parked idle session still answers the idle timeout with a 421, and a
// held one parks during its tarpit delays.
TEST_F(Parking, ParkedSessionsTimeOutAndWaitParked) {
  Begin();
  Client("EHLO a.example\r\n");
  Take();
  ASSERT_TRUE(m_->parked());
  c_ = m_->OnAbort(CloseReason::kIdleTimeout);
  Pump();
  EXPECT_TRUE(Take().starts_with("421 4.4.2 mx.test Error: timeout"));

  HoldAll(/*stutter=*/false);
  Begin();
  ASSERT_EQ(c_.kind, Kind::kRead);  // Pump served the greeting delay
  Take();
  Client("EHLO a.example\r\n");
  Take();
  c_ = m_->OnRead("NOOP\r\n");
  ASSERT_EQ(c_.kind, Kind::kWait);  // the reply's delay
  EXPECT_TRUE(m_->parked());
  Pump();
  EXPECT_EQ(Take(), "250 2.0.0 Ok\r\n");
}

}  // namespace
}  // namespace conn
