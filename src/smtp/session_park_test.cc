// Parking (server_session.h): a session parked and unparked between every
// input it is fed answers exactly as one never parked, for random dialogues
// on every persona.
#include <gtest/gtest.h>

#include <array>
#include <random>

#include "smtp/server_session.h"

namespace smtp {
namespace {

constexpr double kWall = 1764111000;
constexpr const char* kIp = "198.51.100.7";

// The commands a dialogue is made of (whole lines, bodies, BDAT chunks,
// junk, a partial line that the next input completes).
const char* const kPieces[] = {
    "EHLO bot.example\r\n",
    "HELO other.example\r\n",
    "MAIL FROM:<a@spam.example>\r\n",
    "MAIL FROM:<b@x.example> SIZE=2000\r\n",
    "RCPT TO:<u@t.example>\r\n",
    "RCPT TO:<v@w.example>\r\n",
    "DATA\r\n",
    "Subject: x\r\n\r\nbody\nbare lf\r\n.\r\n",
    "BDAT 5\r\nhello",
    "BDAT 0 LAST\r\n",
    "BDAT 3 LAST\r\nabc",
    "RSET\r\n",
    "NOOP\r\n",
    "VRFY root\r\n",
    "HELP\r\n",
    "FOO bar\r\n",
    "\x01\x02 junk\r\n",
    "AUTH LOGIN\r\n",
    "dXNlcg==\r\n",
    "ETRN x.example\r\n",
    "MAIL FROM:<c@y.example",  // completed by the next piece
    ">\r\n",
    "RCPT TO:<trap@t.example>\r\n",
};

struct Side {
  explicit Side(const SessionOptions* o)
      : s(std::make_unique<ServerSession>(o, &out, kIp, 7)) {}
  Output out;
  std::unique_ptr<ServerSession> s;
};

std::string FactsText(const peer::ProtocolFacts& f) {
  std::string t;
  for (const auto* l : {&f.helo_names, &f.mail_from_domains, &f.rcpt_domains}) {
    for (const auto& n : *l) t += n.name + ":" + std::to_string(n.count) + ",";
    t += "|";
  }
  for (uint64_t v :
       {uint64_t(f.transactions), uint64_t(f.messages), uint64_t(f.recipients),
        f.bytes, uint64_t(f.commands), uint64_t(f.auth_attempts),
        uint64_t(f.pipelined_without_ehlo), uint64_t(f.bare_lf),
        uint64_t(f.bare_cr), uint64_t(f.unknown_commands),
        uint64_t(f.protocol_errors), uint64_t(f.limits_hit)}) {
    t += std::to_string(v) + " ";
  }
  for (const auto& r : f.trap_rcpts) t += r + ";";
  return t;
}

TEST(SessionPark, ParkedSessionsAnswerAsIfNeverParked) {
  std::mt19937 rng(17);
  int parked = 0;
  for (int combo = 0; combo < 10; ++combo) {
    const char* persona = std::array{"postfix", "exim", "sendmail", "exchange",
                                     "custom"}[combo % 5];
    Options cfg;
    cfg.persona = persona;
    // A low error limit (its count must survive parking) and a high one
    // (longer dialogues).
    cfg.max_errors = combo < 5 ? 6 : 1000;
    auto o = MakeSessionOptions(cfg, "mx.example.net", true);
    ASSERT_TRUE(o.ok());
    SessionOptions opts = std::move(o).value();
    opts.trap_domains = {"t.example"};
    for (int dialogue = 0; dialogue < 25; ++dialogue) {
      Side a(&opts), b(&opts);
      ASSERT_EQ(a.s->Greet(kWall).bytes, b.s->Greet(kWall).bytes);
      for (int i = 0; i < 30; ++i) {
        std::string in = kPieces[rng() % std::size(kPieces)];
        if (rng() % 3 == 0) in += kPieces[rng() % std::size(kPieces)];
        if (b.s->Parkable()) {  // park b, then resume it in a new session
          auto p = b.s->Park();
          ASSERT_EQ(FactsText(ServerSession::ParkedFacts(p.get())),
                    FactsText(b.s->facts()));
          ASSERT_LT(ServerSession::ParkedSize(p.get()), 1000u);
          b.s = std::make_unique<ServerSession>(&opts, &b.out, kIp, 99);
          b.s->Unpark(p.get());
          ++parked;
        }
        bool closed = false;
        for (int feeds = 0; !in.empty() && feeds < 100; ++feeds) {
          Step sa = a.s->Feed(in, kWall + i);
          Step sb = b.s->Feed(in, kWall + i);
          ASSERT_EQ(sa.bytes, sb.bytes) << persona << " after: " << in;
          ASSERT_EQ(sa.consumed, sb.consumed);
          ASSERT_EQ(sa.action, sb.action);
          in.erase(0, sa.consumed);
          if (sa.action == Action::kClose) {
            closed = true;
            break;
          }
          if (sa.action == Action::kStartTls) {
            a.s->TlsStarted();
            b.s->TlsStarted();
            in.clear();
          }
        }
        ASSERT_EQ(FactsText(a.s->facts()), FactsText(b.s->facts())) << persona;
        ASSERT_EQ(a.s->Parkable(), b.s->Parkable());
        if (closed) break;
      }
    }
  }
  // Most inputs end between commands: parking is the common case.
  EXPECT_GT(parked, 1000);
}

// After EHLO and after a whole transaction a session is parkable, and
// parks in a few dozen bytes; a partial line or an open transaction is not.
TEST(SessionPark, IdleSessionsParkSmall) {
  auto o = MakeSessionOptions(Options{}, "mx.example.net", true);
  ASSERT_TRUE(o.ok());
  SessionOptions opts = std::move(o).value();
  Output out;
  ServerSession s(&opts, &out, kIp, 1);
  s.Greet(kWall);
  EXPECT_TRUE(s.Parkable());
  s.Feed("EHLO client.example.com\r\n", kWall);
  ASSERT_TRUE(s.Parkable());
  EXPECT_LE(ServerSession::ParkedSize(s.Park().get()), 64u);
  s.Feed("MAIL FROM:<a@b.example>\r\n", kWall);
  EXPECT_FALSE(s.Parkable());
  s.Feed("RCPT TO:<c@d.example>\r\nDATA\r\n", kWall);
  EXPECT_FALSE(s.Parkable());
  s.Feed("hi\r\n.\r\n", kWall);
  EXPECT_TRUE(s.Parkable());
  s.Feed("NOOP", kWall);
  EXPECT_FALSE(s.Parkable());  // a partial line
}

}  // namespace
}  // namespace smtp
