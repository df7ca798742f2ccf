// The MISP feed: files that parse as JSON, a manifest that lists every
// event file, hashes.csv rows that are the MD5 of each attribute's value
// with its event, one event per UTC day, and ip-src attributes that are
// exactly the sources' addresses.
#include "ledger/export_misp.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "ledger/feed_checks.h"
#include "ledger/test_util.h"
#include "nlohmann/json.hpp"

namespace ledger {
namespace {

using testing::Ip;
using testing::TempDir;

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

const auto Rec = testing::FeedRec;

TEST(Md5, Rfc1321TestSuite) {
  EXPECT_EQ(Md5Hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(Md5Hex("a"), "0cc175b9c0f1b6a831c399e269772661");
  EXPECT_EQ(Md5Hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(Md5Hex("message digest"), "f96b697d7cb7938d525a2f31aaf161d0");
  EXPECT_EQ(Md5Hex("12345678901234567890123456789012345678901234567890123456"
                   "789012345678901234567890"),
            "57edf4a22be3c955ac49da2e2107b67a");
}

TEST(Misp, FeedParsesAndListsEverySourceOnce) {
  TempDir dir;
  auto store = NewMemoryStore();
  const double day1 = 1764201600;  // 2025-11-27T00:00:00Z
  std::vector<SourceRecord> recs = {
      Rec("198.51.100.7", day1 - 100, day1 + 10),
      Rec("192.0.2.1", day1, day1 + 86399),
      Rec("2001:db8::5", day1, day1 + 86400 + 5),
      Rec("203.0.113.9", day1, day1 + 2 * 86400 + 1),
      Rec("192.0.2.200", day1, day1 + 2 * 86400 + 2)};
  recs[0].bare_lf = 2;
  recs[3].tarpitted_sessions = 1;
  ASSERT_TRUE(store->Apply(recs).ok());
  SourceQuery q;
  q.limit = 0;
  MispOptions o;
  o.now = day1 + 3 * 86400;
  o.exempt = {base::Cidr::Parse("192.0.2.200/32").value()};
  auto events = WriteMispFeed(store.get(), q, o, dir.File("feed"));
  ASSERT_TRUE(events.ok()) << events.error();
  EXPECT_EQ(*events, 3u);

  auto seen = testing::CheckMispFeed(
      [&](const std::string& name) {
        return ReadAll(dir.path() / "feed" / name);
      },
      o.now);
  EXPECT_EQ(seen.manifest.size(), 3u);
  std::set<std::string> values;
  for (const auto& [v, ev] : seen.value_event) values.insert(v);
  EXPECT_EQ(values, (std::set<std::string>{"198.51.100.7", "192.0.2.1",
                                           "2001:db8::5", "203.0.113.9"}));
  EXPECT_EQ(seen.dates,
            (std::set<std::string>{"2025-11-27", "2025-11-28", "2025-11-29"}));
  EXPECT_EQ(seen.hash_rows, 4u);
  auto manifest = seen.manifest;
  for (const auto& [id, head] : manifest.items()) {
    auto ev = nlohmann::json::parse(
        ReadAll(dir.path() / "feed" / (id + ".json")))["Event"];
    EXPECT_EQ(ev["Orgc"]["name"], "spamsink");
  }

  // The same day exported again keeps its event's uuid.
  auto again = WriteMispFeed(store.get(), q, o, dir.File("feed2"));
  ASSERT_TRUE(again.ok());
  auto m2 =
      nlohmann::json::parse(ReadAll(dir.path() / "feed2" / "manifest.json"));
  EXPECT_EQ(m2, manifest);
}

TEST(Misp, TagsCarryTheEvidenceAndIpv6NetworksAreCidr) {
  auto r = Rec("2001:db8::", 1.7e9, 1.7e9);
  EXPECT_EQ(MispValue(r, 64), "2001:db8::/64");
  EXPECT_EQ(MispValue(r, 128), "2001:db8::");
  EXPECT_EQ(MispTime(1.7e9 + 0.5), "2023-11-14T22:13:20.500000+00:00");
  TempDir dir;
  auto store = NewMemoryStore();
  r.bare_lf = 1;
  ASSERT_TRUE(store->Apply({r}).ok());
  SourceQuery q;
  q.limit = 0;
  MispOptions o;
  o.record_v6_prefix = 64;
  ASSERT_TRUE(WriteMispFeed(store.get(), q, o, dir.File("f")).ok());
  auto manifest =
      nlohmann::json::parse(ReadAll(dir.path() / "f" / "manifest.json"));
  auto ev = nlohmann::json::parse(
      ReadAll(dir.path() / "f" / (manifest.begin().key() + ".json")))["Event"];
  ASSERT_EQ(ev["Attribute"].size(), 1u);
  EXPECT_EQ(ev["Attribute"][0]["value"], "2001:db8::/64");
  EXPECT_EQ(ev["Attribute"][0]["Tag"][0]["name"],
            "spamsink:evidence=\"bare_lf\"");
}

// The streamed files (the API's) are the directory's, byte for byte; an
// event is found by its uuid among the recent days.
TEST(Misp, StreamedFilesEqualTheDirectory) {
  TempDir dir;
  auto store = NewMemoryStore();
  const double day1 = 1764201600;  // 2025-11-27T00:00:00Z
  ASSERT_TRUE(store
                  ->Apply({Rec("198.51.100.7", day1, day1 + 10),
                           Rec("2001:db8::5", day1, day1 + 86400 + 5),
                           Rec("203.0.113.9", day1, day1 + 86400 + 7)})
                  .ok());
  SourceQuery q;
  q.limit = 0;
  MispOptions o;
  o.now = day1 + 3 * 86400;
  ASSERT_TRUE(WriteMispFeed(store.get(), q, o, dir.File("feed")).ok());
  auto stream = [&](MispFile f) {
    std::string out;
    EXPECT_TRUE(StreamMispIndex(store.get(), q, o, f, [&](std::string_view t) {
                  out.append(t);
                  return true;
                }).ok());
    return out;
  };
  EXPECT_EQ(stream(MispFile::kManifest),
            ReadAll(dir.path() / "feed" / "manifest.json"));
  EXPECT_EQ(stream(MispFile::kHashes),
            ReadAll(dir.path() / "feed" / "hashes.csv"));
  auto manifest =
      nlohmann::json::parse(ReadAll(dir.path() / "feed" / "manifest.json"));
  ASSERT_EQ(manifest.size(), 2u);
  for (const auto& [id, head] : manifest.items()) {
    std::string day = MispEventDay(o, id);
    EXPECT_EQ(day, head["date"]);
    std::string out;
    ASSERT_TRUE(
        StreamMispEvent(store.get(), q, o, day, [&](std::string_view t) {
          out.append(t);
          return true;
        }).ok());
    EXPECT_EQ(out, ReadAll(dir.path() / "feed" / (id + ".json")));
  }
  EXPECT_EQ(MispEventDay(o, "00000000-0000-4000-8000-000000000000"), "");
  // A client gone stops the stream with an error.
  EXPECT_FALSE(StreamMispIndex(store.get(), q, o, MispFile::kHashes,
                               [](std::string_view) { return false; })
                   .ok());
}

}  // namespace
}  // namespace ledger
