// The connection machine parks its SMTP engine while it idles between
// transactions (waiting for the client, or in a tarpit delay) and resumes
// it, unchanged, when the wait ends.
#include <gtest/gtest.h>

#include <random>
#include <sstream>

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

// What a dialogue showed: every command, the expiry answers, the record.
std::string Record(const peer::SessionSummary& s) {
  std::ostringstream o;
  o << s.client.ToString() << ' ' << s.client_port << ' ' << s.via_proxy
    << s.tls << s.early_talker << s.tarpitted << ' ' << int(s.close_reason)
    << ' ' << s.start_wall << ' ' << s.end_wall << ' ' << s.duration_seconds
    << ' ' << s.delay_seconds << ' ' << s.replies_stuttered << ' '
    << s.slow_reads << " | " << s.transactions << ' ' << s.messages << ' '
    << s.recipients << ' ' << s.bytes << ' ' << s.commands << ' '
    << s.protocol_errors << ' ' << s.limits_hit << ' ' << s.unknown_commands;
  for (const auto& h : s.helo_names) o << ' ' << h.name << '/' << h.count;
  return o.str();
}

// The executor packs a machine idle in a read (Connection::Pack) and makes
// a new one from the bytes (Unpack) when the client speaks or a deadline
// passes. Random dialogues, each played twice: once as is, once packed and
// remade before every event that finds the machine Packable; every
// command, every Expired answer (PackedExpired while packed) and the final
// record must be the same. IPv4 and IPv6 clients, a PROXY header, the
// persona's error sleeps (delay figures), timeouts and a session limit.
TEST_F(Parking, PackedMachinesAnswerAsIfNeverPacked) {
  const std::vector<std::string> kPieces = {
      "EHLO a.example\r\n",
      "HELO b.example\r\n",
      "MAIL FROM:<x@b.example>\r\n",
      "RCPT TO:<y@c.example>\r\n",
      "DATA\r\n",
      "body line\r\n.\r\n",
      "RSET\r\n",
      "NOOP\r\n",
      "junk\r\n",
      "NOO",
      "P\r\n",
      "",  // 100 s pass; the executor's sweeper asks Expired
      "MAIL FROM:<bad\r\n",
      "QUIT\r\n"};
  limits_.session_timeout = std::chrono::seconds(900);
  int packs = 0;
  auto play = [&](const std::vector<int>& script, const std::string& ip,
                  bool proxy, bool pack) {
    base::FakeClock clock;
    Env env = Env{&limits_, &smtp_, &tarpit_, &clock,    &random_,
                  &output_, this,   &gauges_, &stopping_};
    std::ostringstream log;
    auto m = std::make_unique<Connection>(&env);
    Command c = m->Start(*base::IpAddress::Parse(ip), 4000, proxy);
    auto pump = [&] {
      for (int guard = 0; guard < 10000; ++guard) {
        log << int(c.kind) << '[' << c.data << '|' << c.bytes << '|'
            << c.delay.count() << ']';
        if (c.kind == Kind::kSend) {
          c = m->OnSent(c.data.size());
        } else if (c.kind == Kind::kWait) {
          clock.Advance(c.delay);
          c = m->OnTimer(false);
        } else if (c.kind == Kind::kHalfClose) {
          c = m->OnHalfClosed(true);
        } else {
          return;
        }
      }
      ADD_FAILURE() << "the machine does not stop";
    };
    // Packs and remakes the machine, checking PackedExpired on the way.
    auto repack = [&] {
      if (!pack || c.kind != Kind::kRead || !m->Packable()) return;
      std::vector<uint8_t> bytes(m->PackedSize());
      m->Pack(bytes.data());
      auto now = clock.Now();
      for (auto later :
           {now, now + limits_.idle_timeout, now + limits_.session_timeout}) {
        EXPECT_EQ(Connection::PackedExpired(bytes.data(), later),
                  m->Expired(later));
      }
      m = std::make_unique<Connection>(&env);
      m->Unpack(bytes.data());
      ++packs;
    };
    pump();
    if (proxy) {
      // Bytes after the header: an early talker.
      c = m->OnRead(
          std::string("PROXY TCP6 2001:db8::9 2001:db8::1 5000 25\r\n") +
          (script.size() % 2 ? "NOOP\r\n" : ""));
      pump();
    }
    for (int piece : script) {
      if (c.kind == Kind::kClose) break;
      repack();
      if (kPieces[piece].empty()) {
        clock.Advance(std::chrono::seconds(100));
        auto why = m->Expired(clock.Now());
        log << " expired " << (why ? int(*why) : -1);
        if (why) c = m->OnAbort(*why);
        pump();
        continue;
      }
      std::string_view in = kPieces[piece];
      while (!in.empty() && c.kind == Kind::kRead) {
        size_t n = std::min(in.size(), c.bytes);
        c = m->OnRead(in.substr(0, n));
        in.remove_prefix(n);
        pump();
      }
    }
    if (c.kind != Kind::kClose) {
      repack();
      c = m->OnEof();
      pump();
    }
    log << '\n' << Record(m->Summary());
    return log.str();
  };
  std::mt19937 rng(17);
  for (int round = 0; round < 300; ++round) {
    std::vector<int> script;
    int len = 1 + int(rng() % 40);
    for (int i = 0; i < len; ++i) {
      script.push_back(int(rng() % (kPieces.size() - 1)));
    }
    if (rng() % 4 == 0) script.push_back(int(kPieces.size() - 1));  // QUIT
    const char* ip = round % 2 ? "192.0.2.7" : "2001:db8::7";
    bool proxy = round % 5 == 0;
    EXPECT_EQ(play(script, ip, proxy, true), play(script, ip, proxy, false))
        << "round " << round;
  }
  EXPECT_GT(packs, 1000);
  for (const auto& [ip, n] : per_ip_) EXPECT_EQ(n, 0) << ip.ToString();
}

}  // namespace
}  // namespace conn
