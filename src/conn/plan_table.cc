#include "conn/plan_table.h"

#include <bit>

namespace conn {

namespace {

// FNV-1a over 64-bit words.
struct Mix {
  uint64_t h = 1469598103934665603ull;
  void Add(uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  }
  void Add(double d) { Add(std::bit_cast<uint64_t>(d)); }
};

}  // namespace

PlanTable::~PlanTable() = default;

tarpit::Plan PlanTable::Shared(const tarpit::Plan& p) {
  tarpit::Plan s = p;
  s.hold_deadline = base::SteadyTime::max();
  s.stutter_until = base::SteadyTime::max();
  return s;
}

size_t PlanTable::Hash(const tarpit::Plan& p) {
  Mix m;
  m.Add(uint64_t(p.shed) | uint64_t(p.held) << 1 | uint64_t(p.stutter) << 2 |
        uint64_t(p.degraded) << 3 | uint64_t(p.reject_early_talker) << 4 |
        uint64_t(p.sender_class) << 8 | uint64_t(p.mode) << 16 |
        uint64_t(p.verdict) << 24);
  m.Add(p.score);
  m.Add(p.level);
  for (const auto& d : p.delays) {
    m.Add(d.min);
    m.Add(d.max);
  }
  for (double c : p.ceilings) m.Add(c);
  m.Add(uint64_t(p.stutter_bytes));
  m.Add(uint64_t(p.stutter_interval.count()));
  m.Add(uint64_t(p.receive_window));
  m.Add(uint64_t(p.data_read_bytes));
  m.Add(uint64_t(p.data_read_interval.count()));
  return size_t(m.h);
}

const tarpit::Plan* PlanTable::Acquire(const tarpit::Plan& p) {
  tarpit::Plan s = Shared(p);
  size_t h = Hash(s);
  auto [b, e] = index_.equal_range(h);
  for (auto it = b; it != e; ++it) {
    if (it->second->plan == s) {
      ++it->second->refs;
      return &it->second->plan;
    }
  }
  auto entry = std::make_unique<Entry>();
  entry->plan = s;
  entry->refs = 1;
  const tarpit::Plan* out = &entry->plan;
  index_.emplace(h, std::move(entry));
  return out;
}

void PlanTable::Release(const tarpit::Plan* plan) {
  // The hash is of the plan's bits, so it finds the entry even for a plan
  // that == does not match (NaN).
  auto [b, e] = index_.equal_range(Hash(*plan));
  for (auto it = b; it != e; ++it) {
    if (&it->second->plan == plan) {
      if (--it->second->refs == 0) index_.erase(it);
      return;
    }
  }
}

}  // namespace conn
