#include "sender/client_session.h"

#include <gtest/gtest.h>

#include <memory>

#include "sender/plan.h"

namespace sender {
namespace {

using std::chrono::milliseconds;
using Want = ClientSession::Want;

// Drives one engine with scripted server replies and a fake clock.
class Harness {
 public:
  explicit Harness(SessionSetup setup = {}, MessageShape shape = {},
                   int64_t budget = 1)
      : setup_(std::move(setup)), plan_(budget) {
    shape.size_min = shape.size_max = 100;
    gen_ = std::make_unique<MessageGenerator>(
        std::move(MessageGenerator::Create(shape, &clock_, 1)).value());
    session_ = std::make_unique<ClientSession>(&setup_, gen_.get(), &stats_,
                                               nullptr, &plan_, nullptr);
    EXPECT_TRUE(plan_.Claim());
    session_->Begin(1, 42, clock_.Now());
  }
  void Connect(milliseconds after = milliseconds(1)) {
    clock_.Advance(after);
    session_->OnConnected(clock_.Now());
  }
  // Everything the engine wants written now ("" if it does not).
  std::string Written() {
    if (session_->want() != Want::kWrite) return "";
    std::string_view pieces[ClientSession::kMaxPieces];
    int n = session_->Output(pieces);
    std::string out;
    for (int i = 0; i < n; ++i) out += pieces[i];
    session_->OnWritten(clock_.Now());
    return out;
  }
  void Reply(std::string_view bytes, milliseconds after = milliseconds(0)) {
    ASSERT_EQ(session_->want(), Want::kRead);
    clock_.Advance(after);
    session_->OnBytes(bytes, clock_.Now());
  }
  void Finish() { session_->Finish(clock_.Now(), 0); }
  uint64_t Count(Outcome o) const { return stats_.messages[int(o)]; }
  uint64_t Sessions(Outcome o) const { return stats_.sessions[int(o)]; }

  SessionSetup setup_;
  base::FakeClock clock_;
  LoadPlan plan_;
  Stats stats_;
  std::unique_ptr<MessageGenerator> gen_;
  std::unique_ptr<ClientSession> session_;
};

constexpr std::string_view kEhloPlain = "250-sink\r\n250 8BITMIME\r\n";
constexpr std::string_view kEhloPipe =
    "250-sink\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-STARTTLS\r\n"
    "250 SIZE 1000000\r\n";

TEST(ClientSessionTest, LockStepWithoutPipelining) {
  Harness h;
  h.Connect();
  EXPECT_EQ(h.Written(), "");
  h.Reply("220 sink ESMTP\r\n", milliseconds(5));
  EXPECT_EQ(h.Written(), "EHLO localhost\r\n");
  h.Reply(kEhloPlain);
  EXPECT_EQ(h.Written(), "MAIL FROM:<smtpsend@localhost>\r\n");
  h.Reply("250 ok\r\n");
  EXPECT_EQ(h.Written(), "RCPT TO:<smtpsink@localhost>\r\n");
  h.Reply("250 ok\r\n");
  EXPECT_EQ(h.Written(), "DATA\r\n");
  h.Reply("354 go\r\n");
  std::string content = h.Written();
  EXPECT_NE(content.find("Message-ID: <"), std::string::npos);
  EXPECT_EQ(content.substr(content.size() - 5), "\r\n.\r\n");
  h.Reply("250 queued\r\n", milliseconds(2));
  EXPECT_EQ(h.Written(), "QUIT\r\n");
  h.Reply("221 bye\r\n");
  EXPECT_EQ(h.session_->want(), Want::kClose);
  h.Finish();
  EXPECT_EQ(h.Count(Outcome::kAccepted), 1u);
  EXPECT_EQ(h.Sessions(Outcome::kAccepted), 1u);
  EXPECT_EQ(h.stats_.phase[int(Phase::kBanner)].max(), 5000000);
  EXPECT_EQ(h.stats_.phase[int(Phase::kEndOfData)].max(), 2000000);
  EXPECT_EQ(h.stats_.phase[int(Phase::kConnect)].max(), 1000000);
  EXPECT_EQ(h.stats_.held_ns_total, 7000000);
}

TEST(ClientSessionTest, PipelinesEnvelopeAndChainsNextMessage) {
  SessionSetup setup;
  setup.messages_per_connection = 2;
  MessageShape shape;
  shape.recipients = 2;
  Harness h(setup, shape, 2);
  h.Connect();
  h.Reply("220 sink\r\n");
  EXPECT_EQ(h.Written(), "EHLO localhost\r\n");
  h.Reply(kEhloPipe);
  const std::string env =
      "MAIL FROM:<smtpsend@localhost>\r\nRCPT TO:<smtpsink+1@localhost>\r\n"
      "RCPT TO:<smtpsink+2@localhost>\r\nDATA\r\n";
  EXPECT_EQ(h.Written(), env);
  // Replies may arrive split anywhere.
  h.Reply("250 ok\r\n25");
  h.Reply("0 ok\r\n250 ok\r\n354 ");
  h.Reply("go\r\n");
  std::string w = h.Written();
  EXPECT_EQ(w.substr(w.size() - 3 - env.size()), ".\r\n" + env);
  h.Reply("250 queued\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
  w = h.Written();
  EXPECT_EQ(w.substr(w.size() - 9), ".\r\nQUIT\r\n");
  h.Reply("250 queued\r\n221 bye\r\n");
  EXPECT_EQ(h.session_->want(), Want::kClose);
  h.Finish();
  EXPECT_EQ(h.Count(Outcome::kAccepted), 2u);
  EXPECT_EQ(h.stats_.recipients_accepted, 4u);
  EXPECT_EQ(h.stats_.phase[int(Phase::kRcpt)].count(), 4u);
}

TEST(ClientSessionTest, NoPipeliningFlagKeepsLockStep) {
  SessionSetup setup;
  setup.pipelining = false;
  Harness h(setup);
  h.Connect();
  h.Reply("220 sink\r\n");
  h.Written();
  h.Reply(kEhloPipe);
  EXPECT_EQ(h.Written(), "MAIL FROM:<smtpsend@localhost>\r\n");
}

TEST(ClientSessionTest, FallsBackToHelo) {
  Harness h;
  h.Connect();
  h.Reply("220 old sink\r\n");
  EXPECT_EQ(h.Written(), "EHLO localhost\r\n");
  h.Reply("502 5.5.1 what?\r\n");
  EXPECT_EQ(h.Written(), "HELO localhost\r\n");
  h.Reply("250 hello\r\n");
  EXPECT_EQ(h.Written(), "MAIL FROM:<smtpsend@localhost>\r\n");
  EXPECT_EQ(h.stats_.helo_fallbacks, 1u);
}

TEST(ClientSessionTest, BannerRejectionIsPermanent) {
  Harness h;
  h.Connect();
  h.Reply("554 5.7.1 go away\r\n");
  EXPECT_EQ(h.Written(), "QUIT\r\n");
  EXPECT_EQ(h.session_->want(), Want::kClose);
  h.Finish();
  EXPECT_EQ(h.Count(Outcome::kRejectedPermanent), 1u);
  EXPECT_EQ(h.Sessions(Outcome::kRejectedPermanent), 1u);
  EXPECT_EQ(h.stats_.FailedMessages(), 1u);
}

TEST(ClientSessionTest, InputAfterRejectionDoesNotEatTheQuit) {
  Harness h;
  h.Connect();
  h.Reply("554 5.7.1 go away\r\n554 5.7.1 really\r\n");
  EXPECT_EQ(h.Written(), "QUIT\r\n");
  h.Finish();
  EXPECT_EQ(h.Count(Outcome::kRejectedPermanent), 1u);
}

// A reply that arrives before its command was written (a server that
// answers early, or repeats its banner) has no latency to measure: it must
// not be timed from the clock's epoch.
TEST(ClientSessionTest, ReplyBeforeItsCommandIsNotTimed) {
  Harness h;
  h.clock_.Advance(std::chrono::hours(1));  // the epoch is far away
  h.Connect();
  h.Reply("220 sink\r\n", milliseconds(5));
  ASSERT_EQ(h.session_->want(), Want::kWrite);  // EHLO queued, not written
  h.session_->OnBytes("250 sink\r\n", h.clock_.Now());
  const auto& ehlo = h.stats_.phase[int(Phase::kEhlo)];
  EXPECT_EQ(ehlo.count(), 0u);
  EXPECT_LT(ehlo.max(), int64_t(1e9)) << "timed from the epoch";
  // The engine carries on: EHLO and the MAIL it already answered go out.
  EXPECT_EQ(h.Written(),
            "EHLO localhost\r\nMAIL FROM:<smtpsend@localhost>\r\n");
}

TEST(ClientSessionTest, ServiceClosingIsTemporary) {
  Harness h;
  h.Connect();
  h.Reply("220 sink\r\n");
  h.Written();
  h.Reply("421 4.3.2 shutting down\r\n");
  EXPECT_EQ(h.session_->want(), Want::kClose);
  h.Finish();
  EXPECT_EQ(h.Count(Outcome::kRejectedTemporary), 1u);
  EXPECT_EQ(h.Sessions(Outcome::kRejectedTemporary), 1u);
}

TEST(ClientSessionTest, RejectedMailResetsAndGoesOn) {
  SessionSetup setup;
  setup.messages_per_connection = 2;
  Harness h(setup, {}, 2);
  h.Connect();
  h.Reply("220 sink\r\n");
  h.Written();
  h.Reply(kEhloPlain);
  EXPECT_EQ(h.Written(), "MAIL FROM:<smtpsend@localhost>\r\n");
  h.Reply("451 4.3.0 try later\r\n");
  EXPECT_EQ(h.Written(), "RSET\r\n");
  h.Reply("250 ok\r\n");
  EXPECT_EQ(h.Written(), "MAIL FROM:<smtpsend@localhost>\r\n");
  h.Reply("250 ok\r\n");
  EXPECT_EQ(h.Written(), "RCPT TO:<smtpsink@localhost>\r\n");
  h.Reply("550 5.1.1 no such user\r\n");
  EXPECT_EQ(h.Written(), "RSET\r\n");
  h.Reply("250 ok\r\n");
  EXPECT_EQ(h.Written(), "QUIT\r\n");
  h.Reply("221 bye\r\n");
  h.Finish();
  EXPECT_EQ(h.Count(Outcome::kRejectedTemporary), 1u);
  EXPECT_EQ(h.Count(Outcome::kRejectedPermanent), 1u);
  EXPECT_EQ(h.stats_.recipients_rejected, 1u);
  EXPECT_EQ(h.Sessions(Outcome::kAccepted), 1u);  // the session was clean
}

TEST(ClientSessionTest, PipelinedRcptRejectionSkipsContent) {
  Harness h;
  h.Connect();
  h.Reply("220 sink\r\n");
  h.Written();
  h.Reply(kEhloPipe);
  h.Written();
  h.Reply("250 ok\r\n550 5.1.1 unknown\r\n554 5.5.1 no valid recipients\r\n");
  EXPECT_EQ(h.Written(), "RSET\r\nQUIT\r\n");
  h.Reply("250 ok\r\n221 bye\r\n");
  h.Finish();
  EXPECT_EQ(h.Count(Outcome::kRejectedPermanent), 1u);
  EXPECT_EQ(h.stats_.TotalMessages(), 1u);
}

TEST(ClientSessionTest, EndOfDataTemporaryFailure) {
  Harness h;
  h.Connect();
  h.Reply("220 sink\r\n");
  h.Written();
  h.Reply(kEhloPipe);
  h.Written();
  h.Reply("250 ok\r\n250 ok\r\n354 go\r\n");
  h.Written();
  h.Reply("452 4.3.1 full\r\n221 bye\r\n");
  h.Finish();
  EXPECT_EQ(h.Count(Outcome::kRejectedTemporary), 1u);
}

TEST(ClientSessionTest, TimeoutFailsInFlightMessages) {
  Harness h;
  h.Connect();
  h.Reply("220 sink\r\n");
  h.Written();
  EXPECT_EQ(h.session_->deadline(), h.clock_.Now() + std::chrono::seconds(60));
  h.session_->OnTimeout(h.clock_.Now());
  EXPECT_EQ(h.session_->want(), Want::kClose);
  h.Finish();
  EXPECT_EQ(h.Count(Outcome::kFailedTimeout), 1u);
  EXPECT_EQ(h.Sessions(Outcome::kFailedTimeout), 1u);
}

TEST(ClientSessionTest, ConnectFailure) {
  Harness h;
  h.session_->OnConnectFailed(h.clock_.Now());
  EXPECT_EQ(h.session_->want(), Want::kClose);
  h.Finish();
  EXPECT_EQ(h.Count(Outcome::kFailedConnect), 1u);
  EXPECT_EQ(h.Sessions(Outcome::kFailedConnect), 1u);
  EXPECT_EQ(h.stats_.phase[int(Phase::kSession)].count(), 0u);
}

TEST(ClientSessionTest, GarbageReplyIsProtocolFailure) {
  Harness h;
  h.Connect();
  h.Reply("hello there\r\n");
  h.Finish();
  EXPECT_EQ(h.Count(Outcome::kFailedProtocol), 1u);
}

TEST(ClientSessionTest, OverlongReplyIsProtocolFailure) {
  Harness h;
  h.Connect();
  h.Reply("220 " + std::string(ClientSession::kMaxReplyLine, 'x'));
  EXPECT_EQ(h.session_->want(), Want::kClose);
  h.Finish();
  EXPECT_EQ(h.Count(Outcome::kFailedProtocol), 1u);
}

TEST(ClientSessionTest, HangUpMidSessionIsProtocolFailure) {
  Harness h;
  h.Connect();
  h.Reply("220 sink\r\n");
  h.Written();
  h.session_->OnPeerClosed(h.clock_.Now());
  h.Finish();
  EXPECT_EQ(h.Count(Outcome::kFailedProtocol), 1u);
}

TEST(ClientSessionTest, HangUpAfterQuitIsClean) {
  Harness h;
  h.Connect();
  h.Reply("220 sink\r\n");
  h.Written();
  h.Reply(kEhloPipe);
  h.Written();
  h.Reply("250 ok\r\n250 ok\r\n354 go\r\n");
  h.Written();
  h.Reply("250 ok\r\n");
  h.session_->OnPeerClosed(h.clock_.Now());
  h.Finish();
  EXPECT_EQ(h.Count(Outcome::kAccepted), 1u);
  EXPECT_EQ(h.Sessions(Outcome::kAccepted), 1u);
}

TEST(ClientSessionTest, BdatCarriesExactLength) {
  SessionSetup setup;
  setup.bdat = true;
  Harness h(setup);
  h.Connect();
  h.Reply("220 sink\r\n");
  h.Written();
  h.Reply(kEhloPipe);
  std::string w = h.Written();
  size_t at = w.find("BDAT ");
  ASSERT_NE(at, std::string::npos);
  size_t eol = w.find("\r\n", at);
  size_t len = std::stoul(w.substr(at + 5, eol - at - 5));
  EXPECT_EQ(w.substr(eol - 4, 4), "LAST");
  EXPECT_EQ(w.size() - (eol + 2), len);
  EXPECT_EQ(w.find("DATA\r\n"), std::string::npos);
  h.Reply("250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n");
  EXPECT_EQ(h.Written(), "QUIT\r\n");
  h.Reply("221 bye\r\n");
  h.Finish();
  EXPECT_EQ(h.Count(Outcome::kAccepted), 1u);
}

TEST(ClientSessionTest, StartTlsThenEhloAgain) {
  SessionSetup setup;
  setup.starttls_share = 1;
  Harness h(setup);
  h.Connect();
  h.Reply("220 sink\r\n");
  h.Written();
  h.Reply(kEhloPipe);
  EXPECT_EQ(h.Written(), "STARTTLS\r\n");
  h.Reply("220 go ahead\r\n", milliseconds(1));
  EXPECT_EQ(h.session_->want(), Want::kTls);
  h.clock_.Advance(milliseconds(3));
  h.session_->OnTlsDone(true, h.clock_.Now());
  EXPECT_EQ(h.Written(), "EHLO localhost\r\n");
  EXPECT_EQ(h.stats_.tls_sessions, 1u);
  EXPECT_EQ(h.stats_.phase[int(Phase::kStartTls)].max(), 4000000);
}

TEST(ClientSessionTest, StartTlsUnavailableGoesOnInClear) {
  SessionSetup setup;
  setup.starttls_share = 1;
  Harness h(setup);
  h.Connect();
  h.Reply("220 sink\r\n");
  h.Written();
  h.Reply(kEhloPlain);
  EXPECT_EQ(h.Written(), "MAIL FROM:<smtpsend@localhost>\r\n");
  EXPECT_EQ(h.stats_.tls_unavailable, 1u);
}

TEST(ClientSessionTest, FailedHandshakeIsProtocolFailure) {
  SessionSetup setup;
  setup.starttls_share = 1;
  Harness h(setup);
  h.Connect();
  h.Reply("220 sink\r\n");
  h.Written();
  h.Reply(kEhloPipe);
  h.Written();
  h.Reply("220 go ahead\r\n");
  h.session_->OnTlsDone(false, h.clock_.Now());
  h.Finish();
  EXPECT_EQ(h.Count(Outcome::kFailedProtocol), 1u);
}

TEST(ClientSessionTest, AbortInDataHangsUpHalfWay) {
  SessionSetup setup;
  setup.abort_share = 1;
  Harness h(setup);
  h.Connect();
  h.Reply("220 sink\r\n");
  h.Written();
  h.Reply(kEhloPipe);
  h.Written();
  h.Reply("250 ok\r\n250 ok\r\n354 go\r\n");
  std::string w = h.Written();
  EXPECT_EQ(w.find("\r\n.\r\n"), std::string::npos);
  EXPECT_EQ(h.session_->want(), Want::kClose);
  h.Finish();
  EXPECT_EQ(h.Count(Outcome::kAborted), 1u);
  EXPECT_EQ(h.stats_.FailedMessages(), 0u);
  EXPECT_EQ(h.Sessions(Outcome::kAborted), 1u);
}

TEST(ClientSessionTest, EarlyTalkerSpeaksBeforeBanner) {
  SessionSetup setup;
  setup.early_talk_share = 1;
  Harness h(setup);
  h.Connect();
  EXPECT_EQ(h.Written(), "EHLO localhost\r\n");
  h.Reply("220 sink\r\n");
  EXPECT_EQ(h.session_->want(), Want::kRead);  // EHLO is not sent twice
  h.Reply(kEhloPlain);
  EXPECT_EQ(h.Written(), "MAIL FROM:<smtpsend@localhost>\r\n");
  EXPECT_EQ(h.stats_.early_talkers, 1u);
}

TEST(ClientSessionTest, HoldsAfterEhloThenSends) {
  SessionSetup setup;
  setup.hold = std::chrono::seconds(10);
  Harness h(setup);
  h.Connect();
  h.Reply("220 sink\r\n");
  h.Written();
  h.Reply(kEhloPlain);
  EXPECT_EQ(h.session_->want(), Want::kHold);
  EXPECT_EQ(h.session_->deadline(), h.clock_.Now() + std::chrono::seconds(70));
  h.clock_.Advance(std::chrono::seconds(10));
  h.session_->OnHoldDone(h.clock_.Now());
  EXPECT_EQ(h.Written(), "MAIL FROM:<smtpsend@localhost>\r\n");
  EXPECT_EQ(h.stats_.held_sessions, 1u);
  EXPECT_LT(h.stats_.held_ns_total, 1000000000);  // the hold is ours
}

TEST(ClientSessionTest, ExhaustedBudgetQuitsAfterGreeting) {
  SessionSetup setup;
  setup.messages_per_connection = 5;
  Harness h(setup, {}, 1);
  h.Connect();
  h.Reply("220 sink\r\n");
  h.Written();
  h.Reply(kEhloPipe);
  h.Written();
  h.Reply("250 ok\r\n250 ok\r\n354 go\r\n");
  std::string w = h.Written();
  EXPECT_EQ(w.substr(w.size() - 9), ".\r\nQUIT\r\n");
}

TEST(ClientSessionTest, EngineIsReusableAcrossConnections) {
  Harness h({}, {}, 2);
  for (int round = 0; round < 2; ++round) {
    if (round) {
      ASSERT_TRUE(h.plan_.Claim());
      h.session_->Begin(2, 43, h.clock_.Now());
    }
    h.Connect();
    h.Reply("220 sink\r\n");
    h.Written();
    h.Reply(kEhloPipe);
    h.Written();
    h.Reply("250 ok\r\n250 ok\r\n354 go\r\n");
    h.Written();
    h.Reply("250 ok\r\n221 bye\r\n");
    h.Finish();
  }
  EXPECT_EQ(h.Count(Outcome::kAccepted), 2u);
  EXPECT_EQ(h.stats_.TotalSessions(), 2u);
}

size_t Occurrences(const std::string& s, std::string_view what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos;
       at = s.find(what, at + 1)) {
    ++n;
  }
  return n;
}

// Bulk: whole transactions back to back, content without waiting for the
// 354; two in flight, the third after the first one's reply.
TEST(ClientSessionTest, BulkWritesWholeTransactionsTwoInFlight) {
  SessionSetup setup;
  setup.messages_per_connection = 3;
  setup.bulk = true;
  Harness h(setup, {}, 3);
  h.Connect();
  h.Reply("220 sink\r\n");
  EXPECT_EQ(h.Written(), "EHLO localhost\r\n");
  h.Reply(kEhloPipe);
  std::string first = h.Written();
  EXPECT_EQ(Occurrences(first, "MAIL FROM:"), 2u);
  EXPECT_EQ(Occurrences(first, "DATA\r\n"), 2u);
  EXPECT_EQ(Occurrences(first, "\r\n.\r\n"), 2u);
  EXPECT_EQ(h.Written(), "");  // the third waits for a slot
  h.Reply("250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n");
  std::string third = h.Written();
  EXPECT_EQ(Occurrences(third, "MAIL FROM:"), 1u);
  EXPECT_EQ(Occurrences(third, "\r\n.\r\n"), 1u);
  h.Reply("250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n");
  EXPECT_EQ(h.Written(), "QUIT\r\n");
  h.Reply("250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n");
  EXPECT_EQ(h.Written(), "");  // one QUIT only
  h.Reply("221 bye\r\n");
  EXPECT_EQ(h.session_->want(), Want::kClose);
  h.Finish();
  EXPECT_EQ(h.Count(Outcome::kAccepted), 3u);
}

// Bulk: a refused DATA after its content went out ends the session (the
// server read the content as commands).
TEST(ClientSessionTest, BulkRefusedDataEndsTheSession) {
  SessionSetup setup;
  setup.bulk = true;
  Harness h(setup, {}, 1);
  h.Connect();
  h.Reply("220 sink\r\n");
  h.Written();
  h.Reply(kEhloPipe);
  EXPECT_EQ(Occurrences(h.Written(), "\r\n.\r\n"), 1u);
  h.Reply("250 ok\r\n250 ok\r\n554 no\r\n");
  EXPECT_EQ(h.session_->want(), Want::kClose);
  h.Finish();
  EXPECT_EQ(h.Count(Outcome::kRejectedPermanent), 1u);
}

}  // namespace
}  // namespace sender
