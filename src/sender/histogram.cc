#include "sender/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace sender {

namespace {
constexpr int64_t kExact = 1 << Histogram::kSubBits;
constexpr int64_t kHalf = kExact / 2;
}  // namespace

int Histogram::BucketOf(int64_t value) {
  if (value < kExact) return value < 0 ? 0 : int(value);
  int msb = 63 - std::countl_zero(uint64_t(value));
  if (msb >= kMaxBits) return kBuckets - 1;
  int shift = msb - (kSubBits - 1);       // >= 1
  int sub = int(value >> shift) - kHalf;  // 0..63
  return int(kExact + (shift - 1) * kHalf + sub);
}

int64_t Histogram::BucketLow(int bucket) {
  if (bucket < kExact) return bucket;
  int shift = (bucket - int(kExact)) / int(kHalf) + 1;
  int64_t sub = (bucket - kExact) % kHalf + kHalf;
  return sub << shift;
}

int64_t Histogram::BucketHigh(int bucket) {
  if (bucket < kExact) return bucket;
  int shift = (bucket - int(kExact)) / int(kHalf) + 1;
  int64_t sub = (bucket - kExact) % kHalf + kHalf;
  return ((sub + 1) << shift) - 1;
}

void Histogram::Record(int64_t value) {
  if (value < 0) value = 0;
  counts_[BucketOf(value)]++;
  if (count_ == 0 || value < min_) min_ = value;
  if (count_ == 0 || value > max_) max_ = value;
  count_++;
  sum_ += value;
}

void Histogram::Merge(const Histogram& other) {
  if (other.count_ == 0) return;
  for (int i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  if (count_ == 0 || other.min_ < min_) min_ = other.min_;
  if (count_ == 0 || other.max_ > max_) max_ = other.max_;
  count_ += other.count_;
  sum_ += other.sum_;
}

int64_t Histogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  uint64_t rank = uint64_t(std::ceil(p / 100.0 * double(count_)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      int64_t mid = BucketLow(i) + (BucketHigh(i) - BucketLow(i)) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

}  // namespace sender
