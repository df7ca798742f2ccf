#include "ledger/query.h"

#include <gtest/gtest.h>

#include "ledger/test_util.h"

namespace ledger {
namespace {

using testing::Ip;

SourceRecord Rec(const std::string& ip, uint64_t messages, double last_seen) {
  SourceRecord r;
  r.ip = Ip(ip);
  r.messages = messages;
  r.bytes = messages * 100;
  r.last_seen = last_seen;
  r.first_seen = last_seen - 10;
  r.connections = 1;
  return r;
}

base::Result<SourceQuery> Parse(Params p) {
  return ParseQuery(p, {}, 100, 1000);
}

TEST(ParseQuery, Defaults) {
  auto q = Parse({});
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->sort, SortKey::kMessages);
  EXPECT_FALSE(q->ascending);
  EXPECT_EQ(q->limit, 100u);
}

TEST(ParseQuery, AllParameters) {
  auto q = Parse({{"since", "2024-05-01T00:00:00Z"},
                  {"until", "1714608000"},
                  {"cidr", "10.0.0.0/8"},
                  {"min_messages", "3"},
                  {"evidence", "early_talker,bare_lf"},
                  {"sort", "bytes"},
                  {"order", "asc"},
                  {"offset", "20"},
                  {"limit", "10"}});
  ASSERT_TRUE(q.ok()) << q.error();
  EXPECT_DOUBLE_EQ(*q->since, 1714521600);
  EXPECT_DOUBLE_EQ(*q->until, 1714608000);
  EXPECT_EQ(q->cidr->ToString(), "10.0.0.0/8");
  EXPECT_EQ(q->min_messages, 3u);
  EXPECT_EQ(q->evidence,
            uint32_t(Evidence::kEarlyTalker) | uint32_t(Evidence::kBareLf));
  EXPECT_EQ(q->sort, SortKey::kBytes);
  EXPECT_TRUE(q->ascending);
  EXPECT_EQ(q->offset, 20u);
  EXPECT_EQ(q->limit, 10u);
}

TEST(ParseQuery, Errors) {
  const Params bad[] = {
      {{"cidr", "10.0.0.0/33"}},
      {{"cidr", "banana"}},
      {{"min_messages", "-1"}},
      {{"min_messages", "1x"}},
      {{"evidence", "smelly"}},
      {{"sort", "name"}},
      {{"order", "up"}},
      {{"limit", "0"}},
      {{"limit", "1001"}},
      {{"since", "yesterday"}},
      {{"since", "2024-13-01T00:00:00Z"}},
      {{"since", "200"}, {"until", "100"}},
      {{"colour", "blue"}},
  };
  for (const auto& p : bad) {
    EXPECT_FALSE(Parse(p).ok()) << p.begin()->first << "=" << p.begin()->second;
  }
  EXPECT_TRUE(ParseQuery({{"format", "csv"}}, {"format"}, 0, 0).ok());
}

TEST(ParseQuery, IpSortDefaultsToAscending) {
  auto q = Parse({{"sort", "ip"}});
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(q->ascending);
}

TEST(ParseQuery, DelaySecondsSortsDescending) {
  auto q = Parse({{"sort", "delay_seconds"}});
  ASSERT_TRUE(q.ok()) << q.error();
  EXPECT_EQ(q->sort, SortKey::kDelaySeconds);
  EXPECT_FALSE(q->ascending);
  EXPECT_STREQ(SortKeyName(SortKey::kDelaySeconds), "delay_seconds");
}

TEST(RunQuery, SortsByDelaySeconds) {
  std::vector<SourceRecord> all = {Rec("10.0.0.1", 9, 100),
                                   Rec("10.0.0.2", 1, 100),
                                   Rec("10.0.0.3", 5, 100)};
  all[0].delay_seconds = 0.5;
  all[1].delay_seconds = 30;
  all[2].delay_seconds = 0.5;
  SourceQuery q;
  q.sort = SortKey::kDelaySeconds;
  auto page = RunQuery(q, all);
  ASSERT_EQ(page.records.size(), 3u);
  EXPECT_EQ(page.records[0].ip, Ip("10.0.0.2"));
  EXPECT_EQ(page.records[1].ip, Ip("10.0.0.1"));  // tie: ascending IP
  EXPECT_EQ(page.records[2].ip, Ip("10.0.0.3"));
}

TEST(RunQuery, FiltersSortsAndPages) {
  std::vector<SourceRecord> all = {
      Rec("10.0.0.1", 5, 100), Rec("10.0.0.2", 9, 200), Rec("10.1.0.3", 9, 300),
      Rec("192.0.2.1", 1, 400), Rec("2001:db8::1", 7, 500)};
  all[3].early_talker = 1;
  SourceQuery q;
  auto page = RunQuery(q, all);
  EXPECT_EQ(page.total, 5u);
  ASSERT_EQ(page.records.size(), 5u);
  // 9 (ties by IP), 9, 7, 5, 1.
  EXPECT_EQ(page.records[0].ip, Ip("10.0.0.2"));
  EXPECT_EQ(page.records[1].ip, Ip("10.1.0.3"));
  EXPECT_EQ(page.records[2].ip, Ip("2001:db8::1"));
  EXPECT_EQ(page.records[4].ip, Ip("192.0.2.1"));

  q.cidr = base::Cidr::Parse("10.0.0.0/16").value();
  page = RunQuery(q, all);
  EXPECT_EQ(page.total, 2u);

  q = SourceQuery();
  q.since = 200;
  q.until = 500;
  q.sort = SortKey::kLastSeen;
  page = RunQuery(q, all);
  ASSERT_EQ(page.total, 3u);
  EXPECT_EQ(page.records[0].ip, Ip("192.0.2.1"));

  q = SourceQuery();
  q.evidence = uint32_t(Evidence::kEarlyTalker);
  EXPECT_EQ(RunQuery(q, all).total, 1u);

  q = SourceQuery();
  q.min_messages = 7;
  q.offset = 1;
  q.limit = 1;
  page = RunQuery(q, all);
  EXPECT_EQ(page.total, 3u);
  ASSERT_EQ(page.records.size(), 1u);
  EXPECT_EQ(page.records[0].ip, Ip("10.1.0.3"));

  q.offset = 10;
  page = RunQuery(q, all);
  EXPECT_EQ(page.total, 3u);
  EXPECT_TRUE(page.records.empty());
}

TEST(Time, FormatAndParse) {
  EXPECT_EQ(FormatTime(1714521600.7), "2024-05-01T00:00:00Z");
  EXPECT_DOUBLE_EQ(ParseTime("2024-05-01T00:00:00Z").value(), 1714521600);
  EXPECT_DOUBLE_EQ(ParseTime("1.5").value(), 1.5);
  // ISO dates: a day, a time without Z, a blank for the T (all UTC).
  EXPECT_DOUBLE_EQ(ParseTime("2024-05-01").value(), 1714521600);
  EXPECT_DOUBLE_EQ(ParseTime("2024-05-01T00:00:00").value(), 1714521600);
  EXPECT_DOUBLE_EQ(ParseTime("2024-05-01 00:00:00Z").value(), 1714521600);
  EXPECT_FALSE(ParseTime("2024-05").ok());
  EXPECT_FALSE(ParseTime("").ok());
}

}  // namespace
}  // namespace ledger

namespace ledger {
namespace {

// export?offset=18446744073709551615 used to reach SQLite and come back as
// 503 "datatype mismatch": out-of-range values are the client's error.
TEST(ParseQuery, OffsetAndLimitBeyondSigned64AreErrors) {
  for (const char* key : {"offset", "limit"}) {
    Params p{{key, "18446744073709551615"}};
    auto q = ParseQuery(p, {}, 100, 0);
    ASSERT_FALSE(q.ok()) << key;
    EXPECT_NE(q.error().find(key), std::string::npos) << q.error();
  }
  Params ok{{"offset", "9223372036854775807"}};
  EXPECT_TRUE(ParseQuery(ok, {}, 100, 0).ok());
}

TEST(Cursor, FormatsAndParsesEveryKeyExactly) {
  SourceRecord r;
  r.ip = base::IpAddress::Parse("2001:db8::7").value();
  r.messages = 12;
  r.last_seen = 1714564800.1 + 1e-7;  // needs 17 digits
  EXPECT_EQ(FormatCursor(SortKey::kMessages, r), "12_2001:db8::7");
  EXPECT_EQ(FormatCursor(SortKey::kIp, r), "2001:db8::7");
  auto c = ParseCursor(SortKey::kLastSeen, FormatCursor(SortKey::kLastSeen, r));
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->real, r.last_seen);
  EXPECT_EQ(c->ip, r.ip);
  c = ParseCursor(SortKey::kMessages, "12_192.0.2.1");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->count, 12u);
  for (const char* bad : {"", "12", "x_192.0.2.1", "1.5_192.0.2.1",
                          "12_not-an-ip", "-1_192.0.2.1", "12_"}) {
    EXPECT_FALSE(ParseCursor(SortKey::kMessages, bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseCursor(SortKey::kLastSeen, "nan_192.0.2.1").ok());
  EXPECT_FALSE(ParseCursor(SortKey::kLastSeen, "inf_192.0.2.1").ok());
}

TEST(ParseQuery, AfterIsReadWithTheSortGivenAfterIt) {
  // "after" sorts before "sort" in the parameter map.
  Params p{{"after", "1714564800.5_192.0.2.1"}, {"sort", "last_seen"}};
  auto q = ParseQuery(p, {}, 100, 1000);
  ASSERT_TRUE(q.ok()) << q.error();
  ASSERT_TRUE(q->after.has_value());
  EXPECT_EQ(q->after->real, 1714564800.5);
  Params bad{{"after", "1714564800.5_192.0.2.1"}};  // sorted by messages
  auto e = ParseQuery(bad, {}, 100, 1000);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().find("bad after"), std::string::npos) << e.error();
}

}  // namespace
}  // namespace ledger
