// The connection machine, driven by hand (the Machine fixture,
// machine_fixture.h): no sockets, a fake clock.
#include "conn/connection.h"

#include <gtest/gtest.h>

#include "conn/machine_fixture.h"

namespace conn {
namespace {

TEST_F(Machine, PlainSessionRecordsAndCloses) {
  Begin();
  EXPECT_TRUE(Take().starts_with("220 mx.test ESMTP"));
  Client(
      "EHLO a.example\r\nMAIL FROM:<x@b.example>\r\nRCPT TO:<y@c.example>"
      "\r\nDATA\r\n");
  EXPECT_EQ(c_.kind, Kind::kRead);
  Client("hi\r\n.\r\nQUIT\r\n");
  EXPECT_NE(Take().find("221 2.0.0 Bye"), std::string::npos);
  ASSERT_EQ(c_.kind, Kind::kClose);
  EXPECT_FALSE(half_closed_);  // the client closes after QUIT
  auto s = m_->Summary();
  EXPECT_EQ(s.close_reason, CloseReason::kQuit);
  EXPECT_EQ(s.messages, 1u);
  EXPECT_EQ(s.client.ToString(), "192.0.2.7");
  EXPECT_EQ(gauges_.open.load(), 0);
  EXPECT_EQ(per_ip_.begin()->second, 0);
}

// A persona's greet_pause (Debian's Sendmail: 1 s) holds the banner
// without a tarpit, notes a client that talked first, and is not counted as
// tarpit time.
TEST_F(Machine, GreetPauseHoldsTheBannerAndSeesEarlyTalkers) {
  smtp_.persona.rules.greet_pause = 1;
  pending_input_ = true;
  Begin();
  ASSERT_EQ(writes_.size(), 1u);
  EXPECT_DOUBLE_EQ(writes_[0].wait, 1);
  EXPECT_TRUE(writes_[0].bytes.starts_with("220 "));
  EXPECT_TRUE(m_->Summary().early_talker);
  EXPECT_FALSE(m_->Summary().tarpitted);
  EXPECT_DOUBLE_EQ(m_->Summary().delay_seconds, 0);
}

TEST_F(Machine, TarpitDelaysEachStageAndDetectsEarlyTalkers) {
  HoldAll(false);
  tarpit_.reject_early_talkers = true;
  pending_input_ = true;  // the client speaks during the greeting delay
  Begin();
  ASSERT_EQ(writes_.size(), 1u);
  EXPECT_DOUBLE_EQ(writes_[0].wait, 3);
  EXPECT_TRUE(writes_[0].bytes.starts_with("554 "));
  EXPECT_TRUE(m_->Summary().early_talker);
  EXPECT_TRUE(m_->Summary().tarpitted);
  Take();
  Client("QUIT\r\n");
  EXPECT_EQ(c_.kind, Kind::kClose);
}

// Every reply is paced by its own stage: three pipelined commands wait
// three delays, each reply sent once its delay is over.
TEST_F(Machine, PipelinedRepliesArePacedOneByOne) {
  HoldAll(false);
  Begin();
  Take();
  Client("EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\n");
  ASSERT_EQ(writes_.size(), 3u);
  for (const auto& w : writes_) EXPECT_DOUBLE_EQ(w.wait, 3);
  EXPECT_TRUE(writes_[0].bytes.starts_with("250-mx.test"));
  EXPECT_TRUE(writes_[1].bytes.starts_with("250 2.1.0"));
  EXPECT_TRUE(writes_[2].bytes.starts_with("250 2.1.5"));
  EXPECT_NEAR(m_->Summary().delay_seconds, 12, 1e-9);
}

// Postfix's error sleep (the postfix persona, tarpit off) is a wait of the
// machine's timer: past 10 errors each reply line waits 1 s and goes out
// at once, with the replies before it that had no sleep (pipelined); the
// 20th error's reply and the 421 after it wait 1 s each, then the session
// ends.
TEST_F(Machine, PostfixErrorSleepIsAScheduledWait) {
  Begin();
  Take();
  for (int i = 0; i < 9; ++i) Client("XYZZY\r\n");
  ASSERT_EQ(writes_.size(), 9u);
  for (const auto& w : writes_) EXPECT_DOUBLE_EQ(w.wait, 0);
  Take();
  Client("XYZZY\r\nNOOP\r\n");  // the 10th error's reply has no sleep
  ASSERT_EQ(writes_.size(), 1u);
  EXPECT_DOUBLE_EQ(writes_[0].wait, 1);
  EXPECT_EQ(writes_[0].bytes,
            "500 5.5.2 Error: command not recognized\r\n250 2.0.0 Ok\r\n");
  Take();
  Client("NOOP\r\nNOOP\r\nXYZZY\r\n");  // 11 errors now
  ASSERT_EQ(writes_.size(), 3u);
  for (const auto& w : writes_) EXPECT_DOUBLE_EQ(w.wait, 1);
  EXPECT_EQ(writes_[2].bytes, "500 5.5.2 Error: command not recognized\r\n");
  Take();
  Client("EHLO a.example\r\n");  // one line a second
  ASSERT_GE(writes_.size(), 10u);
  for (const auto& w : writes_) {
    EXPECT_DOUBLE_EQ(w.wait, 1);
    EXPECT_EQ(w.bytes.find("\r\n"), w.bytes.size() - 2) << w.bytes;
  }
  EXPECT_TRUE(writes_.back().bytes.starts_with("250 "));
  double ehlo_lines = double(writes_.size());
  Take();
  for (int i = 0; i < 8; ++i) Client("XYZZY\r\n");  // 19 errors
  Take();
  Client("XYZZY\r\n");
  ASSERT_EQ(writes_.size(), 2u);
  EXPECT_DOUBLE_EQ(writes_[0].wait, 1);
  EXPECT_DOUBLE_EQ(writes_[1].wait, 1);
  EXPECT_EQ(writes_[1].bytes, "421 4.7.0 mx.test Error: too many errors\r\n");
  EXPECT_TRUE(half_closed_);
  auto s = m_->Summary();
  EXPECT_EQ(s.close_reason, CloseReason::kTooManyErrors);
  EXPECT_NEAR(s.delay_seconds, 1 + 3 + ehlo_lines + 8 + 2, 1e-9);
  EXPECT_FALSE(s.tarpitted);
}

// Held by the tarpit, a reply waits its stage's delay and its error sleep.
TEST_F(Machine, ErrorSleepAddsToTheTarpitsDelay) {
  HoldAll(false);
  Begin();
  Take();
  std::string batch;
  for (int i = 0; i < 10; ++i) batch += "XYZZY\r\n";
  Client(batch);
  Take();
  Client("NOOP\r\n");
  ASSERT_EQ(writes_.size(), 1u);
  EXPECT_DOUBLE_EQ(writes_[0].wait, 3 + 1);
}

// A wait counts once served: not when it is armed, and only the part
// served when an abort cuts it short (the sender did not wait the rest).
TEST_F(Machine, AWaitCountsOnlyWhenServed) {
  HoldAll(false);
  env_ = Env{&limits_, &smtp_, &tarpit_, &clock_,   &random_,
             &output_, this,   &gauges_, &stopping_};
  m_ = std::make_unique<Connection>(&env_);
  c_ = m_->Start(*base::IpAddress::Parse("192.0.2.7"), 4000, false);
  ASSERT_EQ(c_.kind, Kind::kWait);  // the greeting delay, 3 s
  EXPECT_EQ(m_->Summary().delay_seconds, 0);
  clock_.Advance(std::chrono::milliseconds(1200));
  c_ = m_->OnAbort(CloseReason::kShutdown);
  Pump();
  EXPECT_TRUE(Take().starts_with("421 "));
  EXPECT_EQ(c_.kind, Kind::kClose);
  EXPECT_NEAR(m_->Summary().delay_seconds, 1.2, 1e-9);
}

// An executor that sees the peer leave during a wait (EPOLLRDHUP) reports
// EOF: the hold and the session end then, not when the timer would fire.
TEST_F(Machine, ThePeerLeavingDuringAWaitEndsTheHold) {
  HoldAll(false);
  Begin();
  Take();
  c_ = m_->OnRead("EHLO a\r\n");  // its reply waits 3 s
  ASSERT_EQ(c_.kind, Kind::kWait);
  clock_.Advance(std::chrono::milliseconds(500));
  c_ = m_->OnEof();
  EXPECT_EQ(c_.kind, Kind::kClose);
  auto s = m_->Summary();
  EXPECT_NEAR(s.delay_seconds, 3.5, 1e-9);  // the greeting's 3, then 0.5
  EXPECT_NEAR(s.duration_seconds, 3.5, 1e-9);
  EXPECT_EQ(s.close_reason, CloseReason::kClientClosed);
}

// tarpit.exempt: never held, answered at once, counted apart.
TEST_F(Machine, ExemptNetworksAreNeverHeld) {
  HoldAll(true);
  tarpit_.exempt = {"192.0.2.0/24"};
  uint64_t before = base::CounterTotal(base::Counter::kTarpitExempt);
  Begin(false, "192.0.2.7");
  EXPECT_EQ(writes_.size(), 1u);
  EXPECT_DOUBLE_EQ(writes_[0].wait, 0);
  EXPECT_TRUE(writes_[0].bytes.starts_with("220 mx.test ESMTP"));
  EXPECT_FALSE(m_->Summary().tarpitted);
  EXPECT_FALSE(m_->plan().has_value());
  EXPECT_EQ(base::CounterTotal(base::Counter::kTarpitExempt), before + 1);
  Take();
  Begin(false, "198.51.100.7");  // others are held as before
  EXPECT_TRUE(m_->Summary().tarpitted);
  EXPECT_DOUBLE_EQ(writes_[0].wait, 3);
}

std::vector<std::pair<double, std::string>> Shape(
    const std::vector<Write>& writes) {
  std::vector<std::pair<double, std::string>> out;
  for (const auto& w : writes) out.emplace_back(w.wait, w.bytes);
  return out;
}

// The same pacing inside TLS as outside: the machine does not know the
// difference, and the executor only encrypts.
TEST_F(Machine, TlsIsPacedLikePlain) {
  smtp_ = Options(true);
  HoldAll(true);
  Begin();
  Take();
  Client("EHLO a\r\n");
  auto plain = Shape(writes_);
  ASSERT_GT(plain.size(), 20u);  // one byte a second
  EXPECT_DOUBLE_EQ(plain[0].first, 3);
  EXPECT_DOUBLE_EQ(plain[1].first, 1);
  // Postfix's EHLO reply (with ETRN and DSN) is too long to stutter one
  // byte a second within the client's timeout: sped up to two.
  EXPECT_LE(plain[0].second.size(), 2u);
  std::string ehlo = Take();
  Client("STARTTLS\r\nMAIL FROM:<smuggled@x.y>\r\n");
  EXPECT_TRUE(Take().starts_with("220 2.0.0"));
  ASSERT_EQ(c_.kind, Kind::kStartTls);
  c_ = m_->OnTlsDone(true);
  Pump();
  ASSERT_EQ(c_.kind, Kind::kRead);  // what followed STARTTLS was discarded
  Client("EHLO a\r\n");
  auto tls = Shape(writes_);
  // Only STARTTLS is no longer offered inside TLS.
  std::string want = ehlo;
  want.erase(want.find("250-STARTTLS\r\n"), 14);
  EXPECT_EQ(Take(), want);
  ASSERT_EQ(tls.size(), want.size());
  EXPECT_EQ(tls.front().first, plain.front().first);
  for (size_t i = 1; i < tls.size(); ++i) {
    EXPECT_EQ(tls[i].first, 1) << i;
    EXPECT_EQ(tls[i].second.size(), 1u);
  }
  EXPECT_TRUE(m_->tls());
  EXPECT_TRUE(m_->Summary().tls);
}

TEST_F(Machine, TlsHandshakeFailureCloses) {
  smtp_ = Options(true);
  Begin();
  Client("STARTTLS\r\n");
  ASSERT_EQ(c_.kind, Kind::kStartTls);
  c_ = m_->OnTlsDone(false);
  EXPECT_EQ(c_.kind, Kind::kClose);
  EXPECT_EQ(m_->Summary().close_reason, CloseReason::kTlsFailed);
}

// Flow control: a client that pipelines a flood of EHLOs and never reads
// gets about max_output bytes of replies; no more input is taken until
// they are sent, so the machine's memory stays bounded.
TEST_F(Machine, PipelinedFloodIsFlowControlled) {
  HoldAll(false);
  // EHLO is a junk command to the postfix persona (Postfix's
  // smtpd_junk_command_limit): lifted here, this test is about buffers.
  smtp_.max_junk_commands = 1000000;
  Begin();
  Take();
  room_ = 0;  // the client reads nothing
  std::string flood;
  while (flood.size() < 64 * 1024) flood += "EHLO x\r\n";
  ASSERT_EQ(c_.kind, Kind::kRead);
  c_ = m_->OnRead(flood);
  Pump();
  ASSERT_EQ(c_.kind, Kind::kSend);
  EXPECT_TRUE(c_.wait);
  EXPECT_LE(m_->buffered_bytes(), flood.size() + smtp_.max_output + 1024);
  // The client starts reading: replies flow, input is taken step by step,
  // and the buffers never grow past one read plus one step of replies.
  size_t most = 0, replies = 0;
  for (int i = 0; i < 100000 && c_.kind != Kind::kRead; ++i) {
    room_ = 4096;
    c_ = m_->OnSent(0);  // the socket has room again
    Pump(true);
    most = std::max(most, m_->buffered_bytes());
    replies += std::count(wire_.begin(), wire_.end(), '\n');
    wire_.clear();
  }
  EXPECT_EQ(c_.kind, Kind::kRead);
  EXPECT_LE(most, flood.size() + smtp_.max_output + 1024);
  EXPECT_GT(replies, flood.size() / 8);  // every EHLO answered
}

// A write that makes no progress for the idle timeout ends the session.
TEST_F(Machine, StalledWriteTimesOut) {
  Begin();
  Take();
  room_ = 10;
  Client("HELP\r\n");
  ASSERT_EQ(c_.kind, Kind::kSend);
  ASSERT_TRUE(c_.wait);
  clock_.Advance(seconds(299));
  EXPECT_FALSE(m_->Expired(clock_.Now()));
  clock_.Advance(seconds(2));
  ASSERT_EQ(m_->Expired(clock_.Now()), CloseReason::kIdleTimeout);
  c_ = m_->OnAbort(CloseReason::kIdleTimeout);
  Pump();  // the 421 finds no room either: at most the lingering time
  clock_.Advance(seconds(2));
  ASSERT_TRUE(m_->Expired(clock_.Now()));
  c_ = m_->OnAbort(*m_->Expired(clock_.Now()));
  Pump();
  EXPECT_EQ(c_.kind, Kind::kClose);
  EXPECT_EQ(m_->Summary().close_reason, CloseReason::kIdleTimeout);
}

TEST_F(Machine, IdleTimeoutAnswers421ThenLingers) {
  Begin();
  Take();
  clock_.Advance(seconds(299));
  EXPECT_FALSE(m_->Expired(clock_.Now()));
  clock_.Advance(seconds(1));
  ASSERT_EQ(m_->Expired(clock_.Now()), CloseReason::kIdleTimeout);
  c_ = m_->OnAbort(CloseReason::kIdleTimeout);
  Pump();
  EXPECT_EQ(Take(), "421 4.4.2 mx.test Error: timeout exceeded\r\n");
  EXPECT_TRUE(half_closed_);
  ASSERT_EQ(c_.kind, Kind::kRead);  // discarding what the client still sends
  c_ = m_->OnRead(std::string(1000, 'x'));
  ASSERT_EQ(c_.kind, Kind::kRead);
  c_ = m_->OnEof();
  EXPECT_EQ(c_.kind, Kind::kClose);
  EXPECT_EQ(m_->Summary().close_reason, CloseReason::kIdleTimeout);
}

TEST_F(Machine, LingeringCloseIsBoundedInBytesAndTime) {
  Begin();
  clock_.Advance(seconds(300));
  c_ = m_->OnAbort(CloseReason::kIdleTimeout);
  Pump();
  std::string junk(64 * 1024, 'x');
  int reads = 0;
  while (c_.kind == Kind::kRead && reads < 100) {
    c_ = m_->OnRead(junk);
    ++reads;
  }
  EXPECT_EQ(c_.kind, Kind::kClose);
  EXPECT_EQ(reads, 16);  // 1 MiB
  Begin();
  clock_.Advance(seconds(300));
  c_ = m_->OnAbort(CloseReason::kIdleTimeout);
  Pump();
  clock_.Advance(seconds(1));
  ASSERT_TRUE(m_->Expired(clock_.Now()));
  EXPECT_EQ(m_->OnAbort(CloseReason::kSessionTimeout).kind, Kind::kClose);
}

TEST_F(Machine, SessionTimeoutEvenWhileTalking) {
  Begin();
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(seconds(199));
    EXPECT_FALSE(m_->Expired(clock_.Now()));
    Client("NOOP\r\n");
  }
  clock_.Advance(seconds(3));
  ASSERT_EQ(m_->Expired(clock_.Now()), CloseReason::kSessionTimeout);
  Take();
  c_ = m_->OnAbort(CloseReason::kSessionTimeout);
  Pump();
  EXPECT_TRUE(Take().starts_with("421 4.4.2"));
  EXPECT_EQ(m_->Summary().close_reason, CloseReason::kSessionTimeout);
  EXPECT_EQ(m_->Summary().limits_hit, 1u);
}

// Shutdown ends a tarpit wait with a 421 and closes at once.
TEST_F(Machine, ShutdownDuringATarpitWait) {
  HoldAll(false);
  Begin();
  Take();
  ASSERT_EQ(c_.kind, Kind::kRead);
  c_ = m_->OnRead("EHLO a\r\n");
  Pump(/*fire=*/false);
  ASSERT_EQ(c_.kind, Kind::kWait);
  stopping_ = true;
  c_ = m_->OnAbort(CloseReason::kShutdown);
  Pump();
  EXPECT_TRUE(Take().starts_with("421 4.3.2"));
  EXPECT_FALSE(half_closed_);
  EXPECT_EQ(c_.kind, Kind::kClose);
  EXPECT_EQ(m_->Summary().close_reason, CloseReason::kShutdown);
}

TEST_F(Machine, PerIpAndTotalCaps) {
  limits_.max_connections_per_ip = 1;
  Begin();
  Take();
  auto first = std::move(m_);
  Begin();
  EXPECT_TRUE(Take().starts_with("421 4.7.0"));
  EXPECT_EQ(m_->Summary().close_reason, CloseReason::kCapPerIp);
  limits_.max_connections_per_ip = 100;
  limits_.max_connections = 1;
  Begin(false, "192.0.2.8");
  EXPECT_EQ(Take(), "421 4.7.0 mx.test Error: too many connections\r\n");
  EXPECT_EQ(m_->Summary().close_reason, CloseReason::kCapTotal);
}

TEST_F(Machine, ProxyHeaderSetsTheClientAndItsBytesCountAsEarly) {
  Begin(/*trusted=*/true);
  ASSERT_EQ(c_.kind, Kind::kRead);
  EXPECT_EQ(Take(), "");  // no banner before the header
  Client("PROXY TCP4 203.0.113.9 192.0.2.1 5555 25\r\nEHLO a\r\n");
  std::string w = Take();
  EXPECT_TRUE(w.starts_with("220 ")) << w;
  EXPECT_NE(w.find("250-mx.test"), std::string::npos);
  auto s = m_->Summary();
  EXPECT_EQ(s.client.ToString(), "203.0.113.9");
  EXPECT_TRUE(s.via_proxy);
  EXPECT_TRUE(s.early_talker);
}

TEST_F(Machine, BadProxyHeaderCloses) {
  Begin(/*trusted=*/true);
  Client("EHLO not a proxy header\r\n");
  EXPECT_EQ(c_.kind, Kind::kClose);
  EXPECT_EQ(m_->Summary().close_reason, CloseReason::kProxyError);
  EXPECT_EQ(Take(), "");
}

// During DATA a held sender meets the slow reader: a clamped window, small
// reads and a pause after each.
TEST_F(Machine, SlowReaderDuringData) {
  HoldAll(false);
  Begin();
  Client("EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n");
  ASSERT_EQ(c_.kind, Kind::kRead);
  EXPECT_EQ(c_.bytes, size_t(tarpit_.data_read_bytes));
  EXPECT_EQ(c_.window, tarpit_.data_window);
  c_ = m_->OnRead(std::string(c_.bytes, 'x'));
  Pump(/*fire=*/false);
  ASSERT_EQ(c_.kind, Kind::kWait);  // the pause after the read
  c_ = m_->OnTimer(false);
  ASSERT_EQ(c_.kind, Kind::kRead);
  EXPECT_EQ(c_.window, 0);  // clamped once
  EXPECT_EQ(m_->Summary().slow_reads, 2u);
}

TEST_F(Machine, ShedAtCapacity) {
  tarpit_.enabled = true;
  limits_.max_connections = 100;
  gauges_.open = 99;  // load 1.0 with this one
  Begin();
  EXPECT_EQ(Take(), "421 4.7.0 mx.test Error: too many connections\r\n");
  EXPECT_EQ(c_.kind, Kind::kRead);  // lingering
  EXPECT_EQ(m_->Summary().close_reason, CloseReason::kCapTotal);
}

TEST_F(Machine, ClientCloseAndErrorsAreRecorded) {
  Begin();
  c_ = m_->OnEof();
  EXPECT_EQ(c_.kind, Kind::kClose);
  EXPECT_EQ(m_->Summary().close_reason, CloseReason::kClientClosed);
  Begin();
  c_ = m_->OnError();
  EXPECT_EQ(m_->Summary().close_reason, CloseReason::kIoError);
  EXPECT_EQ(gauges_.open.load(), 0);
}

// Stutter keeps time: with each write taking a quarter of a second (10,000
// writes due together), the next byte still goes one interval after the
// previous one was due, so the client gets a full byte a second.
TEST_F(Machine, StutterKeepsTimeWhenWritesAreSlow) {
  HoldAll(/*stutter=*/true);
  send_cost_ = std::chrono::milliseconds(250);
  base::SteadyTime t0 = clock_.Now();
  Begin();
  const std::string greeting = "220 mx.test ESMTP Postfix (Debian/GNU)\r\n";
  ASSERT_EQ(wire_, greeting);
  ASSERT_EQ(writes_.size(), greeting.size());
  EXPECT_DOUBLE_EQ(writes_[0].wait, 3);  // the greeting delay
  for (size_t i = 1; i < writes_.size(); ++i) {
    EXPECT_DOUBLE_EQ(writes_[i].wait, 0.75) << "byte " << i;
  }
  // 3 s delay, then one byte a second, plus the last write's own cost.
  double took = std::chrono::duration<double>(clock_.Now() - t0).count();
  EXPECT_DOUBLE_EQ(took, 3 + double(greeting.size() - 1) + 0.25 * 1);
}

// A write later than a whole interval goes at once, and the schedule
// restarts from then: lateness is not made up in a burst.
TEST_F(Machine, StutterDoesNotBurstToCatchUp) {
  HoldAll(/*stutter=*/true);
  send_cost_ = std::chrono::milliseconds(2500);
  Begin();
  ASSERT_GT(writes_.size(), 3u);
  for (size_t i = 1; i < writes_.size(); ++i) {
    EXPECT_DOUBLE_EQ(writes_[i].wait, 0) << "byte " << i;
  }
}

}  // namespace
}  // namespace conn
