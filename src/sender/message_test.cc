#include "sender/message.h"

#include <gtest/gtest.h>

namespace sender {
namespace {

MessageGenerator Make(MessageShape shape, const base::Clock* clock) {
  auto g = MessageGenerator::Create(std::move(shape), clock, 0xabc);
  EXPECT_TRUE(g.ok()) << g.error();
  return std::move(g).value();
}

TEST(MessageTest, BodyHasExactSizeAndEndsInCrlf) {
  base::FakeClock clock;
  MessageShape shape;
  shape.size_max = 5000;
  auto g = Make(shape, &clock);
  for (int64_t size : {2, 3, 37, 38, 39, 40, 76, 77, 1024, 4999, 5000}) {
    auto b = g.GetBody(size, true);
    std::string all = std::string(b.a) + std::string(b.b);
    EXPECT_EQ(int64_t(all.size()), size) << size;
    EXPECT_EQ(all.substr(all.size() - 2), "\r\n") << size;
    // Every line ends in CRLF and has no bare CR or LF.
    for (size_t i = 0; i < all.size(); ++i) {
      if (all[i] == '\n') {
        EXPECT_EQ(all[i - 1], '\r') << size;
      }
      if (all[i] == '\r') {
        EXPECT_EQ(all[i + 1], '\n') << size;
      }
    }
  }
  EXPECT_EQ(g.GetBody(0, true).size(), 0u);
  EXPECT_EQ(g.GetBody(1, true).size(), 2u);
}

TEST(MessageTest, SizeRangeIsRespected) {
  base::FakeClock clock;
  MessageShape shape;
  shape.size_min = 100;
  shape.size_max = 200;
  auto g = Make(shape, &clock);
  Rng rng(7);
  int64_t lo = 1000, hi = 0;
  for (int i = 0; i < 1000; ++i) {
    int64_t s = g.PickBodySize(rng);
    lo = std::min(lo, s);
    hi = std::max(hi, s);
  }
  EXPECT_GE(lo, 100);
  EXPECT_LE(hi, 200);
  EXPECT_LT(lo, 110);
  EXPECT_GT(hi, 190);
}

TEST(MessageTest, HeadersAreRealisticAndUnique) {
  base::FakeClock clock;
  MessageShape shape;
  shape.subject = "hello";
  auto g = Make(shape, &clock);
  std::string a, b;
  a.reserve(1024);
  const char* before = a.data();
  g.AppendHeaders(&a);
  EXPECT_EQ(a.data(), before) << "headers reallocated the buffer";
  g.AppendHeaders(&b);
  for (const char* h :
       {"Date: ", "From: <smtpsend@localhost>", "To: <smtpsink@localhost>",
        "Subject: hello", "Message-ID: <"})
    EXPECT_NE(a.find(h), std::string::npos) << h;
  EXPECT_EQ(a.substr(a.size() - 4), "\r\n\r\n");
  EXPECT_NE(a, b);  // Message-IDs differ
}

TEST(MessageTest, EnvelopeListsEveryRecipient) {
  base::FakeClock clock;
  MessageShape shape;
  shape.recipients = 3;
  auto g = Make(shape, &clock);
  EXPECT_EQ(g.Envelope(false, true),
            "MAIL FROM:<smtpsend@localhost>\r\n"
            "RCPT TO:<smtpsink+1@localhost>\r\n"
            "RCPT TO:<smtpsink+2@localhost>\r\n"
            "RCPT TO:<smtpsink+3@localhost>\r\n"
            "DATA\r\n");
  EXPECT_EQ(g.RcptLine(1), "RCPT TO:<smtpsink+2@localhost>\r\n");
  // SMTPUTF8 is added only for non-ASCII addresses.
  EXPECT_EQ(g.MailLine(true), "MAIL FROM:<smtpsend@localhost>\r\n");
  shape.from = "j\xc3\xb6rg@example.test";
  auto u = Make(shape, &clock);
  EXPECT_EQ(u.MailLine(true),
            "MAIL FROM:<j\xc3\xb6rg@example.test> SMTPUTF8\r\n");
  EXPECT_EQ(u.MailLine(false), "MAIL FROM:<j\xc3\xb6rg@example.test>\r\n");
}

TEST(MessageTest, BodyFileIsStuffedForData) {
  base::FakeClock clock;
  MessageShape shape;
  shape.body_text = "line one\n.dot line\r\nlast";
  auto g = Make(shape, &clock);
  Rng rng;
  int64_t size = g.PickBodySize(rng);
  EXPECT_EQ(g.GetBody(size, true).a, "line one\r\n..dot line\r\nlast\r\n");
  EXPECT_EQ(g.GetBody(size, false).a, "line one\r\n.dot line\r\nlast\r\n");
}

TEST(MessageTest, RejectsBadShapes) {
  base::FakeClock clock;
  MessageShape shape;
  shape.recipients = 0;
  EXPECT_FALSE(MessageGenerator::Create(shape, &clock, 1).ok());
  shape = MessageShape();
  shape.size_min = 10;
  shape.size_max = 5;
  EXPECT_FALSE(MessageGenerator::Create(shape, &clock, 1).ok());
  shape = MessageShape();
  shape.subject = "a\r\nBcc: x";
  EXPECT_FALSE(MessageGenerator::Create(shape, &clock, 1).ok());
}

}  // namespace
}  // namespace sender
