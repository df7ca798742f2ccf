// A log-linear latency histogram in the spirit of HdrHistogram: values below
// 128 are exact, larger values land in one of 64 sub-buckets per power of
// two (relative error under 1/64). Fixed size, no allocation after
// construction, so recording is a few instructions on the hot path.
//
// Threading: not thread-safe; each thread records into its own and the
// reporter merges them.
#pragma once

#include <array>
#include <cstdint>

namespace sender {

class Histogram {
 public:
  // Values at or above 2^kMaxBits are clamped into the last bucket (but min,
  // max and sum keep the true value).
  static constexpr int kMaxBits = 45;  // 2^45 ns is about 9.8 hours
  static constexpr int kSubBits = 7;   // 128 exact values, then 64 per octave
  static constexpr int kBuckets =
      (1 << kSubBits) + (kMaxBits - kSubBits) * (1 << (kSubBits - 1));

  void Record(int64_t value);  // negative values record as 0
  void Merge(const Histogram& other);

  uint64_t count() const { return count_; }
  int64_t min() const { return count_ ? min_ : 0; }
  int64_t max() const { return count_ ? max_ : 0; }
  double mean() const { return count_ ? double(sum_) / double(count_) : 0; }
  // The smallest recorded value v such that at least p percent of the values
  // are <= v, up to the bucket's resolution (the bucket's midpoint, clamped
  // to [min, max]). p in [0, 100]; 0 when empty.
  int64_t Percentile(double p) const;

  static int BucketOf(int64_t value);
  static int64_t BucketLow(int bucket);
  static int64_t BucketHigh(int bucket);

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
  int64_t sum_ = 0;
};

}  // namespace sender
