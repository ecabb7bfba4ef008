// metrics/registry.h — counters, gauges and latency histograms, registered by name at start and
// written per shard on the hot path without locks or allocation.
//
// At start (one thread, before any shard runs): register every metric by name, help text and
// labels; ask bytes_needed(); place() the cells in memory the caller provides — for shards as
// processes, a MAP_SHARED mapping made before the fork (shard/shared_memory.h), so one reader
// sees every shard. Then each shard writes only its own cells through shard(i): one relaxed
// load and store per counter add (a single writer needs no atomic read-modify-write), no locks,
// no allocation; each shard's cells start on their own cache line. Any thread (or process) reads
// at any time with relaxed loads, summing over shards or per shard; a reader never blocks a
// writer. Registration after place() is an error: memory is fixed once shards run.
//
//   metrics::Registry reg(shards);
//   auto accepted = reg.counter("mnv_connections_accepted", "Connections accepted.");
//   auto closed_peer = reg.counter("mnv_connections_closed", "Connections closed.", {{"reason", "peer"}});
//   auto latency = reg.histogram("mnv_request_latency_seconds", "Request latency.");
//   reg.place(region.take(reg.bytes_needed(), metrics::Registry::kAlign), reg.bytes_needed());
//   ... on shard i:  auto cells = reg.shard(i); cells.add(accepted); cells.record(latency, ns);
//   ... anywhere:    reg.total(accepted); reg.merged(latency).percentile(99);
//
// Names follow Prometheus: a counter is registered without `_total` (the exposition adds it), a
// latency histogram's name ends in `_seconds` (it is recorded in ns, exported in seconds). Bad
// names and labels die at registration with a message naming the metric and the rule.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mem/log.h"
#include "metrics/histogram.h"

namespace mnv::metrics {

struct Label {
  std::string name;
  std::string value;
};

enum class Kind { kCounter, kGauge, kHistogram };

// A handle to a registered series; copy it freely. A default-constructed handle names no series
// and must not be written (checked).
template <Kind K>
class Handle {
 public:
  Handle() = default;

 private:
  friend class Registry;
  friend class ShardCells;
  explicit Handle(std::uint32_t cell) : cell_(cell) {}
  std::uint32_t cell_ = UINT32_MAX;
};
using Counter = Handle<Kind::kCounter>;
using Gauge = Handle<Kind::kGauge>;
using Histogram = Handle<Kind::kHistogram>;

// One shard's cells: the writer side. Only that shard's thread may write through it.
class ShardCells {
 public:
  ShardCells() = default;
  // Whether these are a placed registry's cells (a default ShardCells is not: writing dies).
  bool placed() const { return cells_ != nullptr; }

  void add(Counter c, std::uint64_t n = 1) const { bump(cell(c.cell_), n); }
  void set(Gauge g, std::int64_t v) const { cell(g.cell_).store(static_cast<std::uint64_t>(v), std::memory_order_relaxed); }
  void add(Gauge g, std::int64_t d) const { bump(cell(g.cell_), static_cast<std::uint64_t>(d)); }
  // Records a latency in nanoseconds.
  void record(Histogram h, std::uint64_t ns) const {
    std::atomic<std::uint64_t>* c = &cell(h.cell_);
    bump(c[kSumCell], ns);
    if (ns > c[kMaxCell].load(std::memory_order_relaxed)) c[kMaxCell].store(ns, std::memory_order_relaxed);
    bump(c[kFirstSlotCell + HistogramRange::slot_of(ns)], 1);
  }

 private:
  friend class Registry;
  static constexpr std::size_t kSumCell = 0, kMaxCell = 1, kFirstSlotCell = 2;

  explicit ShardCells(std::atomic<std::uint64_t>* cells) : cells_(cells) {}
  std::atomic<std::uint64_t>& cell(std::uint32_t i) const {
    if (__builtin_expect(i == UINT32_MAX || cells_ == nullptr, 0)) {
      panic("%s", i == UINT32_MAX ? "metrics: a default-constructed handle was written: register the metric first"
                            : "metrics: written through cells of no registry: this kernel or shard was given none");
    }
    return cells_[i];
  }
  // The single writer's add: no locked instruction, and a reader never sees a torn value.
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  std::atomic<std::uint64_t>* cells_ = nullptr;
};

class Registry {
 public:
  // Cells are 64-bit atomics; shared between processes, they must be lock-free (address-free).
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
  // place() wants memory aligned to a cache line.
  static constexpr std::size_t kAlign = 64;

  explicit Registry(int shards);
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Registers one series of a metric family (same name: same kind, help and label names, other
  // label values). Before place() only.
  Counter counter(std::string_view name, std::string_view help, std::vector<Label> labels = {});
  Gauge gauge(std::string_view name, std::string_view help, std::vector<Label> labels = {});
  Histogram histogram(std::string_view name, std::string_view help, std::vector<Label> labels = {});

  // Bytes of cells every registered series needs on every shard.
  std::size_t bytes_needed() const;
  // Zeroes the cells in `memory` (aligned to kAlign, at least bytes_needed() bytes) and uses it
  // from now on; it must outlive the registry's use. Once, after every registration.
  void place(void* memory, std::size_t bytes);
  bool placed() const { return cells_ != nullptr; }

  int shards() const { return shards_; }
  // Shard i's writer side (placed registries only).
  ShardCells shard(int i) const;
  // Sets every gauge of shard i to 0: for a shard that starts again (a restarted shard process),
  // whose gauges described what died with its predecessor. Counters and histograms go on.
  void reset_gauges(int i) const;

  // Reads, from any thread: one shard's value or the sum over shards.
  std::uint64_t value(Counter c, int shard) const;
  std::uint64_t total(Counter c) const;
  std::int64_t value(Gauge g, int shard) const;
  std::int64_t total(Gauge g) const;
  HistogramSnapshot snapshot(Histogram h, int shard) const;
  HistogramSnapshot merged(Histogram h) const;

  // What was registered, in registration order (for exporters: prometheus.h).
  struct Series {
    std::vector<std::string> label_values;  // in the family's label_names order
    std::uint32_t cell;
  };
  struct Family {
    std::string name;  // as exported: a counter's with `_total`
    std::string help;
    Kind kind;
    std::vector<std::string> label_names;
    std::vector<Series> series;
  };
  const std::vector<Family>& families() const { return families_; }
  // Readers for exporters, by a Series' cell.
  std::uint64_t cell_value(std::uint32_t cell, int shard) const;
  HistogramSnapshot histogram_at(std::uint32_t cell, int shard) const;

 private:
  std::uint32_t add_series(Kind kind, std::string_view name, std::string_view help, std::vector<Label> labels,
                           std::size_t cells);
  const std::atomic<std::uint64_t>& read_cell(std::uint32_t cell, int shard) const;

  int shards_;
  std::vector<Family> families_;
  std::size_t cells_per_shard_ = 0;  // registered cells
  std::size_t stride_ = 0;           // cells between shards: a whole number of cache lines
  std::atomic<std::uint64_t>* cells_ = nullptr;
};

}  // namespace mnv::metrics
