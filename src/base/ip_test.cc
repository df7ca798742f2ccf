#include "base/ip.h"

#include <gtest/gtest.h>

namespace base {
namespace {

TEST(IpAddress, ParsesAndPrintsBothFamilies) {
  auto v4 = IpAddress::Parse("192.0.2.7");
  ASSERT_TRUE(v4.ok());
  EXPECT_TRUE(v4->is_v4());
  EXPECT_EQ(v4->v4(), 0xC0000207u);
  EXPECT_EQ(v4->ToString(), "192.0.2.7");
  auto v6 = IpAddress::Parse("[2001:DB8::1]");
  ASSERT_TRUE(v6.ok());
  EXPECT_FALSE(v6->is_v4());
  EXPECT_EQ(v6->ToString(), "2001:db8::1");
}

TEST(IpAddress, RejectsGarbage) {
  for (const char* bad : {"", "1.2.3", "1.2.3.256", "example.com", "::g"}) {
    EXPECT_FALSE(IpAddress::Parse(bad).ok()) << bad;
  }
}

TEST(IpAddress, PrefixKeyMasksIpv6Only) {
  auto ip = [](const char* t) { return *IpAddress::Parse(t); };
  EXPECT_EQ(PrefixKey(ip("2001:db8:1:2:3:4:5:6"), 64).ToString(),
            "2001:db8:1:2::");
  EXPECT_EQ(PrefixKey(ip("2001:db8:1:2:3:4:5:6"), 60).ToString(),
            "2001:db8:1::");
  EXPECT_EQ(PrefixKey(ip("2001:db8:1:2:3:4:5:6"), 128).ToString(),
            "2001:db8:1:2:3:4:5:6");
  EXPECT_EQ(PrefixKey(ip("192.0.2.77"), 64).ToString(), "192.0.2.77");
}

TEST(IpAddress, Loopback) {
  EXPECT_TRUE(IpAddress::Parse("127.3.4.5")->IsLoopback());
  EXPECT_TRUE(IpAddress::Parse("::1")->IsLoopback());
  EXPECT_FALSE(IpAddress::Parse("10.0.0.1")->IsLoopback());
}

TEST(Cidr, ContainsAndMasks) {
  auto net = Cidr::Parse("10.1.2.3/8");
  ASSERT_TRUE(net.ok());
  EXPECT_EQ(net->ToString(), "10.0.0.0/8");
  EXPECT_TRUE(net->Contains(*IpAddress::Parse("10.255.0.1")));
  EXPECT_FALSE(net->Contains(*IpAddress::Parse("11.0.0.1")));
  EXPECT_FALSE(net->Contains(*IpAddress::Parse("::a01:203")));
  auto v6 = Cidr::Parse("2001:db8::/33");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(v6->Contains(*IpAddress::Parse("2001:db8:7fff::1")));
  EXPECT_FALSE(v6->Contains(*IpAddress::Parse("2001:db8:8000::1")));
  EXPECT_EQ(Cidr::Parse("192.0.2.1")->ToString(), "192.0.2.1/32");
  EXPECT_TRUE(Cidr::Parse("0.0.0.0/0")->Contains(*IpAddress::Parse("8.8.8.8")));
}

TEST(Cidr, RejectsBadPrefixes) {
  for (const char* bad :
       {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "::/129", "nonsense/8"}) {
    EXPECT_FALSE(Cidr::Parse(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace base
