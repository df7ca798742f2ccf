// Held connections share their tarpit plan (PlanTable) and keep their own
// hold and stutter deadlines.
#include "conn/plan_table.h"

#include <gtest/gtest.h>

#include <cmath>

#include "conn/machine_fixture.h"

namespace conn {
namespace {

tarpit::Plan Held(double level, base::SteadyTime start) {
  tarpit::Plan p;
  p.held = true;
  p.level = level;
  p.delays[0] = {3, 3 + level};
  p.hold_deadline = start + std::chrono::seconds(540);
  p.stutter_until = start + std::chrono::seconds(60);
  return p;
}

TEST(PlanTable, EqualPlansShareOneCopyFreedWithTheLast) {
  PlanTable t;
  base::SteadyTime t0{};
  const tarpit::Plan* a = t.Acquire(Held(0.5, t0));
  const tarpit::Plan* b = t.Acquire(Held(0.5, t0 + std::chrono::seconds(7)));
  EXPECT_EQ(a, b);  // only their times differ
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(a->hold_deadline, base::SteadyTime::max());  // not kept shared
  EXPECT_EQ(*a, PlanTable::Shared(Held(0.5, t0)));
  const tarpit::Plan* c = t.Acquire(Held(0.25, t0));
  EXPECT_NE(a, c);
  EXPECT_EQ(t.size(), 2u);
  t.Release(a);
  EXPECT_EQ(t.size(), 2u);
  t.Release(c);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_DOUBLE_EQ(b->level, 0.5);  // still in use
  t.Release(b);
  EXPECT_EQ(t.size(), 0u);
}

// A plan that is not equal to itself is never shared, and still freed.
TEST(PlanTable, APlanNotEqualToItselfIsFreed) {
  PlanTable t;
  const tarpit::Plan* a = t.Acquire(Held(NAN, {}));
  const tarpit::Plan* b = t.Acquire(Held(NAN, {}));
  EXPECT_NE(a, b);
  EXPECT_EQ(t.size(), 2u);
  t.Release(b);
  t.Release(a);
  EXPECT_EQ(t.size(), 0u);
}

class SharedPlans : public Machine {};

// Two held connections of one thread share one plan; each keeps its own
// hold deadline (start + hold_budget), and its replies obey it.
TEST_F(SharedPlans, HeldConnectionsShareAPlanAndKeepTheirDeadlines) {
  HoldAll(false);  // 3 s per stage
  tarpit_.hold_budget = 4;
  Begin();  // waits the 3 s greeting delay, greets
  ASSERT_EQ(plans_.size(), 1u);
  auto other = std::make_unique<Connection>(&env_);
  Command oc = other->Start(*base::IpAddress::Parse("192.0.2.8"), 4001, false);
  ASSERT_EQ(oc.kind, Kind::kWait);
  EXPECT_EQ(plans_.size(), 1u);  // the same plan, shared
  ASSERT_TRUE(m_->plan() && other->plan());
  EXPECT_EQ(other->plan()->hold_deadline - m_->plan()->hold_deadline,
            std::chrono::seconds(3));
  // The first connection's EHLO reply comes at its own hold deadline (4 s
  // after it connected: 1 s after EHLO), not after the stage's 3 s.
  Take();
  writes_.clear();
  Client("EHLO a.example\r\n");
  ASSERT_EQ(writes_.size(), 1u);
  EXPECT_DOUBLE_EQ(writes_[0].wait, 1);
  EXPECT_TRUE(writes_[0].bytes.starts_with("250"));
  other.reset();
  EXPECT_EQ(plans_.size(), 1u);
  m_.reset();
  EXPECT_EQ(plans_.size(), 0u);
}

}  // namespace
}  // namespace conn
