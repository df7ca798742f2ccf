#include "tarpit/stutter.h"

#include <gtest/gtest.h>

#include <string>

namespace tarpit {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(StutterTest, Chunking) {
  struct Case {
    std::string reply;
    int chunk_bytes;
    std::vector<std::string> chunks;
  };
  const Case cases[] = {
      {"250 Ok\r\n", 1, {"2", "5", "0", " ", "O", "k", "\r", "\n"}},
      {"250 Ok\r\n", 3, {"250", " Ok", "\r\n"}},
      {"250 Ok\r\n", 4, {"250 ", "Ok\r\n"}},
      {"250 Ok\r\n", 8, {"250 Ok\r\n"}},
      {"250 Ok\r\n", 100, {"250 Ok\r\n"}},
      {"250 Ok\r\n", 0, {"250 Ok\r\n"}},  // no stutter
      {"", 1, {}},
  };
  for (const Case& c : cases) {
    Pacing pacing{seconds(5), c.chunk_bytes, seconds(1)};
    std::vector<Chunk> got = StutterChunks(c.reply, pacing);
    ASSERT_EQ(got.size(), c.chunks.size()) << c.reply << "/" << c.chunk_bytes;
    std::string joined;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].bytes, c.chunks[i]);
      EXPECT_EQ(got[i].wait, i == 0 ? seconds(5) : seconds(1));
      joined += got[i].bytes;
    }
    EXPECT_EQ(joined, c.reply);
  }
}

TEST(StutterTest, CursorMatchesSendTime) {
  const std::string reply = "220 mx.example.org ESMTP Postfix\r\n";  // 34
  Pacing pacing{milliseconds(1500), 1, milliseconds(1000)};
  StutterCursor cursor(reply, pacing);
  base::Duration total{};
  int n = 0;
  while (!cursor.Done() && n < 1000) {
    total += cursor.Next().wait;
    ++n;
  }
  EXPECT_EQ(n, 34);
  EXPECT_EQ(cursor.Rest(), "");
  EXPECT_EQ(total, SendTime(reply.size(), pacing));
  EXPECT_EQ(total, milliseconds(1500 + 33 * 1000));
  EXPECT_EQ(SendTime(0, pacing), base::Duration::zero());
  EXPECT_EQ(SendTime(10, Pacing{seconds(2), 0, seconds(1)}), seconds(2));
}

TEST(StutterTest, PlanToChunksEndToEnd) {
  Options options;  // 1 byte per second, greeting 2..5 s
  options.enabled = true;
  SessionCounters session;
  Capacity capacity;
  Plan plan = Decide(options, PeerHistory{}, session, capacity, {});
  SplitMixRandom random(7);
  const std::string reply = "220 mx ESMTP\r\n";
  Pacing pacing = plan.Pace(Stage::kGreeting, reply.size(), {}, random);
  std::vector<Chunk> chunks = StutterChunks(reply, pacing);
  ASSERT_EQ(chunks.size(), reply.size());
  EXPECT_GE(chunks[0].wait, seconds(2));
  EXPECT_LE(chunks[0].wait, seconds(5));
  for (size_t i = 1; i < chunks.size(); ++i) {
    EXPECT_EQ(chunks[i].wait, seconds(1));
  }
}

}  // namespace
}  // namespace tarpit
