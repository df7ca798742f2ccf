#include "sender/histogram.h"

#include <gtest/gtest.h>

#include <cmath>

namespace sender {
namespace {

TEST(HistogramTest, EmptyIsZero) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(50), 0);
  EXPECT_EQ(h.max(), 0);
}

TEST(HistogramTest, SmallValuesAreExact) {
  Histogram h;
  for (int v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.Percentile(50), 50);
  EXPECT_EQ(h.Percentile(90), 90);
  EXPECT_EQ(h.Percentile(99), 99);
  EXPECT_EQ(h.Percentile(100), 100);
  EXPECT_EQ(h.Percentile(0), 1);
  EXPECT_EQ(h.min(), 1);
  EXPECT_EQ(h.max(), 100);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(HistogramTest, LargeValuesWithinResolution) {
  Histogram h;
  // 1..10000 microseconds in nanoseconds.
  for (int v = 1; v <= 10000; ++v) h.Record(int64_t(v) * 1000);
  auto near = [](int64_t got, double want) {
    return std::abs(double(got) - want) / want < 1.0 / 64;
  };
  EXPECT_TRUE(near(h.Percentile(50), 5000e3)) << h.Percentile(50);
  EXPECT_TRUE(near(h.Percentile(90), 9000e3)) << h.Percentile(90);
  EXPECT_TRUE(near(h.Percentile(99), 9900e3)) << h.Percentile(99);
  EXPECT_EQ(h.max(), 10000000);
}

TEST(HistogramTest, SkewedDistribution) {
  Histogram h;
  for (int i = 0; i < 990; ++i) h.Record(10);
  for (int i = 0; i < 10; ++i) h.Record(1000000);
  EXPECT_EQ(h.Percentile(50), 10);
  EXPECT_EQ(h.Percentile(99), 10);
  EXPECT_NEAR(double(h.Percentile(99.5)), 1e6, 1e6 / 64);
  EXPECT_EQ(h.Percentile(100), 1000000);
}

TEST(HistogramTest, BucketsAreContiguousAndMonotone) {
  for (int b = 1; b < Histogram::kBuckets; ++b) {
    ASSERT_EQ(Histogram::BucketLow(b), Histogram::BucketHigh(b - 1) + 1) << b;
  }
  for (int64_t v :
       {0LL, 127LL, 128LL, 129LL, 1000LL, 123456789LL, (1LL << 44) + 5}) {
    int b = Histogram::BucketOf(v);
    EXPECT_LE(Histogram::BucketLow(b), v);
    EXPECT_GE(Histogram::BucketHigh(b), v);
  }
  EXPECT_EQ(Histogram::BucketOf(int64_t(1) << 62), Histogram::kBuckets - 1);
}

TEST(HistogramTest, MergeEqualsRecordingEverything) {
  Histogram a, b, all;
  for (int v = 0; v < 500; ++v) {
    (v % 2 ? a : b).Record(v * 37);
    all.Record(v * 37);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  for (double p : {10.0, 50.0, 90.0, 99.0})
    EXPECT_EQ(a.Percentile(p), all.Percentile(p));
}

TEST(HistogramTest, NegativeRecordsAsZero) {
  Histogram h;
  h.Record(-5);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.Percentile(50), 0);
}

}  // namespace
}  // namespace sender
