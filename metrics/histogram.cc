// metrics/histogram.cc — reading a histogram snapshot: merge, percentiles, cumulative counts.
#include "metrics/histogram.h"

#include "mem/log.h"

namespace mnv::metrics {

void HistogramSnapshot::merge(const HistogramSnapshot& other) {
  for (std::size_t i = 0; i < slots_.size(); ++i) slots_[i] += other.slots_[i];
  count_ += other.count_;
  sum_ns_ += other.sum_ns_;
  if (other.max_ns_ > max_ns_) max_ns_ = other.max_ns_;
}

std::uint64_t HistogramSnapshot::percentile(double percentile) const {
  if (count_ == 0) return 0;
  std::size_t slot = bucket_at_rank(slots_.data(), slots_.size(), rank_at(percentile, count_));
  std::uint64_t hi = HistogramRange::highest_in_slot(slot);
  return hi < max_ns_ ? hi : max_ns_;
}

std::uint64_t HistogramSnapshot::count_at_most(std::uint64_t ns) const {
  std::uint64_t n = 0;
  counts_at_most(&ns, 1, &n);
  return n;
}

void HistogramSnapshot::counts_at_most(const std::uint64_t* bounds, std::size_t n, std::uint64_t* counts) const {
  std::size_t slot = 0;
  std::uint64_t seen = 0;
  for (std::size_t b = 0; b < n; ++b) {
    MNV_ASSERT(b == 0 || bounds[b] >= bounds[b - 1]);
    while (slot < slots_.size() && HistogramRange::highest_in_slot(slot) <= bounds[b]) seen += slots_[slot++];
    counts[b] = seen;
  }
}

}  // namespace mnv::metrics
