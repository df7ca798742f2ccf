// The STIX 2.1 export checked against the parts of the specification it
// implements: the bundle and indicator required properties (sections 8 and
// 4.7), identifiers (2.9: "<type>--" and an RFC 4122 UUID), timestamps
// (3.2: RFC 3339, UTC, "Z"; created/modified with milliseconds), the
// pattern grammar for the one comparison form written (9: "[" object-type
// ":" property " = " quoted string "]"), and valid_until after valid_from.
#include "ledger/export_stix.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "ledger/export.h"
#include "ledger/feed_checks.h"
#include "ledger/test_util.h"
#include "nlohmann/json.hpp"

namespace ledger {
namespace {

using testing::Ip;

const auto Rec = testing::FeedRec;
using testing::CheckIndicator;

std::vector<SourceRecord> Sample() {
  auto bot = Rec("198.51.100.7", 1.7e9 + 0.25, 1.7e9 + 60);
  bot.bare_lf = 4;
  bot.early_talker = 1;
  auto tarpitted = Rec("2001:db8::5", 1.7e9, 1.7e9 + 3600);
  tarpitted.tarpitted_sessions = 1;
  return {bot, tarpitted, Rec("203.0.113.200", 1.7e9, 1.7e9)};
}

ExportOptions Stix() {
  ExportOptions o;
  o.format = Format::kStix;
  o.now = 1.8e9;
  return o;
}

bool IsId(const nlohmann::json& v, const std::string& type) {
  return testing::IsStixId(v, type);
}

TEST(Stix, BundleOfIndicatorsFollowsTheSpecification) {
  auto text = Export(Sample(), Stix());
  auto bundle = nlohmann::json::parse(text);  // throws if not JSON
  EXPECT_EQ(bundle.at("type"), "bundle");
  EXPECT_TRUE(IsId(bundle.at("id"), "bundle"));
  ASSERT_TRUE(bundle.at("objects").is_array());
  std::set<std::string> ips, ids;
  for (const auto& o : bundle["objects"]) {
    ips.insert(CheckIndicator(o));
    ids.insert(o.at("id"));
  }
  EXPECT_EQ(ips, (std::set<std::string>{"198.51.100.7", "2001:db8::5",
                                        "203.0.113.200"}));
  EXPECT_EQ(ids.size(), 3u);
}

TEST(Stix, FieldsOfOneIndicator) {
  auto o = nlohmann::json::parse(StixIndicator(Sample()[0]));
  EXPECT_EQ(o["pattern"], "[ipv4-addr:value = '198.51.100.7']");
  EXPECT_EQ(o["created"], "2023-11-14T22:13:20.250Z");
  EXPECT_EQ(o["modified"], "2023-11-14T22:14:20.000Z");
  EXPECT_EQ(o["valid_from"], "2023-11-14T22:13:20.250Z");
  EXPECT_EQ(o["valid_until"], "2023-11-21T22:14:20.000Z");  // + 7 days
  EXPECT_EQ(o["labels"],
            nlohmann::json({"spam-source", "early_talker", "bare_lf"}));
  EXPECT_NE(o["description"].get<std::string>().find("3 messages in 2"),
            std::string::npos);
  auto v6 = nlohmann::json::parse(StixIndicator(Sample()[1]));
  EXPECT_EQ(v6["pattern"], "[ipv6-addr:value = '2001:db8::5']");
  // A ledger keyed per /64: the indicator names the network.
  auto net = nlohmann::json::parse(StixIndicator(Sample()[1], 64));
  EXPECT_EQ(net["pattern"], "[ipv6-addr:value = '2001:db8::5/64']");
  EXPECT_EQ(nlohmann::json::parse(StixIndicator(Sample()[0], 64))["pattern"],
            "[ipv4-addr:value = '198.51.100.7']");
  EXPECT_NE(v6["description"].get<std::string>().find("tarpit"),
            std::string::npos);
}

TEST(Stix, IdsAreStablePerAddressAndDistinct) {
  EXPECT_EQ(StixId("indicator", "spamsink source 192.0.2.1"),
            StixId("indicator", "spamsink source 192.0.2.1"));
  std::set<std::string> ids;
  for (int i = 0; i < 10000; ++i) {
    auto id =
        StixId("indicator", "spamsink source 10.0." + std::to_string(i / 256) +
                                "." + std::to_string(i % 256));
    EXPECT_TRUE(IsId(id, "indicator")) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 10000u);
  // A later export of the same source: same id, newer modified.
  auto later = Sample()[0];
  later.last_seen += 86400;
  auto a = nlohmann::json::parse(StixIndicator(Sample()[0]));
  auto b = nlohmann::json::parse(StixIndicator(later));
  EXPECT_EQ(a["id"], b["id"]);
  EXPECT_GT(b["modified"].get<std::string>(), a["modified"].get<std::string>());
}

TEST(Stix, EmptyAndExemptAndStreamed) {
  auto empty = nlohmann::json::parse(Export({}, Stix()));
  EXPECT_EQ(empty["objects"], nlohmann::json::array());
  auto o = Stix();
  o.exempt = {base::Cidr::Parse("198.51.100.0/24").value()};
  auto bundle = nlohmann::json::parse(Export(Sample(), o));
  EXPECT_EQ(bundle["objects"].size(), 2u);
  // Many records stream in several pieces; the whole is still one bundle.
  std::vector<SourceRecord> many;
  for (uint32_t i = 0; i < 3000; ++i) {
    many.push_back(Rec(base::IpAddress::FromV4(0x0a000000u + i).ToString(),
                       1.7e9, 1.7e9 + i));
  }
  int pieces = 0;
  std::string text;
  ASSERT_TRUE(ExportStream(VectorScan(many), Stix(), [&](std::string_view t) {
                ++pieces;
                text += t;
                return true;
              }).ok());
  EXPECT_GT(pieces, 1);
  EXPECT_EQ(nlohmann::json::parse(text)["objects"].size(), 3000u);
}

TEST(Stix, FormatNameAndContentType) {
  Format f;
  ASSERT_TRUE(ParseFormat("stix", &f));
  EXPECT_EQ(f, Format::kStix);
  EXPECT_STREQ(ContentType(f), "application/stix+json;version=2.1");
  EXPECT_EQ(StixTime(0), "1970-01-01T00:00:00.000Z");
}

}  // namespace
}  // namespace ledger
