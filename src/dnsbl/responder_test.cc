#include "dnsbl/responder.h"

#include <gtest/gtest.h>

#include "base/metrics.h"
#include "dnsbl/test_util.h"

namespace dnsbl {
namespace {

using testing::MakeQuery;
using testing::Parse;

constexpr double kNow = 1.8e9;

class ResponderTest : public ::testing::Test {
 protected:
  void SetUp() override { Make(); }
  void Make() {
    auto r = Responder::Create(o_, &index_);
    ASSERT_TRUE(r.ok()) << r.error();
    r_ = std::move(r).value();
  }
  std::string Ask(const std::string& packet, bool tcp = false,
                  const char* from = "192.0.2.1", double now = kNow) {
    return r_->Answer(reinterpret_cast<const uint8_t*>(packet.data()),
                      packet.size(), base::IpAddress::Parse(from).value(), tcp,
                      now);
  }
  testing::Parsed Q(const std::string& name, uint16_t type) {
    return Parse(Ask(MakeQuery(name, type)));
  }
  void Session(const char* ip, uint32_t messages, bool early = false,
               bool tarpitted = false, double end = kNow - 10) {
    peer::SessionSummary s;
    s.client = base::IpAddress::Parse(ip).value();
    s.messages = messages;
    s.early_talker = early;
    s.tarpitted = tarpitted;
    s.start_wall = end - 5;
    s.end_wall = end;
    index_.Update(s);
  }
  std::vector<uint32_t> A(const testing::Parsed& p) {
    std::vector<uint32_t> v;
    for (const auto& r : p.records) {
      if (r.type == kTypeA) {
        v.push_back(uint32_t(uint8_t(r.rdata[0])) << 24 |
                    uint32_t(uint8_t(r.rdata[3])));
      }
    }
    return v;
  }

  Options o_ = [] {
    Options o;
    o.zone = "bl.example.net";
    o.rate_limit = 0;
    return o;
  }();
  Index index_{1000};
  std::unique_ptr<Responder> r_;
};

TEST_F(ResponderTest, TestPointsOfRfc5782) {
  auto p = Q("2.0.0.127.bl.example.net", kTypeA);
  EXPECT_EQ(p.rcode(), kRcodeNoError);
  EXPECT_TRUE(p.aa());
  EXPECT_EQ(A(p), (std::vector<uint32_t>{0x7f000002}));
  EXPECT_EQ(Q("1.0.0.127.bl.example.net", kTypeA).rcode(), kRcodeNxDomain);
  // ::FFFF:7F00:2 in reversed nibbles.
  std::string v6 =
      "2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
      "0.0.bl.example.net";
  EXPECT_EQ(A(Q(v6, kTypeA)), (std::vector<uint32_t>{0x7f000002}));
  v6[0] = '1';
  EXPECT_EQ(Q(v6, kTypeA).rcode(), kRcodeNxDomain);
  auto txt = Q("2.0.0.127.bl.example.net", kTypeTxt);
  ASSERT_EQ(txt.an, 1);
  EXPECT_NE(txt.records[0].rdata.find("test point"), std::string::npos);
}

TEST_F(ResponderTest, ListsLiveFromSessionsWithReasons) {
  EXPECT_EQ(Q("7.2.0.192.bl.example.net", kTypeA).rcode(), kRcodeNxDomain);
  Session("192.0.2.7", 2, /*early=*/true, /*tarpitted=*/true);
  auto p = Q("7.2.0.192.bl.example.net", kTypeA);
  EXPECT_EQ(p.rcode(), kRcodeNoError);
  EXPECT_EQ(A(p), (std::vector<uint32_t>{0x7f000002, 0x7f000003, 0x7f000004}));
  EXPECT_EQ(p.records[0].ttl, 300u);
  auto t = Q("7.2.0.192.bl.example.net", kTypeTxt);
  ASSERT_EQ(t.an, 1);
  const auto& txt = t.records[0].rdata;
  EXPECT_NE(txt.find("2 messages in 1 connections"), std::string::npos);
  EXPECT_NE(txt.find("early_talker"), std::string::npos);
  EXPECT_NE(txt.find("tarpitted 1"), std::string::npos);
  EXPECT_NE(
      txt.find(
          "first seen 2027-01-15T07:59:45Z, last seen 2027-01-15T07:59:50Z"),
      std::string::npos)
      << txt;
  // Another type at a listed name: NODATA with the SOA.
  auto mx = Q("7.2.0.192.bl.example.net", 15);
  EXPECT_EQ(mx.rcode(), kRcodeNoError);
  EXPECT_EQ(mx.an, 0);
  EXPECT_EQ(mx.ns, 1);
}

TEST_F(ResponderTest, PolicyThresholdsWindowAndAllowList) {
  o_.min_messages = 3;
  o_.min_connections = 0;
  o_.list_tarpitted = false;
  o_.window_seconds = 3600;
  o_.allow = {"198.51.100.0/24"};
  Make();
  Session("192.0.2.8", 2);
  EXPECT_EQ(Q("8.2.0.192.bl.example.net", kTypeA).rcode(), kRcodeNxDomain);
  Session("192.0.2.8", 1);
  EXPECT_EQ(Q("8.2.0.192.bl.example.net", kTypeA).rcode(), kRcodeNoError);
  Session("192.0.2.9", 0, false, /*tarpitted=*/true);
  EXPECT_EQ(Q("9.2.0.192.bl.example.net", kTypeA).rcode(), kRcodeNxDomain);
  Session("198.51.100.1", 50, true);
  EXPECT_EQ(Q("1.100.51.198.bl.example.net", kTypeA).rcode(), kRcodeNxDomain);
  Session("192.0.2.10", 50, false, false, kNow - 7200);
  EXPECT_EQ(Q("10.2.0.192.bl.example.net", kTypeA).rcode(), kRcodeNxDomain);
}

TEST_F(ResponderTest, Ipv6InNibbles) {
  Session("2001:db8::1", 1);
  // 2001:0db8:0000:...:0001 reversed: 1, 23 zeros, 8.b.d.0.1.0.0.2.
  std::string name = "1.";
  for (int i = 0; i < 23; ++i) name += "0.";
  name += "8.b.d.0.1.0.0.2.bl.example.net";
  EXPECT_EQ(A(Q(name, kTypeA)), (std::vector<uint32_t>{0x7f000002}));
}

// The reversed-nibble name of an IPv6 address under zone.
std::string Nibbles(const char* ip, const std::string& zone) {
  auto b = base::IpAddress::Parse(ip).value().bytes();
  const char* hex = "0123456789abcdef";
  std::string name;
  for (int i = 15; i >= 0; --i) {
    name += hex[b[size_t(i)] & 15];
    name += '.';
    name += hex[b[size_t(i)] >> 4];
    name += '.';
  }
  return name + zone;
}

// Issue 13 item 1: with ledger.ipv6_prefix 64 the index keeps one entry per
// /64 (live sessions and the ledger's seed alike), and a query for any
// address inside a listed /64 is answered as the /64; a neighbouring /64
// is not listed.
TEST(ResponderIpv6, AnyAddressInAListedPrefixIsListed) {
  Options o;
  o.zone = "bl.example.net";
  o.rate_limit = 0;
  Index index(1000, 64);
  auto r = Responder::Create(o, &index);
  ASSERT_TRUE(r.ok()) << r.error();
  auto ask = [&](const char* ip) {
    std::string q = MakeQuery(Nibbles(ip, o.zone), kTypeA);
    return Parse((*r)->Answer(
                     reinterpret_cast<const uint8_t*>(q.data()), q.size(),
                     base::IpAddress::Parse("192.0.2.1").value(), false, kNow))
        .rcode();
  };
  peer::SessionSummary s;
  s.client = base::IpAddress::Parse("2001:db8:1:2::5").value();
  s.messages = 1;
  s.start_wall = kNow - 15;
  s.end_wall = kNow - 10;
  index.Update(s);
  // A later session from another address of the same /64 adds to its entry.
  s.client = base::IpAddress::Parse("2001:db8:1:2:aaaa::7").value();
  index.Update(s);
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(
      index.Lookup(base::IpAddress::Parse("2001:db8:1:2::1").value())->messages,
      2u);
  EXPECT_EQ(ask("2001:db8:1:2::5"), kRcodeNoError);
  EXPECT_EQ(ask("2001:db8:1:2:ffff:ffff:ffff:ffff"), kRcodeNoError);
  EXPECT_EQ(ask("2001:db8:1:2::"), kRcodeNoError);
  EXPECT_EQ(ask("2001:db8:1:3::5"), kRcodeNxDomain);
  EXPECT_EQ(ask("2001:db8:1:1:ffff:ffff:ffff:ffff"), kRcodeNxDomain);
  // Seeded from the ledger, whose record is the network itself.
  ledger::SourceRecord rec;
  rec.ip = base::IpAddress::Parse("2001:db8:7:7::").value();
  rec.messages = 3;
  rec.connections = 1;
  rec.first_seen = kNow - 100;
  rec.last_seen = kNow - 50;
  index.Seed(rec);
  EXPECT_EQ(ask("2001:db8:7:7:1234:5678:9abc:def0"), kRcodeNoError);
  EXPECT_EQ(ask("2001:db8:7:8::1"), kRcodeNxDomain);
  // With the default prefix (128) addresses stay apart.
  Index exact(1000);
  exact.Update(s);
  EXPECT_TRUE(
      exact.Lookup(base::IpAddress::Parse("2001:db8:1:2:aaaa::7").value()));
  EXPECT_FALSE(exact.Lookup(base::IpAddress::Parse("2001:db8:1:2::1").value()));
}

TEST_F(ResponderTest, ApexNamesOutsideAndGarbage) {
  auto soa = Q("bl.example.net", kTypeSoa);
  EXPECT_EQ(soa.rcode(), kRcodeNoError);
  ASSERT_EQ(soa.an, 1);
  EXPECT_EQ(soa.records[0].type, kTypeSoa);
  auto ns = Q("BL.EXAMPLE.NET", kTypeNs);
  ASSERT_EQ(ns.an, 1);
  EXPECT_EQ(ns.records[0].type, kTypeNs);
  auto a = Q("bl.example.net", kTypeA);  // NODATA
  EXPECT_EQ(a.rcode(), kRcodeNoError);
  EXPECT_EQ(a.an, 0);
  ASSERT_EQ(a.ns, 1);
  EXPECT_EQ(a.records[0].ttl, 60u);
  EXPECT_EQ(Q("example.net", kTypeA).rcode(), kRcodeRefused);
  EXPECT_EQ(Q("2.0.0.127.bl.example.org", kTypeA).rcode(), kRcodeRefused);
  for (const char* bad : {"256.0.0.127", "02.0.0.127", "x.0.0.127", "1.2.3",
                          "1.2.3.4.5", "www"}) {
    auto p = Q(std::string(bad) + ".bl.example.net", kTypeA);
    EXPECT_EQ(p.rcode(), kRcodeNxDomain) << bad;
    EXPECT_EQ(p.ns, 1) << bad;  // the SOA for negative caching
  }
}

TEST_F(ResponderTest, EdnsEchoedAndBadVers) {
  auto p = Parse(Ask(MakeQuery("2.0.0.127.bl.example.net", kTypeA, true)));
  EXPECT_EQ(p.ar, 1);
  EXPECT_EQ(p.records.back().type, kTypeOpt);
  auto bad = Parse(Ask(MakeQuery("2.0.0.127.bl.example.net", kTypeA, true, 1232,
                                 /*version=*/1)));
  EXPECT_EQ(bad.an, 0);
  ASSERT_EQ(bad.ar, 1);
  EXPECT_EQ(bad.records[0].ttl >> 24, 1u);  // extended RCODE: BADVERS
}

TEST_F(ResponderTest, LargeAnswersTruncateOverUdpOnly) {
  // Long TXT: allow list of none, many evidence names do not reach 512, so
  // use ANY on the test point with a tiny EDNS size clamped to 512 and a
  // zone name long enough to push it over.
  o_.zone = std::string(60, 'z') + "." + std::string(60, 'y') + "." +
            std::string(60, 'x');
  o_.ns = std::string(60, 'n') + "." + o_.zone;
  o_.hostmaster = std::string(60, 'h') + "." + o_.zone;
  Make();
  std::string name = "2.0.0.127." + o_.zone;
  auto udp = Parse(Ask(MakeQuery(o_.zone, kTypeAny)));
  EXPECT_TRUE(udp.tc());
  EXPECT_EQ(udp.an, 0);
  auto tcp = Parse(Ask(MakeQuery(o_.zone, kTypeAny), /*tcp=*/true));
  EXPECT_FALSE(tcp.tc());
  EXPECT_EQ(tcp.an, 2);
  auto edns = Parse(Ask(MakeQuery(o_.zone, kTypeAny, true, 1232)));
  EXPECT_FALSE(edns.tc());
  EXPECT_EQ(edns.an, 2);
}

TEST_F(ResponderTest, RateLimitPerPrefixWithSlip) {
  o_.rate_limit = 5;
  o_.slip = 2;
  Make();
  auto q = MakeQuery("2.0.0.127.bl.example.net", kTypeA);
  int answered = 0, slipped = 0, dropped = 0;
  for (int i = 0; i < 100; ++i) {
    auto r = Ask(q, false, "203.0.113.9");
    if (r.empty()) {
      ++dropped;
    } else if (Parse(r).tc()) {
      ++slipped;
    } else {
      ++answered;
    }
  }
  EXPECT_EQ(answered, 5);
  EXPECT_EQ(slipped, 47);
  EXPECT_EQ(dropped, 48);
  // The same /24 shares the bucket; another prefix and TCP do not.
  auto same = Ask(q, false, "203.0.113.10");
  EXPECT_TRUE(same.empty() || Parse(same).tc());
  EXPECT_FALSE(Parse(Ask(q, false, "203.0.114.9")).tc());
  EXPECT_FALSE(Parse(Ask(q, true, "203.0.113.9")).tc());
  // A second later the bucket has refilled.
  EXPECT_FALSE(Parse(Ask(q, false, "203.0.113.9", kNow + 1)).tc());
  EXPECT_GE(base::CounterTotal(base::Counter::kDnsblRateLimited), 95u);
}

TEST_F(ResponderTest, MalformedGetsFormErrOrNothing) {
  EXPECT_EQ(Ask("short"), "");
  auto p = MakeQuery("a.bl.example.net", kTypeA);
  p[5] = 0;  // QDCOUNT 0
  auto r = Parse(Ask(p));
  EXPECT_EQ(r.rcode(), kRcodeFormErr);
  EXPECT_EQ(r.qd, 0);
}

TEST(AddressOf, Forms) {
  EXPECT_EQ(AddressOf({"4", "3", "2", "1"})->ToString(), "1.2.3.4");
  EXPECT_FALSE(AddressOf({"4", "3", "2", "-1"}));
  EXPECT_FALSE(AddressOf({"4", "3", "2", "1000"}));
}

}  // namespace
}  // namespace dnsbl
