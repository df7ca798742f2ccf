// Time behind an interface so that tests never sleep (LevelDB's Env idea).
#pragma once

#include <chrono>

namespace base {

using SteadyTime = std::chrono::steady_clock::time_point;
using Duration = std::chrono::steady_clock::duration;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime Now() const = 0;
  // Seconds since the Unix epoch, for records that outlive the process.
  virtual double WallSeconds() const = 0;
};

class SystemClock final : public Clock {
 public:
  SteadyTime Now() const override { return std::chrono::steady_clock::now(); }
  double WallSeconds() const override {
    return std::chrono::duration<double>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  static const SystemClock& Get() {
    static const SystemClock clock;
    return clock;
  }
};

// A clock that moves only when told to. For tests.
class FakeClock final : public Clock {
 public:
  SteadyTime Now() const override { return now_; }
  double WallSeconds() const override {
    return 1.7e9 +
           std::chrono::duration<double>(now_.time_since_epoch()).count();
  }
  void Advance(Duration d) { now_ += d; }

 private:
  SteadyTime now_{};
};

}  // namespace base
