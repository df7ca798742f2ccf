#include "smtp/exim_size.h"

#include <gtest/gtest.h>

#include <string_view>
#include <vector>

namespace smtp {
namespace {

uint64_t Total(std::vector<std::string_view> chunks) {
  EximSizeCounter c;
  for (std::string_view chunk : chunks) c.Feed(chunk);
  return c.Finish();
}

// Totals real Exim 4.96 printed on the differential corpus
// (tests/differential/corpus/hand.txt, "250- N byte chunk, total M").
TEST(EximSizeCounter, MatchesTheRealDaemon) {
  EXPECT_EQ(Total({"hello"}), 8u);                  // rcpt/bdat-last
  EXPECT_EQ(Total({"hello\n", "world\r\n"}), 15u);  // bdat-two-chunks
  EXPECT_EQ(Total({"abc\n", ""}), 6u);              // bdat-zero-last
  EXPECT_EQ(Total({"abc"}), 6u);                    // bdat-pipelined
}

TEST(EximSizeCounter, HeadersAndBody) {
  // "Subject: x\n" (11) + "\n" (1) + "body\n" (5), 3 lines.
  EXPECT_EQ(Total({"Subject: x\r\n\r\nbody\r\n"}), 20u);
  // Chunk boundaries do not matter, even inside a CR LF.
  EXPECT_EQ(Total({"Subject: x\r", "\n\r", "\nbody\r", "\n"}), 20u);
  // A missing final line end is added: one more octet and line.
  EXPECT_EQ(Total({"Subject: x\r\n\r\nbody"}), 20u);
  // A bare CR in the body ends a line.
  EXPECT_EQ(Total({"S: x\r\n\r\na\rb\r\n"}), 6u + 1u + 4u + 3u);
}

TEST(EximSizeCounter, EmptyContinuationLinesAreCut) {
  // "X: a\n \n" is stored as "X: a\n"; its two physical lines still count.
  EXPECT_EQ(Total({"X: a\r\n \r\n\r\n"}), 5u + 1u + 3u);
}

TEST(EximSizeCounter, ResetStartsOver) {
  EximSizeCounter c;
  c.Feed("hello");
  EXPECT_EQ(c.Finish(), 8u);
  c.Reset();
  c.Feed("abc");
  EXPECT_EQ(c.Finish(), 6u);
}

}  // namespace
}  // namespace smtp
