#include "tarpit/policy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "base/clock.h"

namespace tarpit {
namespace {

using std::chrono::seconds;

// Returns the values it was given, in turn, then the last one forever.
class FakeRandom final : public Random {
 public:
  explicit FakeRandom(std::vector<double> values) : values_(values) {}
  double Uniform() override {
    double v = values_[std::min(next_, values_.size() - 1)];
    ++next_;
    return v;
  }
  size_t draws() const { return next_; }

 private:
  std::vector<double> values_;
  size_t next_ = 0;
};

double Secs(base::Duration d) {
  return std::chrono::duration<double>(d).count();
}

struct Fixture {
  base::FakeClock clock;
  Options options;
  PeerHistory history;
  SessionCounters session;
  Capacity capacity;
  Fixture() {
    options.enabled = true;  // the shipped default is off
    clock.Advance(std::chrono::hours(1));
    session.started = clock.Now();
    capacity.open_connections = 1;
    capacity.max_connections = 1000;
  }
  Plan Decide() const {
    return tarpit::Decide(options, history, session, capacity, clock.Now());
  }
  double Delay(const Plan& plan, Stage stage, double u, size_t bytes = 1) {
    FakeRandom r({u});
    return Secs(plan.Pace(stage, bytes, clock.Now(), r).delay);
  }
};

TEST(PolicyTest, StrangerGetsTheBaseDelays) {
  Fixture f;
  f.options.stutter = false;
  Plan p = f.Decide();
  EXPECT_FALSE(p.shed);
  EXPECT_TRUE(p.held);
  EXPECT_EQ(p.sender_class, SenderClass::kNew);
  EXPECT_EQ(p.level, 0);
  EXPECT_EQ(p.mode, Mode::kKeepTalking);
  EXPECT_DOUBLE_EQ(p.delays[0].min, 2);
  EXPECT_DOUBLE_EQ(p.delays[0].max, 5);
  EXPECT_NEAR(f.Delay(p, Stage::kGreeting, 0), 2, 1e-6);
  EXPECT_NEAR(f.Delay(p, Stage::kGreeting, 0.5), 3.5, 1e-6);
  EXPECT_NEAR(f.Delay(p, Stage::kDataEnd, 1.0), 10, 1e-6);
  EXPECT_EQ(p.receive_window, 2048);
  EXPECT_TRUE(p.reject_early_talker);
}

TEST(PolicyTest, FixedDelayDrawsNothing) {
  Fixture f;
  f.options.reply = {3, 3};
  Plan p = f.Decide();
  FakeRandom r({0.9});
  EXPECT_NEAR(Secs(p.Pace(Stage::kOther, 1, f.clock.Now(), r).delay), 3, 1e-6);
  EXPECT_EQ(r.draws(), 0u);
}

TEST(PolicyTest, LevelGrowsWithHistoryAndSaturates) {
  struct Case {
    int64_t connections;
    double level;
  };
  // level = log1p(score) / log1p(100).
  const Case cases[] = {{0, 0},
                        {1, std::log(2) / std::log(101)},
                        {10, std::log(11) / std::log(101)},
                        {100, 1},
                        {100000, 1}};
  for (const Case& c : cases) {
    Fixture f;
    f.history.connections = c.connections;
    EXPECT_NEAR(f.Decide().level, c.level, 1e-9) << c.connections;
  }
}

TEST(PolicyTest, DelaysEscalateWithinTheCeiling) {
  for (Mode mode : {Mode::kKeepTalking, Mode::kGiveUp}) {
    double previous = -1;
    for (int64_t n : {0, 1, 3, 10, 30, 100, 1000}) {
      Fixture f;
      f.options.mode = mode;
      f.options.stutter = false;
      f.history.connections = n;
      f.history.messages = n;
      Plan p = f.Decide();
      for (int s = 0; s < kStageCount; ++s) {
        double d = f.Delay(p, static_cast<Stage>(s), 0.999);
        EXPECT_LE(d, p.ceilings[s] + 1e-6) << n;
      }
      double g = f.Delay(p, Stage::kGreeting, 0.5);
      if (n < 100) {
        EXPECT_GT(g, previous) << "connections " << n;
      }
      EXPECT_GE(g, previous);
      previous = g;
    }
  }
}

TEST(PolicyTest, KeepTalkingStaysBelowClientTimeouts) {
  Fixture f;
  f.history.connections = 1000;  // fully escalated
  f.options.keep_talking_fraction = 0.9;
  Plan p = f.Decide();
  ASSERT_EQ(p.level, 1);
  const size_t reply = 300;  // long enough that stutter alone would overrun
  for (int s = 0; s < kStageCount; ++s) {
    FakeRandom r({0.999});
    Pacing pace = p.Pace(static_cast<Stage>(s), reply, f.clock.Now(), r);
    base::Duration chunks_time =
        pace.interval *
        ((reply + pace.chunk_bytes - 1) / std::max(pace.chunk_bytes, 1) - 1);
    double total = Secs(pace.delay + chunks_time);
    EXPECT_LE(total, kClientTimeout[s] * 0.9 + 1e-6) << s;
    EXPECT_GT(total, kClientTimeout[s] * 0.9 * 0.7) << s;
  }
}

TEST(PolicyTest, GiveUpGoesAboveClientTimeouts) {
  Fixture f;
  f.options.mode = Mode::kGiveUp;
  f.history.early_talker = 50;
  Plan p = f.Decide();
  ASSERT_EQ(p.level, 1);
  for (int s = 0; s < kStageCount; ++s) {
    double d = f.Delay(p, static_cast<Stage>(s), 0);  // lowest draw
    EXPECT_GT(d, kClientTimeout[s]) << s;
  }
  EXPECT_GT(Secs(p.data_read_interval), kDataBlockTimeout);
}

TEST(PolicyTest, EscalateModeSwitchesAtTheLevel) {
  Fixture f;
  f.options.mode = Mode::kEscalate;
  f.options.give_up_level = 0.5;
  f.history.connections = 3;  // level 0.3
  EXPECT_EQ(f.Decide().mode, Mode::kKeepTalking);
  f.history.connections = 20;  // level 0.66
  EXPECT_EQ(f.Decide().mode, Mode::kGiveUp);
}

TEST(PolicyTest, SenderClassAndVerdict) {
  struct Case {
    PeerHistory history;
    bool early_talker;
    SenderClass cls;
    Verdict verdict;
  };
  const Case cases[] = {
      {{}, false, SenderClass::kNew, Verdict::kAccept},
      {{.connections = 2}, false, SenderClass::kReturning, Verdict::kTempfail},
      {{.connections = 2, .protocol_errors = 4},
       false,
       SenderClass::kReturning,
       Verdict::kTempfail},  // evidence 8 < 10
      {{.connections = 2, .protocol_errors = 5},
       false,
       SenderClass::kBot,
       Verdict::kReject},
      {{.bare_lf = 2}, false, SenderClass::kBot, Verdict::kReject},
      {{}, true, SenderClass::kBot, Verdict::kReject},  // this session
  };
  for (const Case& c : cases) {
    Fixture f;
    f.options.verdict_new = Verdict::kAccept;
    f.options.verdict_returning = Verdict::kTempfail;
    f.options.verdict_bot = Verdict::kReject;
    f.history = c.history;
    f.session.early_talker = c.early_talker;
    Plan p = f.Decide();
    EXPECT_EQ(p.sender_class, c.cls) << SenderClassName(c.cls);
    EXPECT_EQ(p.verdict, c.verdict) << SenderClassName(c.cls);
  }
}

TEST(PolicyTest, CapacityDegradesThenSheds) {
  struct Case {
    int64_t open, max_open, memory, memory_limit;
    bool shed, degraded, stutter;
    double squeeze;  // share of the normal greeting delay
  };
  const Case cases[] = {
      {500, 1000, 0, 0, false, false, true, 1},
      {799, 1000, 0, 0, false, false, true, 1},
      {800, 1000, 0, 0, false, true, false, 1},
      {875, 1000, 0, 0, false, true, false, 0.5},
      {949, 1000, 0, 0, false, true, false, 1.0 / 150},
      {950, 1000, 0, 0, true, true, false, 0},
      {5000, 1000, 0, 0, true, true, false, 0},
      {1, 1000, 875, 1000, false, true, false, 0.5},  // memory pressure
      {1, 1000, 960, 1000, true, true, false, 0},
      {1, 0, 0, 0, false, false, true, 1},  // no limits known
  };
  for (const Case& c : cases) {
    Fixture f;
    f.options.greeting = {4, 4};
    f.capacity.open_connections = c.open;
    f.capacity.max_connections = c.max_open;
    f.capacity.memory_bytes = c.memory;
    f.capacity.memory_limit = c.memory_limit;
    Plan p = f.Decide();
    SCOPED_TRACE(testing::Message()
                 << "open " << c.open << " mem " << c.memory);
    EXPECT_EQ(p.shed, c.shed);
    EXPECT_EQ(p.degraded, c.degraded);
    EXPECT_EQ(p.stutter, c.stutter);
    EXPECT_EQ(p.held, !c.shed);
    EXPECT_NEAR(f.Delay(p, Stage::kGreeting, 0.5), 4 * c.squeeze, 1e-6);
    if (c.degraded) {
      EXPECT_EQ(p.receive_window, 0);
      EXPECT_EQ(p.DataRead(f.clock.Now()).bytes, 0);
    }
  }
}

TEST(PolicyTest, HeldAndStutterCapsAreSeparate) {
  struct Case {
    int64_t held, stuttering;
    bool owns_held, owns_stutter;
    bool want_held, want_stutter;
  };
  const Case cases[] = {
      {0, 0, false, false, true, true},    {9, 9, false, false, true, true},
      {10, 0, false, false, false, false},  // held cap full
      {10, 0, true, false, true, true},     // keeps its own slot
      {5, 10, false, false, true, false},   // stutter cap full
      {5, 10, true, true, true, true},
  };
  for (const Case& c : cases) {
    Fixture f;
    f.options.max_held = 10;
    f.options.max_stuttering = 10;
    f.capacity.held = c.held;
    f.capacity.stuttering = c.stuttering;
    f.session.held = c.owns_held;
    f.session.stuttering = c.owns_stutter;
    Plan p = f.Decide();
    SCOPED_TRACE(testing::Message() << c.held << "/" << c.stuttering);
    EXPECT_EQ(p.held, c.want_held);
    EXPECT_EQ(p.stutter, c.want_stutter);
    if (!c.want_held) {
      FakeRandom r({0.5});
      Pacing pace = p.Pace(Stage::kGreeting, 40, f.clock.Now(), r);
      EXPECT_EQ(pace.delay, base::Duration::zero());
      EXPECT_EQ(pace.chunk_bytes, 0);
      EXPECT_EQ(p.receive_window, 0);
    }
  }
}

TEST(PolicyTest, DisabledIsPromptButKeepsVerdicts) {
  Fixture f;
  f.options.enabled = false;
  f.options.verdict_new = Verdict::kTempfail;
  Plan p = f.Decide();
  EXPECT_FALSE(p.held);
  EXPECT_EQ(p.verdict, Verdict::kTempfail);
  EXPECT_EQ(f.Delay(p, Stage::kDataEnd, 0.5), 0);
}

TEST(PolicyTest, HoldBudgetEndsDelaysInKeepTalking) {
  Fixture f;
  f.options.hold_budget = 100;
  f.history.connections = 1000;
  Plan p = f.Decide();
  f.clock.Advance(seconds(90));  // 10 s left: the 150 s greeting shrinks
  FakeRandom r({0.5});
  Pacing pace = p.Pace(Stage::kGreeting, 1, f.clock.Now(), r);
  EXPECT_NEAR(Secs(pace.delay), 10, 1e-6);
  EXPECT_GT(p.DataRead(f.clock.Now()).bytes, 0);
  f.clock.Advance(seconds(10));
  EXPECT_EQ(f.Delay(p, Stage::kGreeting, 0.5), 0);
  EXPECT_EQ(p.DataRead(f.clock.Now()).bytes, 0);
  EXPECT_FALSE(f.Decide().held);  // deciding again releases the slot

  f.options.mode = Mode::kGiveUp;  // the budget does not apply
  EXPECT_GT(f.Delay(f.Decide(), Stage::kGreeting, 0.5), 300);
}

TEST(PolicyTest, StutterOnlyForTheFirstSeconds) {
  Fixture f;
  f.options.stutter_for = 10;
  Plan p = f.Decide();
  FakeRandom r({0});
  EXPECT_EQ(p.Pace(Stage::kOther, 20, f.clock.Now(), r).chunk_bytes, 1);
  f.clock.Advance(seconds(10));
  EXPECT_EQ(p.Pace(Stage::kOther, 20, f.clock.Now(), r).chunk_bytes, 0);
  EXPECT_FALSE(f.Decide().stutter);
}

TEST(PolicyTest, StutterSpeedsUpToFitTheCeilingInKeepTalking) {
  Fixture f;
  f.options.keep_talking_fraction = 0.1;  // greeting ceiling 30 s
  Plan p = f.Decide();
  FakeRandom r({0.5});
  // 100 bytes at 1 B/s would take 99 s: 31 chunks of 4 bytes fit in 30 s.
  Pacing pace = p.Pace(Stage::kGreeting, 100, f.clock.Now(), r);
  EXPECT_EQ(pace.chunk_bytes, 4);
  EXPECT_EQ(pace.interval, seconds(1));
  // 25 chunks, 24 intervals: the drawn 3.5 s delay still fits.
  EXPECT_NEAR(Secs(pace.delay), 3.5, 1e-6);
  // 28 bytes: 27 s of stutter leave 3 s of the drawn 3.5 s delay.
  pace = p.Pace(Stage::kGreeting, 28, f.clock.Now(), r);
  EXPECT_EQ(pace.chunk_bytes, 1);
  EXPECT_NEAR(Secs(pace.delay), 3, 1e-6);
  // Short replies keep 1 byte/s and their drawn delay.
  pace = p.Pace(Stage::kGreeting, 10, f.clock.Now(), r);
  EXPECT_EQ(pace.chunk_bytes, 1);
  EXPECT_NEAR(Secs(pace.delay), 3.5, 1e-6);
}

TEST(PolicyTest, SlowReaderScalesWithLevel) {
  Fixture f;
  Plan p = f.Decide();
  auto read = p.DataRead(f.clock.Now());
  EXPECT_EQ(read.bytes, 1024);
  EXPECT_NEAR(Secs(read.interval), 0.25, 1e-6);
  f.history.connections = 1000;
  read = f.Decide().DataRead(f.clock.Now());
  EXPECT_NEAR(Secs(read.interval), kDataBlockTimeout * 0.5, 1e-6);
}

// tarpit.max_delay caps every single wait, whatever the reputation and the
// mode: before it, a returning sender waited ~30 s per reply with base
// delays of 0.2 s.
TEST(PolicyTest, MaxDelayCapsEveryWait) {
  for (Mode mode : {Mode::kKeepTalking, Mode::kGiveUp}) {
    Fixture f;
    f.options.mode = mode;
    f.options.max_delay = 5;
    f.options.stutter_interval = 9;
    f.history.connections = 1000;
    f.history.messages = 1000;
    Plan p = f.Decide();
    ASSERT_TRUE(p.held);
    for (int s = 0; s < kStageCount; ++s) {
      EXPECT_LE(f.Delay(p, static_cast<Stage>(s), 0.999), 5 + 1e-9) << s;
      EXPECT_GT(f.Delay(p, static_cast<Stage>(s), 0.999), 3) << s;
    }
    EXPECT_LE(Secs(p.DataRead(f.clock.Now()).interval), 5 + 1e-9);
    EXPECT_LE(Secs(p.stutter_interval), 5 + 1e-9);
  }
  Fixture f;  // 0: no cap beyond the stage ceilings
  f.options.stutter = false;
  f.history.connections = 1000;
  EXPECT_GT(f.Delay(f.Decide(), Stage::kGreeting, 0.999), 100);
}

TEST(OptionsTest, ExemptMatchesNetworksAndAddresses) {
  Options o;
  o.exempt = {"192.0.2.0/24", "2001:db8::7", "not a network"};
  EXPECT_TRUE(Exempt(o, *base::IpAddress::Parse("192.0.2.200")));
  EXPECT_TRUE(Exempt(o, *base::IpAddress::Parse("2001:db8::7")));
  EXPECT_FALSE(Exempt(o, *base::IpAddress::Parse("2001:db8::8")));
  EXPECT_FALSE(Exempt(o, *base::IpAddress::Parse("198.51.100.1")));
  EXPECT_FALSE(Exempt(Options{}, *base::IpAddress::Parse("192.0.2.1")));
}

TEST(PolicyTest, NonsenseOptionsNeverMakeNegativeOrEndlessDelays) {
  Fixture f;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  f.options.greeting = {-5, nan};
  f.options.reply = {inf, inf};
  f.options.weight_connection = nan;
  f.options.keep_talking_fraction = inf;
  f.options.jitter = -1;
  f.history.connections = 5;
  Plan p = f.Decide();
  for (int s = 0; s < kStageCount; ++s) {
    double d = f.Delay(p, static_cast<Stage>(s), 0.7);
    EXPECT_GE(d, 0) << s;
    EXPECT_LE(d, kClientTimeout[s]) << s;
  }
}

TEST(PolicyTest, SplitMixIsDeterministicAndInRange) {
  SplitMixRandom a(42), b(42);
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    double x = a.Uniform();
    ASSERT_EQ(x, b.Uniform());
    ASSERT_GE(x, 0);
    ASSERT_LT(x, 1);
    sum += x;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.02);
}

TEST(OptionsTest, NamesRoundTrip) {
  for (Mode m : {Mode::kKeepTalking, Mode::kGiveUp, Mode::kEscalate}) {
    EXPECT_EQ(ParseMode(ModeName(m)), m);
  }
  for (Verdict v : {Verdict::kDefault, Verdict::kAccept, Verdict::kTempfail,
                    Verdict::kReject}) {
    EXPECT_EQ(ParseVerdict(VerdictName(v)), v);
  }
  EXPECT_FALSE(ParseMode("sleepy").has_value());
  EXPECT_FALSE(ParseVerdict("").has_value());
}

}  // namespace
}  // namespace tarpit
