// The tarpit plans of one thread's connections, each distinct plan kept
// once. A plan is 256 bytes (per-stage delay ranges and ceilings) and the
// held connections of one class at one load all get the same one, so a
// held connection keeps a pointer into this table and its own two times
// (the hold and stutter deadlines, which depend on when it connected)
// instead of a copy. Plans are counted and freed with their last user.
//
// Threading: one table per thread, used by that thread's machines only
// (conn::Env::plans).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>

#include "tarpit/policy.h"

namespace conn {

class PlanTable {
 public:
  PlanTable() = default;
  PlanTable(const PlanTable&) = delete;
  PlanTable& operator=(const PlanTable&) = delete;
  ~PlanTable();

  // The table's copy of p with its per-connection times cleared
  // (Shared(p)), counted once more. Valid until Release.
  const tarpit::Plan* Acquire(const tarpit::Plan& p);
  // REQUIRES: plan came from Acquire of this table and is not yet released.
  void Release(const tarpit::Plan* plan);
  // Distinct plans in use.
  size_t size() const { return index_.size(); }

  // p without the per-connection times (hold_deadline, stutter_until).
  static tarpit::Plan Shared(const tarpit::Plan& p);

 private:
  struct Entry {
    tarpit::Plan plan;
    uint32_t refs = 0;
  };
  static size_t Hash(const tarpit::Plan& p);
  // By hash of the plan's bits; a plan is found by ==, released by address
  // (so that a plan not equal to itself, NaN, is still freed).
  std::unordered_multimap<size_t, std::unique_ptr<Entry>> index_;
};

}  // namespace conn
