#include "ledger/source.h"

#include <gtest/gtest.h>

#include <functional>

#include "ledger/test_util.h"

namespace ledger {
namespace {

using testing::Ip;
using testing::Session;

TEST(MergeSession, AddsCountersAndTimes) {
  SourceRecord r;
  r.ip = Ip("192.0.2.1");
  auto s1 = Session("192.0.2.1", 2, 100, 1000, 5);
  s1.tls = true;
  s1.early_talker = true;
  s1.bare_lf = 3;
  s1.close_reason = peer::CloseReason::kIdleTimeout;
  s1.tarpitted = true;
  s1.delay_seconds = 7.5;
  s1.replies_stuttered = 4;
  s1.slow_reads = 2;
  auto s2 = Session("192.0.2.1", 0, 0, 900, 50);
  s2.via_proxy = true;
  s2.auth_attempts = 2;
  s2.delay_seconds = 0.25;  // waited, though not held as a tarpit session
  s2.replies_stuttered = 1;
  MergeSession(&r, s1);
  MergeSession(&r, s2);
  EXPECT_EQ(r.connections, 2u);
  EXPECT_EQ(r.sessions_with_mail, 1u);
  EXPECT_EQ(r.messages, 2u);
  EXPECT_EQ(r.recipients, 4u);
  EXPECT_EQ(r.bytes, 100u);
  EXPECT_DOUBLE_EQ(r.seconds_held, 55);
  EXPECT_DOUBLE_EQ(r.first_seen, 850);
  EXPECT_DOUBLE_EQ(r.last_seen, 1000);
  EXPECT_EQ(r.tls_sessions, 1u);
  EXPECT_EQ(r.proxied_sessions, 1u);
  EXPECT_EQ(r.auth_attempts, 2u);
  EXPECT_EQ(r.early_talker, 1u);
  EXPECT_EQ(r.bare_lf, 3u);
  EXPECT_EQ(r.tarpitted_sessions, 1u);
  EXPECT_DOUBLE_EQ(r.delay_seconds, 7.75);
  EXPECT_EQ(r.replies_stuttered, 5u);
  EXPECT_EQ(r.slow_reads, 2u);
  EXPECT_EQ(r.close_reasons[int(peer::CloseReason::kIdleTimeout)], 1u);
  EXPECT_EQ(r.close_reasons[int(peer::CloseReason::kQuit)], 1u);
  EXPECT_EQ(r.EvidenceMask(), uint32_t(Evidence::kEarlyTalker) |
                                  uint32_t(Evidence::kBareLf) |
                                  uint32_t(Evidence::kAuthAttempts));
}

TEST(MergeName, MostRecentFirstAndBounded) {
  std::vector<peer::NameCount> list;
  for (size_t i = 0; i < peer::kMaxNames + 3; ++i) {
    MergeName(&list, "host" + std::to_string(i), 1);
  }
  ASSERT_EQ(list.size(), peer::kMaxNames);
  EXPECT_EQ(list.front().name, "host" + std::to_string(peer::kMaxNames + 2));
  EXPECT_EQ(list.back().name, "host3");  // host0..2 fell off
  MergeName(&list, "host5", 4);
  EXPECT_EQ(list.front().name, "host5");
  EXPECT_EQ(list.front().count, 5u);
  EXPECT_EQ(list.size(), peer::kMaxNames);
  MergeName(&list, std::string(1000, 'x'), 1);
  EXPECT_EQ(list.front().name.size(), peer::kMaxNameLength);
}

TEST(MergeRecord, EqualsMergingSessionsDirectly) {
  // Merging per-batch deltas must give the same record as merging every
  // session into one record.
  std::vector<peer::SessionSummary> sessions;
  for (int i = 0; i < 20; ++i) {
    auto s = Session("2001:db8::7", i % 3, 10 * i, 1000 + i, i);
    peer::AddName(&s.helo_names, "helo" + std::to_string(i % 11));
    peer::AddName(&s.rcpt_domains, "d" + std::to_string(i % 4) + ".example");
    s.unknown_commands = i % 2;
    s.tarpitted = i % 2 == 0;
    s.delay_seconds = i * 0.5;
    s.replies_stuttered = i;
    s.slow_reads = i % 3;
    sessions.push_back(s);
  }
  SourceRecord direct;
  direct.ip = Ip("2001:db8::7");
  for (const auto& s : sessions) MergeSession(&direct, s);
  SourceRecord batched;
  batched.ip = direct.ip;
  for (size_t start = 0; start < sessions.size(); start += 6) {
    SourceRecord delta;
    delta.ip = direct.ip;
    for (size_t i = start; i < std::min(sessions.size(), start + 6); ++i) {
      MergeSession(&delta, sessions[i]);
    }
    MergeRecord(&batched, delta);
  }
  EXPECT_EQ(batched, direct);
  EXPECT_EQ(direct.helo_names.front().name, "helo8");  // session 19: 19%11
  EXPECT_EQ(batched.tarpitted_sessions, 10u);
  EXPECT_DOUBLE_EQ(batched.delay_seconds, 95);  // 0.5 * (0 + ... + 19)
  EXPECT_EQ(batched.replies_stuttered, 190u);
  EXPECT_EQ(batched.slow_reads, 19u);  // 7 ones and 6 twos
}

TEST(SourceRecord, EqualitySeesTarpitFields) {
  SourceRecord a;
  const std::function<void(SourceRecord*)> changes[] = {
      [](SourceRecord* r) { r->tarpitted_sessions = 1; },
      [](SourceRecord* r) { r->delay_seconds = 0.5; },
      [](SourceRecord* r) { r->replies_stuttered = 1; },
      [](SourceRecord* r) { r->slow_reads = 1; },
  };
  for (size_t i = 0; i < std::size(changes); ++i) {
    SourceRecord b;
    changes[i](&b);
    EXPECT_NE(a, b) << "field " << i;
  }
}

TEST(Evidence, NamesRoundTrip) {
  for (size_t i = 0; i < EvidenceNames().size(); ++i) {
    Evidence e;
    ASSERT_TRUE(ParseEvidence(EvidenceNames()[i], &e));
    EXPECT_EQ(uint32_t(e), 1u << i);
  }
  Evidence e;
  EXPECT_FALSE(ParseEvidence("nope", &e));
}

TEST(CloseReason, IndexRoundTrip) {
  for (int i = 0; i < kNumCloseReasons; ++i) {
    EXPECT_EQ(CloseReasonIndex(CloseReasonKey(i)), i);
  }
  EXPECT_EQ(CloseReasonIndex("nope"), -1);
}

}  // namespace
}  // namespace ledger
