#include "dnsbl/wire.h"

#include <gtest/gtest.h>

#include <random>

#include "dnsbl/test_util.h"

namespace dnsbl {
namespace {

Query ParseStr(const std::string& s) {
  return ParseQuery(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

TEST(Wire, ParsesQuestionAndEdns) {
  auto q = ParseStr(
      testing::MakeQuery("2.0.0.127.BL.Example.NET", kTypeA, true, 4096, 0));
  ASSERT_EQ(q.result, Query::Result::kOk);
  EXPECT_EQ(q.id, 0x1234);
  EXPECT_EQ(q.labels, (std::vector<std::string>{"2", "0", "0", "127", "bl",
                                                "example", "net"}));
  EXPECT_EQ(q.qtype, kTypeA);
  EXPECT_TRUE(q.edns);
  EXPECT_EQ(q.udp_size, 4096);
  // The question is echoed as sent, case included.
  EXPECT_NE(q.question_wire.find("Example"), std::string::npos);
}

TEST(Wire, ShortAndResponsesAreDropped) {
  EXPECT_EQ(ParseStr("").result, Query::Result::kDrop);
  EXPECT_EQ(ParseStr(std::string(11, '\0')).result, Query::Result::kDrop);
  auto p = testing::MakeQuery("a.example", kTypeA);
  p[2] = char(p[2] | 0x80);  // QR
  EXPECT_EQ(ParseStr(p).result, Query::Result::kDrop);
}

TEST(Wire, BadQuestionsAreFormErr) {
  auto p = testing::MakeQuery("a.example", kTypeA);
  p[5] = 2;  // QDCOUNT 2
  EXPECT_EQ(ParseStr(p).result, Query::Result::kFormErr);
  p = testing::MakeQuery("a.example", kTypeA);
  p.resize(p.size() - 3);  // cut in the type/class
  EXPECT_EQ(ParseStr(p).result, Query::Result::kFormErr);
  p = testing::MakeQuery("a.example", kTypeA);
  p[2] = char(p[2] | (2 << 3));  // opcode STATUS
  EXPECT_EQ(ParseStr(p).result, Query::Result::kNotImp);
}

TEST(Wire, CompressionLoopsAndOversizedNamesAreFormErr) {
  std::string h("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12);
  // A pointer to itself, and a pointer forward.
  EXPECT_EQ(ParseStr(h + std::string("\xc0\x0c\x00\x01\x00\x01", 6)).result,
            Query::Result::kFormErr);
  EXPECT_EQ(ParseStr(h + std::string("\xc0\x20\x00\x01\x00\x01", 6)).result,
            Query::Result::kFormErr);
  // 5 labels of 63 octets: 320 > 255.
  std::string name;
  for (int i = 0; i < 5; ++i) name += char(63) + std::string(63, 'a');
  name.push_back('\0');
  EXPECT_EQ(ParseStr(h + name + std::string("\x00\x01\x00\x01", 4)).result,
            Query::Result::kFormErr);
  // Extended label type 0x40.
  EXPECT_EQ(ParseStr(h + std::string("\x41\x00\x00\x01\x00\x01", 6)).result,
            Query::Result::kFormErr);
  // A loop in the additional section (after a good question).
  auto p = testing::MakeQuery("a.example", kTypeA);
  p[11] = 1;
  size_t at = p.size();
  p += std::string("\xc0", 1) + char(at) + std::string(10, '\0');
  EXPECT_EQ(ParseStr(p).result, Query::Result::kFormErr);
}

TEST(Wire, TwoOptsAreFormErr) {
  auto p = testing::MakeQuery("a.example", kTypeA, true);
  std::string opt = p.substr(p.size() - 11);
  p += opt;
  p[11] = 2;
  EXPECT_EQ(ParseStr(p).result, Query::Result::kFormErr);
}

// Random bytes and random mutations of a good query never crash or hang
// (ASan/UBSan builds and fuzz/dns_fuzz.cc take this further).
TEST(Wire, RandomPacketsAreSafe) {
  std::mt19937 rng(7);
  auto good = testing::MakeQuery("1.2.3.4.bl.example.net", kTypeTxt, true);
  for (int i = 0; i < 20000; ++i) {
    std::string p = good;
    int edits = 1 + int(rng() % 6);
    for (int e = 0; e < edits; ++e) p[rng() % p.size()] = char(rng());
    if (rng() % 4 == 0) p.resize(rng() % (p.size() + 1));
    ParseStr(p);
  }
}

TEST(Wire, TxtSplitsAt255) {
  auto r = TxtRdata(std::string(300, 'x'));
  ASSERT_EQ(r.size(), 302u);
  EXPECT_EQ(uint8_t(r[0]), 255);
  EXPECT_EQ(uint8_t(r[256]), 45);
}

}  // namespace
}  // namespace dnsbl
