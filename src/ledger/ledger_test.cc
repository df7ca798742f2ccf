#include "ledger/ledger.h"

#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "base/log.h"
#include "ledger/sqlite_store.h"
#include "ledger/test_util.h"

namespace ledger {
namespace {

using testing::Ip;
using testing::Session;
using testing::TempDir;

Options Config() {
  Options c;
  c.flush_interval = 1;
  c.retention_days = 1;
  return c;
}

TEST(Ledger, RecordsFromManyThreadsAreExactAfterFlush) {
  base::FakeClock clock;
  auto l = Ledger::Create(NewMemoryStore(), Config(), &clock, false);
  constexpr int kThreads = 4, kSessions = 500, kIps = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kSessions; ++i) {
        l->Record(Session("10.0.0." + std::to_string(i % kIps), 1 + t, 100));
        if (i == kSessions / 2 && t == 0) l->Flush();  // flush mid-stream
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(l->Flush().ok());
  auto stats = l->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->totals.sources, uint64_t(kIps));
  EXPECT_EQ(stats->totals.connections, uint64_t(kThreads * kSessions));
  // Each thread t sends 1 + t messages per session: sum = 1+2+3+4 = 10.
  EXPECT_EQ(stats->totals.messages, uint64_t(10 * kSessions));
  auto one = l->Source(Ip("10.0.0.7"));
  ASSERT_TRUE(one.ok() && one->has_value());
  EXPECT_EQ((*one)->connections, uint64_t(kThreads * kSessions / kIps));
  EXPECT_EQ(l->Metrics().sessions_recorded, uint64_t(kThreads * kSessions));
}

TEST(Ledger, FailingStoreKeepsDataAndRetries) {
  base::FakeClock clock;
  auto mem = NewMemoryStore();
  auto fault = std::make_unique<FaultStore>(mem.get());
  FaultStore* f = fault.get();
  auto l = Ledger::Create(std::move(fault), Config(), &clock, false);
  f->FailWrites(-1, "database is locked");
  l->Record(Session("192.0.2.1", 2, 10));
  EXPECT_FALSE(l->Flush().ok());
  l->Record(Session("192.0.2.1", 3, 10));
  l->Record(Session("192.0.2.2", 1, 10));
  EXPECT_FALSE(l->Flush().ok());
  EXPECT_EQ(mem->GetTotals()->connections, 0u);
  auto m = l->Metrics();
  EXPECT_EQ(m.commit_errors, 2u);
  EXPECT_EQ(m.pending_sources, 2u);
  EXPECT_FALSE(m.store_healthy);
  f->FailWrites(0);
  ASSERT_TRUE(l->Flush().ok());
  auto t = mem->GetTotals().value();
  EXPECT_EQ(t.connections, 3u);
  EXPECT_EQ(t.messages, 6u);
  EXPECT_EQ(t.sources, 2u);
  m = l->Metrics();
  EXPECT_TRUE(m.store_healthy);
  EXPECT_EQ(m.pending_sources, 0u);
  EXPECT_EQ(m.sessions_dropped, 0u);
}

TEST(Ledger, PendingMemoryBoundDropsNewSourcesOnly) {
  base::FakeClock clock;
  auto mem = NewMemoryStore();
  auto fault = std::make_unique<FaultStore>(mem.get());
  FaultStore* f = fault.get();
  auto c = Config();
  c.max_pending_bytes = 3 * sizeof(SourceRecord) + sizeof(SourceRecord) / 2;
  auto l = Ledger::Create(std::move(fault), c, &clock, false);
  f->FailWrites(-1);
  for (int i = 0; i < 10; ++i)
    l->Record(Session("192.0.2." + std::to_string(i), 1, 1));
  EXPECT_FALSE(l->Flush().ok());
  EXPECT_EQ(l->Metrics().pending_sources, 3u);
  EXPECT_EQ(l->Metrics().sessions_dropped, 7u);
  // Sources already pending still merge while the bound is reached; the
  // others are dropped again.
  for (int i = 0; i < 10; ++i)
    l->Record(Session("192.0.2." + std::to_string(i), 1, 1));
  EXPECT_FALSE(l->Flush().ok());
  EXPECT_EQ(l->Metrics().sessions_dropped, 14u);
  f->FailWrites(0);
  ASSERT_TRUE(l->Flush().ok());
  EXPECT_EQ(mem->GetTotals()->connections, 6u);
  EXPECT_EQ(mem->GetTotals()->sources, 3u);
}

TEST(Ledger, CloseCommitsEverythingThenDrops) {
  TempDir dir;
  auto c = Config();
  c.db_path = dir.File("l.db");
  c.flush_interval = 3600;  // only Close() will commit
  {
    auto l = Ledger::Open(c);
    ASSERT_TRUE(l.ok()) << l.error();
    for (int i = 0; i < 100; ++i) {
      (*l)->Record(
          Session("2001:db8:" + std::to_string(i % 10) + "::1", 1, 50));
    }
    ASSERT_TRUE((*l)->Close().ok());
    (*l)->Record(Session("2001:db8::1", 1, 50));
    EXPECT_EQ((*l)->Metrics().sessions_dropped, 1u);
  }
  auto l = Ledger::Open(c);
  ASSERT_TRUE(l.ok()) << l.error();
  auto t = (*l)->GetStats()->totals;
  EXPECT_EQ(t.sources, 10u);
  EXPECT_EQ(t.connections, 100u);
  EXPECT_EQ(t.bytes, 5000u);
}

TEST(Ledger, WriterThreadCommitsWithoutBeingAsked) {
  TempDir dir;
  auto c = Config();
  c.db_path = dir.File("l.db");
  c.flush_interval = 0.01;
  auto l = Ledger::Open(c).value();
  l->Record(
      Session("203.0.113.9", 1, 1, base::SystemClock::Get().WallSeconds()));
  // Bounded wait for the writer (10 ms interval): up to ~10 s.
  bool seen = false;
  for (int i = 0; i < 1000 && !seen; ++i) {
    seen = l->Source(Ip("203.0.113.9"))->has_value();
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(seen);
  EXPECT_GE(l->Metrics().commits, 1u);
}

TEST(Ledger, RatesCoverTheLastMinuteAndHour) {
  base::FakeClock clock;
  auto l = Ledger::Create(NewMemoryStore(), Config(), &clock, false);
  l->Record(Session("192.0.2.1", 2, 100));
  ASSERT_TRUE(l->Flush().ok());
  clock.Advance(std::chrono::seconds(30));
  l->Record(Session("192.0.2.2", 1, 50));
  ASSERT_TRUE(l->Flush().ok());
  auto s = l->GetStats().value();
  EXPECT_EQ(s.last_minute.connections, 2u);
  EXPECT_EQ(s.last_minute.messages, 3u);
  EXPECT_EQ(s.last_hour.bytes, 150u);
  clock.Advance(std::chrono::seconds(45));  // first is 75 s old
  s = l->GetStats().value();
  EXPECT_EQ(s.last_minute.connections, 1u);
  EXPECT_EQ(s.last_hour.connections, 2u);
  clock.Advance(std::chrono::hours(2));
  s = l->GetStats().value();
  EXPECT_EQ(s.last_hour.connections, 0u);
  EXPECT_EQ(s.totals.connections, 2u);  // rates age, totals stay
}

TEST(Ledger, HourlySeriesKeepsTheLastDayByHour) {
  base::FakeClock clock;  // starts 800 s into a UTC hour
  auto l = Ledger::Create(NewMemoryStore(), Config(), &clock, false);
  double first = 0;
  auto h = l->HourlySeries(&first);
  ASSERT_EQ(h.size(), size_t(kHourlyBuckets));
  EXPECT_EQ(std::fmod(first, 3600), 0);
  EXPECT_LE(first + 23 * 3600, clock.WallSeconds());
  EXPECT_GT(first + 24 * 3600, clock.WallSeconds());
  for (const auto& w : h) EXPECT_EQ(w.connections + w.new_sources, 0u);

  l->Record(Session("192.0.2.1", 2, 100));
  l->Record(Session("192.0.2.2", 1, 50));
  ASSERT_TRUE(l->Flush().ok());
  h = l->HourlySeries();
  EXPECT_EQ(h.back().connections, 2u);
  EXPECT_EQ(h.back().messages, 3u);
  EXPECT_EQ(h.back().new_sources, 2u);

  clock.Advance(std::chrono::hours(1));
  l->Record(Session("192.0.2.1", 1, 10));  // known: not new
  l->Record(Session("192.0.2.3", 1, 10));
  ASSERT_TRUE(l->Flush().ok());
  h = l->HourlySeries();
  EXPECT_EQ(h[22].connections, 2u);
  EXPECT_EQ(h[22].new_sources, 2u);
  EXPECT_EQ(h[23].connections, 2u);
  EXPECT_EQ(h[23].messages, 2u);
  EXPECT_EQ(h[23].new_sources, 1u);

  // 24 hours after the first: its hour has left the day, the second's is
  // the oldest bucket.
  clock.Advance(std::chrono::hours(23));
  h = l->HourlySeries();
  EXPECT_EQ(h[0].connections, 2u);
  EXPECT_EQ(h[0].new_sources, 1u);
  uint64_t sum = 0;
  for (const auto& w : h) sum += w.connections;
  EXPECT_EQ(sum, 2u);
  // A day later the ring slots are reused: nothing old shows.
  clock.Advance(std::chrono::hours(24));
  l->Record(Session("192.0.2.4", 1, 10));
  ASSERT_TRUE(l->Flush().ok());
  sum = 0;
  for (const auto& w : l->HourlySeries()) sum += w.connections;
  EXPECT_EQ(sum, 1u);
}

TEST(Ledger, RetentionExpiresByLastSeen) {
  base::FakeClock clock;
  double now = clock.WallSeconds();
  auto l = Ledger::Create(NewMemoryStore(), Config(), &clock, false);
  l->Record(Session("192.0.2.1", 1, 1, now - 2 * 86400));  // 2 days old
  l->Record(Session("192.0.2.2", 1, 1, now - 3600));
  ASSERT_TRUE(l->Flush().ok());
  ASSERT_TRUE(l->ExpireNow().ok());
  EXPECT_FALSE(l->Source(Ip("192.0.2.1"))->has_value());
  EXPECT_TRUE(l->Source(Ip("192.0.2.2"))->has_value());
  EXPECT_EQ(l->Metrics().expired, 1u);
}

// --log-level debug: one line per store batch (sources, bytes, time, ok);
// at info level nothing.
TEST(Ledger, DebugLevelLogsEachBatch) {
  base::FakeClock clock;
  auto l = Ledger::Create(NewMemoryStore(), Config(), &clock, false);
  base::LogLevel was = base::GetLogLevel();
  ::testing::internal::CaptureStderr();
  base::SetLogLevel(base::LogLevel::kInfo);
  l->Record(Session("192.0.2.1", 1, 10));
  ASSERT_TRUE(l->Flush().ok());
  base::SetLogLevel(base::LogLevel::kDebug);
  l->Record(Session("192.0.2.2", 1, 10));
  l->Record(Session("192.0.2.3", 1, 10));
  ASSERT_TRUE(l->Flush().ok());
  base::SetLogLevel(was);
  std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(log.find("sources=1 "), std::string::npos) << log;
  EXPECT_NE(log.find("debug event=ledger_batch sources=2 bytes="),
            std::string::npos)
      << log;
  EXPECT_NE(log.find(" ok=yes"), std::string::npos) << log;
}

TEST(Ledger, PrometheusTextHasLedgerFigures) {
  base::FakeClock clock;
  auto l = Ledger::Create(NewMemoryStore(), Config(), &clock, false);
  l->Record(Session("192.0.2.1", 1, 1, 1.7e9, 7));
  ASSERT_TRUE(l->Flush().ok());
  std::string text = base::RenderPrometheus(l->PrometheusMetrics());
  EXPECT_NE(text.find("spamsink_ledger_sessions_recorded_total 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("spamsink_ledger_sources 1\n"), std::string::npos);
  EXPECT_NE(text.find("spamsink_session_duration_seconds_bucket{le=\"5\"} 0\n"),
            std::string::npos);
  EXPECT_NE(
      text.find("spamsink_session_duration_seconds_bucket{le=\"10\"} 1\n"),
      std::string::npos);
  EXPECT_NE(text.find("spamsink_session_duration_seconds_count 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("spamsink_ledger_commits_total 1\n"), std::string::npos);
}

// One host rotating through its /64 is one source; other /64s, IPv4 and
// ipv6_prefix = 128 are not merged. Lookups and exports use the network.
TEST(Ledger, Ipv6SourcesAreAggregatedPerPrefix) {
  base::FakeClock clock;
  for (int prefix : {64, 128}) {
    Options c = Config();
    c.ipv6_prefix = prefix;
    auto l = Ledger::Create(NewMemoryStore(), c, &clock, false);
    for (int i = 1; i <= 50; ++i) {
      l->Record(Session("2001:db8:1:2::" + std::to_string(i), 1, 10));
    }
    l->Record(Session("2001:db8:1:3::1", 1, 10));
    l->Record(Session("::ffff:192.0.2.1", 1, 10));
    ASSERT_TRUE(l->Flush().ok());
    auto t = l->GetStats()->totals;
    EXPECT_EQ(t.sources, prefix == 64 ? 3u : 52u) << prefix;
    EXPECT_EQ(t.connections, 52u);
    auto r = l->Source(Ip("2001:db8:1:2::ffff"));
    ASSERT_TRUE(r.ok());
    if (prefix == 128) {
      EXPECT_FALSE(r->has_value());
      continue;
    }
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ((*r)->ip, Ip("2001:db8:1:2::"));
    EXPECT_EQ((*r)->connections, 50u);
    EXPECT_EQ(l->Key(Ip("192.0.2.1")), Ip("192.0.2.1"));
    std::string out;
    SourceQuery q;
    q.sort = SortKey::kIp;
    q.ascending = true;
    q.limit = 0;
    ExportOptions o;
    ASSERT_TRUE(l->ExportSources(q, o, [&](std::string_view text) {
                   out += text;
                   return true;
                 }).ok());
    EXPECT_NE(out.find("2001:db8:1:2::/64"), std::string::npos) << out;
    EXPECT_NE(out.find("2001:db8:1:3::/64"), std::string::npos) << out;
    EXPECT_EQ(out.find("2001:db8:1:2::1\n"), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace ledger
