#include "smtp/body_scanner.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace smtp {
namespace {

struct Case {
  std::string body;  // bytes after DATA CRLF
  size_t consumed;   // npos: everything, not done
  uint64_t size;
  uint32_t bare_lf;
  uint32_t bare_cr;
};

constexpr size_t kAll = std::string::npos;

TEST(BodyScanner, Table) {
  const Case cases[] = {
      {".\r\n", 3, 0, 0, 0},
      {"hello\r\n.\r\n", 10, 7, 0, 0},
      {"hello\r\n.\r\nMAIL FROM:<>\r\n", 10, 7, 0, 0},
      {"..x\r\n.\r\n", 8, 4, 0, 0},        // unstuffed ".x\r\n"
      {"a\n.\r\n", kAll, 5, 1, 0},         // bare LF is not a line end
      {"a\n.\n", kAll, 4, 2, 0},           // LF.LF does not end data
      {"a\r.\r\n", kAll, 5, 0, 1},         // CR.CRLF does not end data
      {"a\r\n.\n\r\n.\r\n", 10, 6, 1, 0},  // ".\n" is data, then end
      {"a\r\r\n.\r\n", 7, 4, 0, 1},        // CR CR LF: one bare CR
      {".\rx\r\n.\r\n", 8, 4, 0, 1},       // ".\r" then x: dot stuffing
      {"\r\n.\r\n", 5, 2, 0, 0},
      {"no end", kAll, 6, 0, 0},
  };
  for (const auto& c : cases) {
    BodyScanner s;
    s.Reset();
    size_t n = s.Feed(c.body);
    if (c.consumed == kAll) {
      EXPECT_EQ(n, c.body.size()) << c.body;
      EXPECT_FALSE(s.done()) << c.body;
    } else {
      EXPECT_EQ(n, c.consumed) << c.body;
      EXPECT_TRUE(s.done()) << c.body;
    }
    EXPECT_EQ(s.size(), c.size) << c.body;
    EXPECT_EQ(s.bare_lf(), c.bare_lf) << c.body;
    EXPECT_EQ(s.bare_cr(), c.bare_cr) << c.body;
  }
}

// Every split point, and random chunkings, give the same answer as one read.
TEST(BodyScanner, AnyReadBoundary) {
  std::string body =
      "Subject: x\r\n\r\n..leading dot\r\nbare\nlf\rcr\r\n.\r\r\n"
      "line\r\n.\r\nQUIT\r\n";
  BodyScanner whole;
  size_t whole_n = whole.Feed(body);
  ASSERT_TRUE(whole.done());
  for (size_t split = 0; split <= body.size(); ++split) {
    BodyScanner s;
    size_t n = s.Feed(std::string_view(body).substr(0, split));
    if (!s.done()) n += s.Feed(std::string_view(body).substr(split));
    EXPECT_EQ(n, whole_n) << split;
    EXPECT_EQ(s.size(), whole.size()) << split;
    EXPECT_EQ(s.bare_lf(), whole.bare_lf()) << split;
    EXPECT_EQ(s.bare_cr(), whole.bare_cr()) << split;
  }
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    BodyScanner s;
    size_t pos = 0;
    while (!s.done() && pos < body.size()) {
      size_t len = 1 + rng() % 5;
      pos += s.Feed(std::string_view(body).substr(pos, len));
    }
    EXPECT_EQ(pos, whole_n);
    EXPECT_EQ(s.size(), whole.size());
  }
}

TEST(BodyScanner, LongestLine) {
  BodyScanner s;
  std::string body =
      std::string(998, 'x') + "\r\n" + std::string(999, 'y') + "\r\n.\r\n";
  s.Feed(body);
  ASSERT_TRUE(s.done());
  EXPECT_EQ(s.longest_line(), 1001u);
}

// Long random bodies of text, CR, LF and dots: one read (the 16-byte fast
// path) agrees with reading a byte at a time (the plain loop).
TEST(BodyScanner, FastPathAgreesWithByteAtATime) {
  std::mt19937 rng(17);
  const char kBytes[] = "abcdefgh\r\n.";
  for (int round = 0; round < 300; ++round) {
    std::string body;
    size_t len = 1 + rng() % 3000;
    unsigned skew = rng() % 4;  // how often a special byte comes
    while (body.size() < len) {
      unsigned r = rng() % 64;
      body += r < 56 - skew * 12 ? kBytes[r % 8] : kBytes[8 + r % 3];
      if (r == 63 && skew == 0) body += "\r\n";
    }
    if (round % 3 == 0) body += "\r\n.\r\nQUIT\r\n";
    BodyScanner whole, bytes;
    size_t n = whole.Feed(body), m = 0;
    while (!bytes.done() && m < body.size()) {
      m += bytes.Feed(std::string_view(body).substr(m, 1));
    }
    ASSERT_EQ(n, m) << round;
    EXPECT_EQ(whole.done(), bytes.done()) << round;
    EXPECT_EQ(whole.size(), bytes.size()) << round;
    EXPECT_EQ(whole.longest_line(), bytes.longest_line()) << round;
    EXPECT_EQ(whole.bare_lf(), bytes.bare_lf()) << round;
    EXPECT_EQ(whole.bare_cr(), bytes.bare_cr()) << round;
  }
}

// Bodies of ordinary lines (the 64-byte block path) with a few of every
// irregularity (bare CR or LF, a stuffed dot, a CR or LF on a block's edge,
// long lines), read in random pieces: they agree with reading a byte at a
// time (which never takes a block).
TEST(BodyScanner, BlockPathAgreesWithByteAtATime) {
  std::mt19937 rng(23);
  const char* kOdd[] = {"\r",     "\n",  "\r\n.", "\r\n..x",
                        "\r\r\n", "\n.", ".",     "\r\n\r\n"};
  for (int round = 0; round < 400; ++round) {
    std::string body;
    size_t len = 100 + rng() % 6000;
    unsigned odd = 1 + rng() % 40;  // irregularities per 1,000 lines
    while (body.size() < len) {
      size_t n = rng() % 8 == 0 ? rng() % 300 : rng() % 80;
      for (size_t i = 0; i < n; ++i) body += char('a' + rng() % 26);
      if (rng() % 1000 < odd) body += kOdd[rng() % 8];
      body += "\r\n";
    }
    if (round % 2 == 0) body += ".\r\nQUIT\r\n";
    BodyScanner pieces, bytes;
    size_t n = 0, m = 0;
    for (int i = 0; i < 10000 && !pieces.done() && n < body.size(); ++i) {
      size_t take = rng() % 4 == 0 ? body.size() : 1 + rng() % 700;
      n += pieces.Feed(std::string_view(body).substr(n, take));
    }
    while (!bytes.done() && m < body.size()) {
      m += bytes.Feed(std::string_view(body).substr(m, 1));
    }
    ASSERT_EQ(n, m) << round;
    EXPECT_EQ(pieces.done(), bytes.done()) << round;
    EXPECT_EQ(pieces.size(), bytes.size()) << round;
    EXPECT_EQ(pieces.longest_line(), bytes.longest_line()) << round;
    EXPECT_EQ(pieces.bare_lf(), bytes.bare_lf()) << round;
    EXPECT_EQ(pieces.bare_cr(), bytes.bare_cr()) << round;
  }
}

}  // namespace
}  // namespace smtp
