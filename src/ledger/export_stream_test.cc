// Streaming exports: the same text as the in-memory rendering, read from
// the store one record at a time, and memory that does not grow with the
// number of sources.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <set>

#include "base/sanitizer.h"
#include "ledger/export.h"
#include "ledger/sqlite_store.h"
#include "ledger/test_util.h"

namespace ledger {
namespace {

using testing::Ip;

const Format kAll[] = {
    Format::kPlain,          Format::kCidr,     Format::kCsv,
    Format::kJsonl,          Format::kRbldnsd,  Format::kRbldnsdIp4set,
    Format::kRbldnsdIp6trie, Format::kNftables, Format::kPostfix,
    Format::kSpamd};

SourceRecord Generated(uint64_t i) {
  SourceRecord r;
  if (i % 5 != 4) {
    r.ip = base::IpAddress::FromV4(0x0a000000u + uint32_t(i * 3));
  } else {
    std::array<uint8_t, 16> b{0x20, 0x01, 0x0d, 0xb8};
    for (int k = 0; k < 8; ++k) b[15 - k] = uint8_t(i >> (8 * k));
    b[7] = uint8_t(i % 3);
    r.ip = base::IpAddress::FromV6(b);
  }
  r.first_seen = 1.7e9 + double(i % 86400);
  r.last_seen = r.first_seen + 60;
  r.connections = 1 + i % 7;
  r.messages = 1 + i % 3;
  r.bytes = 1000 * r.messages;
  r.helo_names = {{"host" + std::to_string(i % 1000) + ".example", 1}};
  return r;
}

// Records made on the fly, by ascending IP: nothing held between calls.
RecordScan Synthetic(uint64_t n) {
  return [n](const Store::Visitor& each) {
    for (uint64_t i = 0; i < n; i += 5) {  // IPv4 first, ascending
      for (uint64_t j = i; j < std::min(n, i + 5); ++j) {
        if (j % 5 == 4) continue;
        if (auto s = each(Generated(j)); !s.ok()) return s;
      }
    }
    std::vector<SourceRecord> v6;
    for (uint64_t j = 4; j < n && j < 2000; j += 5) v6.push_back(Generated(j));
    for (const auto& r : SortedByIp(std::move(v6))) {
      if (auto s = each(r); !s.ok()) return s;
    }
    return base::Status();
  };
}

ExportOptions Opts(Format f, int v4 = 32, int v6 = 128) {
  ExportOptions o;
  o.format = f;
  o.now = 1714528800;
  o.v4_prefix = v4;
  o.v6_prefix = v6;
  o.exempt = {base::Cidr::Parse("10.0.1.0/30").value()};
  return o;
}

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = OpenSqliteStore(dir_.File("l.db"));
    ASSERT_TRUE(s.ok()) << s.error();
    store_ = std::move(s).value();
    std::mt19937 rng(7);
    for (int i = 0; i < 3000; ++i) {
      SourceRecord r = Generated(rng() % 100000);
      if (seen_.insert(r.ip.ToString()).second) records_.push_back(r);
    }
    ASSERT_TRUE(store_->Apply(records_).ok());
  }

  std::string Streamed(const SourceQuery& q, const ExportOptions& o) {
    std::string out;
    auto s = ExportFromStore(store_.get(), q, o, [&](std::string_view t) {
      EXPECT_LE(t.size(), 128u * 1024);  // pieces, not the whole text
      out += t;
      return true;
    });
    EXPECT_TRUE(s.ok()) << s.message();
    return out;
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  std::vector<SourceRecord> records_;
  std::set<std::string> seen_;
};

TEST_F(StreamTest, EveryFormatMatchesTheInMemoryRendering) {
  SourceQuery q;
  q.limit = 0;
  q.sort = SortKey::kIp;
  q.ascending = true;
  auto page = store_->Query(q);
  ASSERT_TRUE(page.ok());
  for (Format f : kAll) {
    for (auto [v4, v6] : {std::pair{32, 128}, {24, 64}, {16, 32}}) {
      SCOPED_TRACE(std::string(FormatName(f)) + " /" + std::to_string(v4) +
                   " /" + std::to_string(v6));
      auto o = Opts(f, v4, v6);
      std::string want = Export(page->records, o);
      EXPECT_FALSE(want.empty());
      EXPECT_EQ(Streamed(q, o), want);
    }
  }
}

TEST_F(StreamTest, OtherOrdersAndPagesMatchToo) {
  SourceQuery q;
  q.sort = SortKey::kMessages;
  q.limit = 500;
  q.offset = 100;
  auto page = store_->Query(q);
  ASSERT_TRUE(page.ok());
  for (Format f : kAll) {
    SCOPED_TRACE(FormatName(f));
    auto o = Opts(f, 24, 48);
    EXPECT_EQ(Streamed(q, o), Export(page->records, o));
  }
}

TEST_F(StreamTest, AReaderThatGoesAwayStopsTheScan) {
  SourceQuery q;
  q.limit = 0;
  int pieces = 0;
  auto s = ExportFromStore(store_.get(), q, Opts(Format::kJsonl),
                           [&](std::string_view) { return ++pieces < 2; });
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(pieces, 2);
}

TEST(SqliteScan, VisitsWhatQueryReturnsAndStopsOnError) {
  testing::TempDir dir;
  auto store = OpenSqliteStore(dir.File("l.db"));
  ASSERT_TRUE(store.ok());
  std::vector<SourceRecord> recs;
  for (int i = 0; i < 50; ++i) recs.push_back(Generated(i));
  ASSERT_TRUE((*store)->Apply(recs).ok());
  SourceQuery q;
  q.sort = SortKey::kLastSeen;
  q.limit = 20;
  q.offset = 5;
  q.cidr = base::Cidr::Parse("10.0.0.0/8").value();
  auto page = (*store)->Query(q);
  ASSERT_TRUE(page.ok());
  std::vector<SourceRecord> seen;
  ASSERT_TRUE((*store)
                  ->Scan(q,
                         [&](const SourceRecord& r) {
                           seen.push_back(r);
                           return base::Status();
                         })
                  .ok());
  EXPECT_EQ(seen, page->records);
  int n = 0;
  auto s = (*store)->Scan(q, [&](const SourceRecord&) {
    return ++n == 3 ? base::Status::Error("enough") : base::Status();
  });
  EXPECT_EQ(s.message(), "enough");
  EXPECT_EQ(n, 3);
}

double PeakMiB() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024;
  }
  return 0;
}

// 400,000 sources in every format: the peak grows by a few MiB at most
// (rendering the same records in memory takes over 200 MiB).
TEST(ExportStream, MemoryDoesNotGrowWithTheSources) {
  // ASan's quarantine keeps freed memory (256 MiB by default), so RSS says
  // nothing about the exporter here; the release build checks it.
  if (base::kSanitizerBuild) GTEST_SKIP() << "RSS is not meaningful under ASan";
  constexpr uint64_t kSources = 400000;
  // Warm up the allocator and the code paths first.
  for (Format f : kAll) {
    ASSERT_TRUE(
        ExportStream(Synthetic(5000), Opts(f, 24, 64), [](std::string_view) {
          return true;
        }).ok());
  }
  double before = PeakMiB();
  for (Format f : kAll) {
    uint64_t bytes = 0;
    auto s = ExportStream(Synthetic(kSources), Opts(f, 32, 128),
                          [&](std::string_view t) {
                            bytes += t.size();
                            return true;
                          });
    ASSERT_TRUE(s.ok()) << FormatName(f) << ": " << s.message();
    EXPECT_GT(bytes, 30000u) << FormatName(f);
  }
  EXPECT_LT(PeakMiB() - before, 16.0);
}

}  // namespace
}  // namespace ledger
