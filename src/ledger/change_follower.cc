#include "ledger/change_follower.h"

#include <algorithm>
#include <chrono>

#include "base/log.h"

namespace ledger {

ChangeFollower::ChangeFollower(PostgresStore* store, double refresh_seconds,
                               Seed seed, Wait wait)
    : store_(store),
      refresh_(refresh_seconds),
      seed_(std::move(seed)),
      wait_(std::move(wait)) {
  if (!wait_) {
    wait_ = [this](double seconds) {
      std::unique_lock lk(mu_);
      return !cv_.wait_for(lk, std::chrono::duration<double>(seconds),
                           [&] { return stop_; });
    };
  }
}

base::Status ChangeFollower::Begin() {
  auto next =
      store_->Changes("", [](const SourceRecord&) { return base::Status(); });
  if (!next.ok()) return next.status();
  cursor_ = *next;
  return {};
}

void ChangeFollower::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void ChangeFollower::Stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t ChangeFollower::seeded() const {
  std::lock_guard lk(mu_);
  return seeded_;
}

void ChangeFollower::Loop() {
  bool failing = false;
  while (wait_(refresh_)) {
    auto s = Tick();
    if (!s.ok() && !failing) {
      base::LogLine(base::LogLevel::kWarning, "reputation_pull_failed")
          .Kv("error", s.message());
    }
    failing = !s.ok();
  }
}

base::Status ChangeFollower::Tick() {
  uint64_t n = 0;
  double newest = 0;
  bool first = cursor_.empty();
  auto next = store_->Changes(cursor_, [&](const SourceRecord& r) {
    seed_(r);
    ++n;
    newest = std::max(newest, r.last_seen);
    return base::Status();
  });
  if (!next.ok()) return next.status();
  cursor_ = *next;
  {
    std::lock_guard lk(mu_);
    seeded_ += n;
  }
  if (n != 0 || first) {
    base::LogLine(base::LogLevel::kDebug, "reputation_pulled")
        .Kv("sources", n)
        .Kv("newest_last_seen", newest);
  }
  return {};
}

}  // namespace ledger
