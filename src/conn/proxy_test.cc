#include "conn/proxy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace conn {
namespace {

TEST(Proxy, V1) {
  ProxyHeader h;
  size_t n = 0;
  std::string in = "PROXY TCP4 203.0.113.9 192.0.2.1 40000 25\r\nEHLO x\r\n";
  ASSERT_EQ(ParseProxyHeader(in, &h, &n), ProxyParse::kDone);
  EXPECT_EQ(n, in.find("EHLO"));
  EXPECT_EQ(h.source.ToString(), "203.0.113.9");
  EXPECT_EQ(h.source_port, 40000);
  EXPECT_FALSE(h.local);
  in = "PROXY TCP6 2001:db8::5 2001:db8::1 1234 25\r\n";
  ASSERT_EQ(ParseProxyHeader(in, &h, &n), ProxyParse::kDone);
  EXPECT_EQ(h.source.ToString(), "2001:db8::5");
  ASSERT_EQ(ParseProxyHeader("PROXY UNKNOWN\r\n", &h, &n), ProxyParse::kDone);
  EXPECT_TRUE(h.local);
}

TEST(Proxy, V1Partial) {
  ProxyHeader h;
  size_t n;
  std::string in = "PROXY TCP4 203.0.113.9 192.0.2.1 40000 25\r\n";
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(ParseProxyHeader(in.substr(0, i), &h, &n), ProxyParse::kNeedMore)
        << i;
  }
}

TEST(Proxy, V1Errors) {
  ProxyHeader h;
  size_t n;
  for (std::string bad : std::vector<std::string>{
           "EHLO x\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
           "PROXY TCP4 2001:db8::1 1.2.3.4 1 2\r\n",
           "PROXY TCP4 1.2.3.4 5.6.7.8 99999 25\r\n",
           "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
           "PROXY TCP4 " + std::string(120, '1')}) {
    EXPECT_EQ(ParseProxyHeader(bad, &h, &n), ProxyParse::kError) << bad;
  }
}

std::string V2(uint8_t cmd, uint8_t fam, std::string addr) {
  std::string s("\r\n\r\n\0\r\nQUIT\n", 12);
  s.push_back(char(0x20 | cmd));
  s.push_back(char(fam));
  s.push_back(char(addr.size() >> 8));
  s.push_back(char(addr.size() & 0xff));
  return s + addr;
}

TEST(Proxy, V2) {
  ProxyHeader h;
  size_t n;
  std::string addr = {char(198), 51, 100,        23,   10, 0,
                      0,         1,  char(0x9c), 0x40, 0,  25};
  std::string in = V2(1, 0x11, addr) + "EHLO";
  ASSERT_EQ(ParseProxyHeader(in, &h, &n), ProxyParse::kDone);
  EXPECT_EQ(n, 28u);
  EXPECT_EQ(h.source.ToString(), "198.51.100.23");
  EXPECT_EQ(h.source_port, 40000);
  std::string v6(36, '\0');
  v6[0] = 0x20;
  v6[1] = 0x01;
  v6[2] = 0x0d;
  v6[3] = char(0xb8);
  v6[15] = 7;
  ASSERT_EQ(ParseProxyHeader(V2(1, 0x21, v6), &h, &n), ProxyParse::kDone);
  EXPECT_EQ(h.source.ToString(), "2001:db8::7");
  ASSERT_EQ(ParseProxyHeader(V2(0, 0, ""), &h, &n), ProxyParse::kDone);
  EXPECT_TRUE(h.local);
  std::string full = V2(1, 0x11, addr);
  for (size_t i = 0; i < full.size(); ++i) {
    EXPECT_EQ(ParseProxyHeader(full.substr(0, i), &h, &n),
              ProxyParse::kNeedMore);
  }
  std::string bad = full;
  bad[12] = 0x31;  // version 3
  EXPECT_EQ(ParseProxyHeader(bad, &h, &n), ProxyParse::kError);
}

}  // namespace
}  // namespace conn
