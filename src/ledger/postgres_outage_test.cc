// PostgreSQL outages and exactly-once batches: a lost COMMIT reply, a cut
// writer connection, spills across restarts, and three sinks counting
// through a server restart. The fixture is ledger/postgres_store_fixture.h.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include "base/clock.h"
#include "ledger/ledger.h"
#include "ledger/postgres_sql.h"
#include "ledger/postgres_store_fixture.h"

namespace ledger {
namespace {

class PostgresOutageTest : public PostgresStoreTest {};

// Cuts the connection after COMMIT was sent: no more data in either
// direction, and a reply that already arrived (a quick server under a
// loaded client) is discarded, so libpq never reads it.
void CutConnection(int fd) {
  shutdown(fd, SHUT_RDWR);
  char buf[4096];
  for (int i = 0; i < 1000; ++i) {  // bounded: nothing more can arrive
    if (recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0) break;
  }
}

TEST_F(PostgresOutageTest, LostCommitReplyIsRetriedWithoutDoubling) {
  bool cut = true;
  auto o = Opts("a", 3);
  o.after_commit_sent = [&](int, int fd) {
    if (cut) CutConnection(fd);  // COMMIT is on its way; the reply
  };                             // will never arrive (on every part)
  auto s = OpenPostgresStore(o).value();
  std::vector<SourceRecord> batch = {Delta("192.0.2.1", 2),
                                     Delta("192.0.2.2", 5)};
  auto st = s->Apply(batch);
  ASSERT_FALSE(st.ok()) << "the cut did not fail the commit";
  // The server did commit: wait (bounded, 30 s for a loaded machine)
  // until the batch is visible in every part.
  std::string seq;
  for (int i = 0; i < 3000 && seq != "1"; ++i) {
    seq = Scalar(
        "SELECT CASE WHEN count(*) = 3 THEN min(seq) ELSE 0 END FROM "
        "sink_batches");
    if (seq != "1") std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(seq, "1") << "the commit did not reach the server";
  cut = false;
  ASSERT_TRUE(s->Apply(batch).ok());  // the ledger's identical retry
  EXPECT_EQ(s->GetTotals()->messages, 7u);
  EXPECT_EQ(s->GetTotals()->connections, 2u);
  EXPECT_EQ(s->Get(Ip("192.0.2.1")).value()->messages, 2u);
  EXPECT_EQ(s->next_sequence(), 2u);
  ASSERT_TRUE(s->Apply({Delta("192.0.2.1", 1)}).ok());
  EXPECT_EQ(s->Get(Ip("192.0.2.1")).value()->messages, 3u);
  EXPECT_EQ(Scalar("SELECT string_agg(seq::text, ',' ORDER BY part) FROM "
                   "sink_batches WHERE sink_id = 'a'"),
            "2,2,2");
}

// Four writer connections; one part's connection is cut inside its
// transaction (it never commits): the batch fails naming that connection,
// the other parts' records are committed, and the retry commits only the
// cut part. Then the sink stops in the middle of a batch the same way: it
// will not restart with another number of connections (the half-done
// batch could not be finished), and with four it finishes the spilled
// batch exactly once.
TEST_F(PostgresOutageTest, OnePartCutTheOthersCommitAndTheRetryFinishes) {
  constexpr int kParts = 4, kCut = 2, kAddresses = 40;
  std::vector<SourceRecord> batch;
  int in_cut = 0;
  for (int i = 1; i <= kAddresses; ++i) {
    batch.push_back(Delta("192.0.2." + std::to_string(i), 1));
    in_cut += WriterPartition(batch.back().ip, kParts) == kCut;
  }
  ASSERT_GT(in_cut, 0);
  ASSERT_LT(in_cut, kAddresses);
  bool cut = true;
  auto o = Opts("a", kParts);
  o.after_rows_locked = [&](int part, int fd) {
    if (cut && part == kCut) shutdown(fd, SHUT_RDWR);
  };
  auto marks = [&] {
    return Scalar(
        "SELECT string_agg(seq::text, ',' ORDER BY part) FROM "
        "sink_batches WHERE sink_id = 'a'");
  };
  // Every address's messages against want(its part), from one query.
  auto expect_messages = [&](auto want) {
    std::map<std::string, std::string> got;
    std::string all = Scalar(
        "SELECT string_agg(encode(ip, 'hex') || '=' || messages, ',') FROM "
        "sources");
    for (size_t p = 0; p < all.size();) {
      size_t e = std::min(all.find(',', p), all.size());
      size_t eq = all.find('=', p);
      got["\\x" + all.substr(p, eq - p)] = all.substr(eq + 1, e - eq - 1);
      p = e + 1;
    }
    for (const auto& r : batch) {
      int part = WriterPartition(r.ip, kParts);
      std::string key = pg::Hex(r.ip.bytes());
      EXPECT_EQ(got.count(key) ? got[key] : "0", std::string(want(part)))
          << r.ip.ToString() << " in part " << part;
    }
  };
  {
    auto s = OpenPostgresStore(o).value();
    auto st = s->Apply(batch);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("writer connection 2"), std::string::npos)
        << st.message();
    expect_messages([](int p) { return p == kCut ? "0" : "1"; });
    EXPECT_EQ(marks(), "1,1,0,1");
    EXPECT_EQ(Scalar("SELECT sources FROM totals"),
              std::to_string(kAddresses - in_cut));
    cut = false;
    ASSERT_TRUE(s->Apply(batch).ok());  // the ledger's identical retry
    expect_messages([](int) { return "1"; });
    EXPECT_EQ(marks(), "1,1,1,1");
    EXPECT_EQ(s->GetTotals()->messages, uint64_t(kAddresses));
    EXPECT_EQ(s->next_sequence(), 2u);
    // Batch 2: part 2 cut again, and the sink stops with it pending.
    cut = true;
    ASSERT_FALSE(s->Apply(batch).ok());
    EXPECT_EQ(marks(), "2,2,1,2");
  }
  auto other = OpenPostgresStore(Opts("a", 2));
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().find("ledger.writer_connections"), std::string::npos)
      << other.error();
  cut = false;
  auto s = OpenPostgresStore(o).value();
  EXPECT_EQ(s->next_sequence(), 3u);
  EXPECT_FALSE(s->ResumeBatch(2));  // the spilled batch 2: not in full
  ASSERT_TRUE(s->Apply(batch).ok());
  expect_messages([](int) { return "2"; });
  EXPECT_EQ(marks(), "2,2,2,2");
  EXPECT_EQ(s->GetTotals()->messages, uint64_t(2 * kAddresses));
  EXPECT_EQ(s->GetTotals()->sources, uint64_t(kAddresses));
  EXPECT_TRUE(s->ResumeBatch(2));     // now held in full
  ASSERT_TRUE(s->Apply(batch).ok());  // batch 3, fresh
  EXPECT_EQ(marks(), "3,3,3,3");
  expect_messages([](int) { return "3"; });
  // Clean: every mark equal, so another number of connections is taken.
  s.reset();
  auto two = OpenPostgresStore(Opts("a", 2));
  ASSERT_TRUE(two.ok()) << two.error();
  EXPECT_EQ(marks(), "3,3");
  ASSERT_TRUE((*two)->Apply(batch).ok());
  EXPECT_EQ(marks(), "4,4");
  EXPECT_EQ((*two)->GetTotals()->messages, uint64_t(4 * kAddresses));
}

// SIGTERM with the database down: the failed batch goes to the spill file
// with its sequence number, the pending records after it. A batch whose
// COMMIT reached the server (its reply lost) is found committed at the
// next start and skipped; one that did not is sent. Exact, never doubled.
TEST_F(PostgresOutageTest, SpillAtCloseKeepsExactlyOnceAcrossRestarts) {
  testing::TempDir dir;
  base::FakeClock clock;
  const std::string spill = dir.File("s.spill");
  auto seq = [&] {
    return Scalar("SELECT min(seq) FROM sink_batches WHERE sink_id = 'a'");
  };
  {
    bool cut = false;
    auto o = Opts("a", 3);
    o.after_commit_sent = [&](int, int fd) {
      if (cut) CutConnection(fd);
    };
    auto l =
        Ledger::Create(OpenPostgresStore(o).value(), Options(), &clock, false);
    ASSERT_TRUE(l->UseSpill(spill, 0).ok());
    l->Record(Session("192.0.2.1", 1, 10));
    ASSERT_TRUE(l->Flush().ok());  // batch 1
    cut = true;
    l->Record(Session("192.0.2.1", 2, 10));
    EXPECT_FALSE(l->Flush().ok());  // batch 2: committed, reply lost
    for (int i = 0; i < 3000 && seq() != "2"; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_EQ(seq(), "2") << "the commit did not reach the server";
    pg_->Stop();
    l->Record(Session("192.0.2.2", 4, 10));  // pending while it is down
    EXPECT_TRUE(l->Close().ok());            // spilled, not lost
    EXPECT_EQ(l->Metrics().sources_spilled, 1u);
  }
  ASSERT_TRUE(pg_->Start());
  {
    auto l = Ledger::Create(OpenPostgresStore(Opts("a", 3)).value(), Options(),
                            &clock, false);
    ASSERT_TRUE(l->UseSpill(spill, 0).ok());  // batch 2 found committed
    ASSERT_TRUE(l->Flush().ok());             // the pending: batch 3
    EXPECT_EQ(seq(), "3");
    pg_->Stop();
    l->Record(Session("192.0.2.3", 8, 10));
    EXPECT_FALSE(l->Flush().ok());  // batch 4 never reached the server
    EXPECT_TRUE(l->Close().ok());
  }
  ASSERT_TRUE(pg_->Start());
  auto l = Ledger::Create(OpenPostgresStore(Opts("a", 3)).value(), Options(),
                          &clock, false);
  ASSERT_TRUE(l->UseSpill(spill, 0).ok());
  ASSERT_TRUE(l->Flush().ok());  // batch 4, from the spill
  EXPECT_EQ(seq(), "4");
  auto* s = l->store();
  EXPECT_EQ(s->Get(Ip("192.0.2.1")).value()->messages, 3u);
  EXPECT_EQ(s->Get(Ip("192.0.2.2")).value()->messages, 4u);
  EXPECT_EQ(s->Get(Ip("192.0.2.3")).value()->messages, 8u);
  EXPECT_EQ(s->GetTotals()->connections, 4u);
  EXPECT_FALSE(std::filesystem::exists(spill + ".batch"));
  EXPECT_FALSE(std::filesystem::exists(spill));
}

// A sink stopped with a batch whose COMMIT went through unconfirmed starts
// again while the database is down: the spilled batch waits, and once the
// server answers it is found committed (not applied twice), then the rest
// is sent.
TEST_F(PostgresOutageTest, StartedUnreachableResumesTheSpilledBatchOnce) {
  testing::TempDir dir;
  base::FakeClock clock;
  const std::string spill = dir.File("s.spill");
  auto seq = [&] {
    return Scalar("SELECT min(seq) FROM sink_batches WHERE sink_id = 'a'");
  };
  {
    bool cut = false;
    auto o = Opts("a", 3);
    o.after_commit_sent = [&](int, int fd) {
      if (cut) CutConnection(fd);
    };
    auto l =
        Ledger::Create(OpenPostgresStore(o).value(), Options(), &clock, false);
    ASSERT_TRUE(l->UseSpill(spill, 0).ok());
    l->Record(Session("192.0.2.1", 1, 10));
    ASSERT_TRUE(l->Flush().ok());  // batch 1
    cut = true;
    l->Record(Session("192.0.2.1", 2, 10));
    EXPECT_FALSE(l->Flush().ok());  // batch 2: committed, reply lost
    for (int i = 0; i < 3000 && seq() != "2"; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_EQ(seq(), "2") << "the commit did not reach the server";
    pg_->Stop();
    l->Record(Session("192.0.2.2", 4, 10));
    EXPECT_TRUE(l->Close().ok());  // batch 2 to .batch, the pending to P
  }
  auto store = OpenPostgresStore(Opts("a", 3));  // the server is down
  ASSERT_TRUE(store.ok()) << store.error();
  auto l = Ledger::Create(std::move(store).value(), Options(), &clock, false);
  ASSERT_TRUE(l->UseSpill(spill, 0).ok());
  EXPECT_FALSE(l->Flush().ok());
  ASSERT_TRUE(pg_->Start());
  // Polls through the reconnect backoff (at most 8 s between attempts).
  bool flushed = false;
  for (int i = 0; i < 400 && !flushed; ++i) {
    flushed = l->Flush().ok() && !std::filesystem::exists(spill);
    if (!flushed) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(flushed);
  EXPECT_EQ(seq(), "3");  // batch 2 skipped, the spilled pending is 3
  auto* s = l->store();
  EXPECT_EQ(s->Get(Ip("192.0.2.1")).value()->messages, 3u);
  EXPECT_EQ(s->Get(Ip("192.0.2.2")).value()->messages, 4u);
  EXPECT_EQ(s->GetTotals()->connections, 3u);
  EXPECT_FALSE(std::filesystem::exists(spill + ".batch"));
}

// Three sinks, 600 addresses of 127.0.0.0/8 spread over them with
// overlapping shares, recording concurrently through their own ledgers and
// writer threads; the server is stopped and started again mid-load. Every
// per-address, per-sink and total count is exact.
TEST_F(PostgresOutageTest, ThreeSinksCountExactlyThroughAnOutage) {
  constexpr int kSinks = 3, kAddresses = 600, kRounds = 4;
  Options lo;
  lo.flush_interval = 0.02;
  lo.retention_days = 0;  // the sessions are dated 2023
  std::vector<std::unique_ptr<Ledger>> sinks;
  for (int k = 0; k < kSinks; ++k) {
    auto s = OpenPostgresStore(Opts("sink-" + std::to_string(k), 1 + k));
    ASSERT_TRUE(s.ok()) << s.error();
    sinks.push_back(Ledger::Create(std::move(s).value(), lo,
                                   &base::SystemClock::Get(), true));
  }
  // Address i is seen by sink k (i % 3 + k) % 2 + 1 times per round when
  // (i + k) % 3 != 0: some addresses by one sink, most by two.
  auto visits = [](int i, int k) {
    return (i + k) % 3 == 0 ? 0 : (i % 3 + k) % 2 + 1;
  };
  auto ip = [](int i) {
    return "127.1." + std::to_string(i / 250) + "." + std::to_string(i % 250);
  };
  auto load = [&](int round) {
    std::vector<std::thread> threads;
    for (int k = 0; k < kSinks; ++k) {
      threads.emplace_back([&, k] {
        for (int i = 0; i < kAddresses; ++i) {
          for (int v = 0; v < visits(i, k); ++v) {
            sinks[k]->Record(Session(ip(i), 2, 100, 1.7e9 + round));
          }
        }
      });
    }
    for (auto& t : threads) t.join();
  };
  load(0);
  load(1);
  for (auto& s : sinks) ASSERT_TRUE(s->Flush().ok());
  pg_->Stop();
  load(2);
  for (auto& s : sinks) EXPECT_FALSE(s->Flush().ok());
  ASSERT_TRUE(pg_->Start());
  load(3);
  for (auto& s : sinks) ASSERT_TRUE(s->Close().ok());

  auto reader = OpenPostgresStore(Opts("reader")).value();
  uint64_t total = 0;
  std::map<std::string, uint64_t> per_sink;
  for (int i = 0; i < kAddresses; ++i) {
    uint64_t want = 0;
    for (int k = 0; k < kSinks; ++k) want += visits(i, k) * kRounds;
    total += want;
    auto got = reader->Get(Ip(ip(i))).value();
    ASSERT_TRUE(got.has_value()) << ip(i);
    EXPECT_EQ(got->connections, want) << ip(i);
    EXPECT_EQ(got->messages, 2 * want) << ip(i);
    EXPECT_DOUBLE_EQ(got->first_seen, 1.7e9 - 2);
    EXPECT_DOUBLE_EQ(got->last_seen, 1.7e9 + kRounds - 1);
    auto by_sink = reader->Sinks(Ip(ip(i))).value();
    size_t n = 0;
    for (int k = 0; k < kSinks; ++k) {
      if (visits(i, k) == 0) continue;
      ASSERT_LT(n, by_sink.size());
      EXPECT_EQ(by_sink[n].sink_id, "sink-" + std::to_string(k));
      EXPECT_EQ(by_sink[n].connections, uint64_t(visits(i, k) * kRounds));
      per_sink["sink-" + std::to_string(k)] += visits(i, k) * kRounds;
      ++n;
    }
    EXPECT_EQ(by_sink.size(), n) << ip(i);
  }
  auto t = reader->GetTotals().value();
  EXPECT_EQ(t.sources, uint64_t(kAddresses));
  EXPECT_EQ(t.connections, total);
  EXPECT_EQ(t.messages, 2 * total);
  auto totals = reader->SinkTotals().value();
  ASSERT_EQ(totals.size(), 3u);
  for (const auto& s : totals) {
    EXPECT_EQ(s.connections, per_sink[s.sink_id]) << s.sink_id;
  }
}

// Close tries the server at once, however long the reconnect backoff that
// failures while it was down built up: a database back a moment before
// SIGTERM gets the last batch rather than the log's ledger_close_lost.
TEST_F(PostgresOutageTest, CloseTriesAtOnceWhateverTheBackoff) {
  base::FakeClock clock;
  auto l = Ledger::Create(OpenPostgresStore(Opts("a")).value(), Options(),
                          &clock, false);
  l->Record(Session("192.0.2.1", 1, 10));
  ASSERT_TRUE(l->Flush().ok());
  pg_->Stop();
  l->Record(Session("192.0.2.1", 2, 10));
  // Failed attempts double the backoff (0.25, 0.5, 1, 2 s); poll until it
  // is at least 2 s, longer than the server takes to start again.
  bool long_backoff = false;
  for (int i = 0; i < 200 && !long_backoff; ++i) {
    auto s = l->Flush();
    ASSERT_FALSE(s.ok());
    long_backoff = s.message().find("within 2 s") != std::string::npos ||
                   s.message().find("within 4 s") != std::string::npos;
    if (!long_backoff)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(long_backoff);
  ASSERT_TRUE(pg_->Start());
  EXPECT_TRUE(l->Close().ok());
  auto reader = OpenPostgresStore(Opts("reader")).value();
  EXPECT_EQ(reader->Get(Ip("192.0.2.1")).value()->messages, 3u);
}

}  // namespace
}  // namespace ledger
