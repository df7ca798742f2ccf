#include "capture/store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "base/metrics.h"
#include "capture/maildir.h"
#include "smtp/server_session.h"

namespace capture {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "capture_test.XXXXXX");
    path_ = mkdtemp(t.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

size_t FilesIn(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(fs::path(dir) / "new")) {
    (void)e;
    ++n;
  }
  return n;
}

smtp::CapturedMessage Message(double wall, std::string ip, size_t body) {
  smtp::CapturedMessage m;
  m.client_ip = std::move(ip);
  m.helo = "bot.example";
  m.mail_from = "a@b.example";
  m.rcpts = {"x@sink.example"};
  m.wall = wall;
  m.raw = "Subject: s\r\n\r\n" + std::string(body, 'x') + "\r\n.\r\n";
  return m;
}

TEST(Maildir, UnstuffsAndDropsTheTerminator) {
  EXPECT_EQ(Unstuff("a\r\n..b\r\n.\r\n"), "a\r\n.b\r\n");
  EXPECT_EQ(Unstuff(".\r\n"), "");
  // A bare LF is not a line end: a dot after it stays.
  EXPECT_EQ(Unstuff("a\n.b\r\n.\r\n"), "a\n.b\r\n");
}

TEST(Maildir, HeadersAreCleanedOfInjectedLines) {
  smtp::CapturedMessage m = Message(1.7e9, "192.0.2.1", 3);
  m.helo = "evil\r\nX-Injected: yes";
  std::string f = FormatMessage(m, "sink1");
  EXPECT_EQ(f.find("\r\nX-Injected"), std::string::npos) << f;
  EXPECT_EQ(HeaderValue(f, "X-Spamsink-Source"), "192.0.2.1");
  EXPECT_EQ(HeaderValue(f, "X-Spamsink-Helo"), "evil??X-Injected: yes");
  EXPECT_NE(f.find("\r\nSubject: s\r\n\r\nxxx\r\n"), std::string::npos);
}

TEST(Maildir, NamesSortByTimeAndIdsAreNeverPaths) {
  std::string a = MakeName(1.7e9, 7, 1, "mx/evil:host");
  std::string b = MakeName(1.7e9 + 1, 7, 2, "mx");
  EXPECT_LT(a, b);
  EXPECT_EQ(NameSeconds(a), 1700000000);
  EXPECT_TRUE(ValidId(a)) << a;
  EXPECT_FALSE(ValidId("../etc/passwd"));
  EXPECT_FALSE(ValidId(".."));
  EXPECT_FALSE(ValidId("a/b"));
}

TEST(Maildir, MboxQuotesFromLines) {
  std::string e =
      MboxEntry("Subject: x\r\n\r\nFrom here\r\n>From there\r\n", 1.7e9);
  EXPECT_EQ(e.rfind("From MAILER-DAEMON ", 0), 0u);
  EXPECT_NE(e.find("\n>From here\n>>From there\n"), std::string::npos) << e;
}

// 1,000 messages through one session at N = 10: exactly 100 kept (the
// sampler is deterministic per thread), each with the sink's headers and
// its own body, unstuffed.
TEST(Capture, SamplesOneInNThroughTheSession) {
  TempDir dir;
  base::FakeClock clock;
  Options o;
  o.sample_every = 10;
  o.dir = dir.path();
  o.queue_messages = 2000;
  Store store(o, "sink1", &clock);
  ASSERT_TRUE(store.Start().ok());
  auto so = smtp::MakeSessionOptions({}, "mx.example.net", false);
  ASSERT_TRUE(so.ok());
  smtp::SessionOptions opts = *so;
  opts.tap = &store;
  smtp::Output out;
  smtp::ServerSession s(&opts, &out, "198.51.100.7", 1);
  s.Greet(1.7e9);
  s.Feed("EHLO bot.example\r\n", 1.7e9);
  int accepted = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string m = "MAIL FROM:<s" + std::to_string(i) +
                    "@b.example>\r\nRCPT TO:<x@sink.example>\r\nDATA\r\n";
    s.Feed(m, 1.7e9);
    auto step = s.Feed(
        "Subject: n" + std::to_string(i) + "\r\n\r\n..dot\r\n.\r\n", 1.7e9 + i);
    accepted += step.events.accepted;
  }
  EXPECT_EQ(accepted, 1000);
  store.Flush();
  EXPECT_EQ(FilesIn(dir.path()), 100u);
  Page p = store.List({"", "", 1000});
  ASSERT_EQ(p.entries.size(), 100u);
  auto text = store.Read(p.entries[0].id);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(HeaderValue(*text, "X-Spamsink-Source"), "198.51.100.7");
  EXPECT_EQ(HeaderValue(*text, "X-Spamsink-Helo"), "bot.example");
  EXPECT_EQ(HeaderValue(*text, "X-Spamsink-Rcpt-To"), "<x@sink.example>");
  std::string from = HeaderValue(*text, "X-Spamsink-Mail-From");
  std::string n = from.substr(2, from.find('@') - 2);  // "<sN@..."
  EXPECT_NE(text->find("Subject: n" + n + "\r\n\r\n.dot\r\n"),
            std::string::npos)
      << *text;
  EXPECT_EQ(text->find("\r\n.\r\n"), std::string::npos);
}

TEST(Capture, BdatMessagesAreKeptToo) {
  TempDir dir;
  base::FakeClock clock;
  Options o;
  o.sample_every = 1;
  o.dir = dir.path();
  Store store(o, "sink1", &clock);
  ASSERT_TRUE(store.Start().ok());
  auto so = smtp::MakeSessionOptions({}, "mx.example.net", false);
  smtp::SessionOptions opts = *so;
  opts.tap = &store;
  smtp::Output out;
  smtp::ServerSession s(&opts, &out, "192.0.2.9", 1);
  s.Greet(1.7e9);
  s.Feed("EHLO b\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 5\r\n.abc\n",
         1.7e9);
  s.Feed("BDAT 3 LAST\r\nxyz", 1.7e9);
  store.Flush();
  Page p = store.List({});
  ASSERT_EQ(p.entries.size(), 1u);
  auto text = store.Read(p.entries[0].id);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("transfer=bdat\r\n"), std::string::npos);
  EXPECT_EQ(text->substr(text->size() - 10), "\r\n.abc\nxyz");
}

TEST(Capture, QuotaDeletesOldestFirst) {
  TempDir dir;
  base::FakeClock clock;
  Options o;
  o.sample_every = 1;
  o.dir = dir.path();
  o.max_bytes = 5000;
  o.retention_days = 0;
  Store store(o, "sink1", &clock);
  ASSERT_TRUE(store.Start().ok());
  for (int i = 0; i < 10; ++i) {
    store.Deliver(Message(1.7e9 + i, "192.0.2." + std::to_string(i), 1000));
  }
  store.Flush();
  Usage u = store.GetUsage();
  EXPECT_LE(u.bytes, 5000u);
  EXPECT_GE(u.messages, 3u);
  Page p = store.List({"", "", 100});
  ASSERT_EQ(p.entries.size(), u.messages);
  // The newest are kept, in order.
  for (size_t k = 0; k < p.entries.size(); ++k) {
    EXPECT_EQ(p.entries[k].source, "192.0.2." + std::to_string(9 - k));
  }
  EXPECT_EQ(FilesIn(dir.path()), u.messages);
  // A restart finds the same files and their sources.
  store.Stop();
  Store again(o, "sink1", &clock);
  ASSERT_TRUE(again.Start().ok());
  EXPECT_EQ(again.GetUsage().messages, u.messages);
  EXPECT_EQ(again.List({"192.0.2.9", "", 10}).entries.size(), 1u);
}

TEST(Capture, RetentionUsesTheClock) {
  TempDir dir;
  base::FakeClock clock;
  Options o;
  o.sample_every = 1;
  o.dir = dir.path();
  o.retention_days = 1;
  Store store(o, "sink1", &clock);
  ASSERT_TRUE(store.Start().ok());
  double now = clock.WallSeconds();
  store.Deliver(Message(now - 2 * 86400, "192.0.2.1", 10));
  store.Deliver(Message(now - 3600, "192.0.2.2", 10));
  store.Deliver(Message(now, "192.0.2.3", 10));
  store.Flush();
  EXPECT_EQ(store.Expire(), 1u);
  EXPECT_EQ(store.GetUsage().messages, 2u);
  clock.Advance(std::chrono::hours(24));
  EXPECT_EQ(store.Expire(), 1u);
  Page p = store.List({});
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.entries[0].source, "192.0.2.3");
  EXPECT_EQ(FilesIn(dir.path()), 1u);
}

TEST(Capture, ListPagesNewestFirstWithACursor) {
  TempDir dir;
  base::FakeClock clock;
  Options o;
  o.sample_every = 1;
  o.dir = dir.path();
  o.retention_days = 0;
  Store store(o, "sink1", &clock);
  ASSERT_TRUE(store.Start().ok());
  for (int i = 0; i < 7; ++i) {
    store.Deliver(Message(1.7e9 + i, i % 2 ? "192.0.2.1" : "192.0.2.2", 1));
  }
  store.Flush();
  std::vector<std::string> seen;
  ListQuery q{"", "", 3};
  for (int pages = 0; pages < 10; ++pages) {
    Page p = store.List(q);
    for (auto& e : p.entries) seen.push_back(e.id);
    if (p.next.empty()) break;
    q.after = p.next;
  }
  ASSERT_EQ(seen.size(), 7u);
  EXPECT_TRUE(std::is_sorted(seen.rbegin(), seen.rend()));
  EXPECT_EQ(store.List({"192.0.2.1", "", 100}).entries.size(), 3u);
  EXPECT_FALSE(store.Read("../x").ok());
  EXPECT_FALSE(store.Read("1700000000.nope").ok());
}

// A full queue drops the sample and counts it; the session still answers
// every message (the writer is not running, so nothing leaves the queue).
TEST(Capture, FullQueueDropsSamplesNotMail) {
  TempDir dir;
  base::FakeClock clock;
  Options o;
  o.sample_every = 1;
  o.dir = dir.path();
  o.queue_messages = 3;
  Store store(o, "sink1", &clock);
  ASSERT_TRUE(store.Start(/*run_writer=*/false).ok());
  auto so = smtp::MakeSessionOptions({}, "mx.example.net", false);
  smtp::SessionOptions opts = *so;
  opts.tap = &store;
  smtp::Output out;
  smtp::ServerSession s(&opts, &out, "192.0.2.9", 1);
  s.Greet(1.7e9);
  s.Feed("HELO b\r\n", 1.7e9);
  uint64_t dropped = base::CounterTotal(base::Counter::kCaptureDropped);
  int accepted = 0;
  for (int i = 0; i < 5; ++i) {
    auto step = s.Feed(
        "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nhi\r\n.\r\n", 1.7e9);
    accepted += step.events.accepted;
  }
  EXPECT_EQ(accepted, 5);
  EXPECT_EQ(base::CounterTotal(base::Counter::kCaptureDropped) - dropped, 2u);
  EXPECT_EQ(store.GetUsage().queued, 3u);
  store.Stop();  // writes what was queued
  EXPECT_EQ(FilesIn(dir.path()), 3u);
}

// capture.senders and capture.evidence: every message of a matching
// sender is kept, beside the 1 in N of the others.
TEST(Capture, SendersMatchingAFilterAreAllKept) {
  TempDir dir;
  base::FakeClock clock;
  Options o;
  o.sample_every = 5;
  o.senders = {"203.0.113.0/24", "2001:db8:5::/48"};
  o.evidence = {"bot", "tarpitted"};
  o.dir = dir.path();
  o.queue_messages = 1000;
  Store store(o, "sink1", &clock);
  ASSERT_TRUE(store.Start().ok());
  auto so = smtp::MakeSessionOptions({}, "mx.example.net", false);
  smtp::SessionOptions opts = *so;
  opts.tap = &store;
  uint64_t matched = base::CounterTotal(base::Counter::kCaptureMatched);
  // One session of n messages; the first body may carry a bare LF.
  auto run = [&](const std::string& ip, int n, bool early, bool tarpitted,
                 bool bare_lf_first) {
    smtp::Output out;
    smtp::ServerSession s(&opts, &out, ip, 1);
    s.SetSenderEvidence(early, tarpitted);
    s.Greet(1.7e9);
    s.Feed("EHLO b.example\r\n", 1.7e9);
    int accepted = 0;
    for (int i = 0; i < n; ++i) {
      s.Feed("MAIL FROM:<a@b.example>\r\n", 1.7e9);
      s.Feed("RCPT TO:<c@sink.example>\r\n", 1.7e9);
      s.Feed("DATA\r\n", 1.7e9);
      std::string body = (i == 0 && bare_lf_first) ? "a\nb\r\n" : "ab\r\n";
      accepted += s.Feed(body + ".\r\n", 1.7e9 + i).events.accepted;
    }
    return accepted;
  };
  EXPECT_EQ(run("203.0.113.5", 10, false, false, false), 10);   // network
  EXPECT_EQ(run("198.51.100.1", 10, false, false, false), 10);  // 1 in 5
  EXPECT_EQ(run("198.51.100.2", 10, true, false, false), 10);   // early
  EXPECT_EQ(run("198.51.100.3", 10, false, true, false), 10);   // tarpitted
  // Bare LF is known once the first message is in: the other 4 are kept.
  EXPECT_EQ(run("198.51.100.4", 5, false, false, true), 5);
  EXPECT_EQ(run("2001:db8:5:1::9", 3, false, false, false), 3);
  store.Flush();
  auto count = [&](const std::string& ip) {
    return store.List({ip, "", 1000}).entries.size();
  };
  EXPECT_EQ(count("203.0.113.5"), 10u);
  EXPECT_EQ(count("198.51.100.1"), 2u);  // exactly: deterministic sampler
  EXPECT_EQ(count("198.51.100.2"), 10u);
  EXPECT_EQ(count("198.51.100.3"), 10u);
  EXPECT_GE(count("198.51.100.4"), 4u);  // 4, or 5 if the sampler took #1
  EXPECT_EQ(count("2001:db8:5:1::9"), 3u);
  EXPECT_EQ(base::CounterTotal(base::Counter::kCaptureMatched) - matched,
            10u + 10 + 10 + 4 + 3);
}

TEST(Capture, EvidenceNames) {
  EXPECT_EQ(EvidenceBits("bot"),
            kEarlyTalker | kPipelining | kBareLf | kBareCr);
  EXPECT_EQ(EvidenceBits("tarpitted"), kTarpitted);
  EXPECT_EQ(EvidenceBits("nonsense"), 0u);
  Options o;
  EXPECT_FALSE(Enabled(o));
  o.evidence = {"bot"};
  EXPECT_TRUE(Enabled(o));
}

// The list filters: a network, a time range, the sink (read back from the
// files' X-Spamsink-Sink when another sink wrote them).
TEST(Capture, ListFiltersByNetworkTimeAndSink) {
  TempDir dir;
  base::FakeClock clock;
  Options o;
  o.sample_every = 1;
  o.dir = dir.path();
  o.retention_days = 0;
  {
    Store other(o, "sink2", &clock);
    ASSERT_TRUE(other.Start().ok());
    other.Deliver(Message(1700000000, "192.0.2.1", 10));
    other.Flush();
  }
  Store store(o, "sink1", &clock);
  ASSERT_TRUE(store.Start().ok());
  store.Deliver(Message(1700000100, "192.0.2.2", 10));
  store.Deliver(Message(1700000200, "198.51.100.3", 10));
  store.Deliver(Message(1700000300, "2001:db8::1", 10));
  store.Flush();
  auto sources = [&](ListQuery q) {
    std::string out;
    for (const auto& e : store.List(q).entries) out += e.source + " ";
    return out;
  };
  ListQuery q;
  q.network = *base::Cidr::Parse("192.0.2.0/24");
  EXPECT_EQ(sources(q), "192.0.2.2 192.0.2.1 ");
  q = {};
  q.network = *base::Cidr::Parse("2001:db8::/32");
  EXPECT_EQ(sources(q), "2001:db8::1 ");
  q = {};
  q.since = 1700000100;
  q.until = 1700000300;
  EXPECT_EQ(sources(q), "198.51.100.3 192.0.2.2 ");
  q = {};
  q.sink = "sink2";
  EXPECT_EQ(sources(q), "192.0.2.1 ");
  q.sink = "sink1";
  q.limit = 1;
  Page p = store.List(q);
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.entries[0].sink, "sink1");
}

}  // namespace
}  // namespace capture
