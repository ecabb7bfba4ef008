// metrics/registry.cc — registration (names checked, families grouped), the cell layout, and the
// relaxed reads.
#include "metrics/registry.h"

#include <algorithm>
#include <new>

namespace mnv::metrics {
namespace {

constexpr std::size_t kCellsPerLine = Registry::kAlign / sizeof(std::uint64_t);

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kCounter: return "counter";
    case Kind::kGauge: return "gauge";
    case Kind::kHistogram: return "histogram";
  }
  return "?";
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Prometheus: metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*.
// Returns the offending position, or -1.
int bad_char(std::string_view s, bool colon_ok) {
  if (s.empty()) return 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':') ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return static_cast<int>(i);
  }
  return -1;
}

void check_name(Kind kind, std::string_view name) {
  std::string n(name);
  if (int at = bad_char(name, true); at >= 0) {
    panic("metrics: %s name \"%s\" is not a Prometheus metric name (bad character at %d): use [a-zA-Z_:][a-zA-Z0-9_:]*",
          kind_name(kind), n.c_str(), at);
  }
  for (std::string_view reserved : {"_bucket", "_sum", "_count"}) {
    if (ends_with(name, reserved)) {
      panic("metrics: %s name \"%s\" ends in %.*s, which Prometheus reserves for histogram series: rename it",
            kind_name(kind), n.c_str(), static_cast<int>(reserved.size()), reserved.data());
    }
  }
  if (ends_with(name, "_total")) {
    panic("metrics: %s name \"%s\" ends in _total: %s", kind_name(kind), n.c_str(),
          kind == Kind::kCounter ? "register a counter without it (the exposition adds _total)"
                                 : "only counters end in _total");
  }
  if (kind == Kind::kHistogram && !ends_with(name, "_seconds")) {
    panic("metrics: histogram name \"%s\" does not end in _seconds: latency histograms are exported in seconds, name "
          "them so (e.g. \"%s_seconds\")",
          n.c_str(), n.c_str());
  }
}

void check_labels(Kind kind, std::string_view name, const std::vector<Label>& labels) {
  std::string n(name);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const std::string& l = labels[i].name;
    if (int at = bad_char(l, false); at >= 0) {
      panic("metrics: label \"%s\" of %s is not a Prometheus label name (bad character at %d): use [a-zA-Z_][a-zA-Z0-9_]*",
            l.c_str(), n.c_str(), at);
    }
    if (l.rfind("__", 0) == 0) panic("metrics: label \"%s\" of %s starts with __, which Prometheus reserves", l.c_str(), n.c_str());
    if (l == "shard") panic("metrics: label \"shard\" of %s is added by the exposition itself: drop it", n.c_str());
    if (kind == Kind::kHistogram && l == "le") panic("metrics: label \"le\" of histogram %s is Prometheus' bucket bound: rename it", n.c_str());
    for (std::size_t j = 0; j < i; ++j) {
      if (labels[j].name == l) panic("metrics: label \"%s\" given twice for %s", l.c_str(), n.c_str());
    }
  }
}

}  // namespace

Registry::Registry(int shards) : shards_(shards) {
  if (shards < 1) panic("metrics: a registry needs at least one shard (got %d)", shards);
}

std::uint32_t Registry::add_series(Kind kind, std::string_view name, std::string_view help, std::vector<Label> labels,
                                   std::size_t cells) {
  std::string n(name);
  if (placed()) panic("metrics: %s \"%s\" registered after place(): register every metric at start", kind_name(kind), n.c_str());
  check_name(kind, name);
  check_labels(kind, name, labels);
  std::string exported = kind == Kind::kCounter ? n + "_total" : n;

  Family* family = nullptr;
  for (Family& f : families_) {
    if (f.name == exported) family = &f;
  }
  std::vector<std::string> label_names;
  std::vector<std::string> label_values;
  for (Label& l : labels) {
    label_names.push_back(std::move(l.name));
    label_values.push_back(std::move(l.value));
  }
  if (family == nullptr) {
    families_.push_back(Family{exported, std::string(help), kind, std::move(label_names), {}});
    family = &families_.back();
  } else {
    if (family->kind != kind) {
      panic("metrics: \"%s\" registered as a %s and as a %s: one name, one kind", n.c_str(), kind_name(family->kind),
            kind_name(kind));
    }
    if (family->help != help) panic("metrics: \"%s\" registered again with other help text: give every series the same", n.c_str());
    if (family->label_names != label_names) {
      panic("metrics: \"%s\" registered again with other label names: every series of a metric has the same labels, in "
            "the same order",
            n.c_str());
    }
    for (const Series& s : family->series) {
      if (s.label_values == label_values) panic("metrics: \"%s\" registered twice with the same label values", n.c_str());
    }
  }
  if (cells_per_shard_ + cells >= UINT32_MAX) panic("metrics: too many cells for one registry");
  auto cell = static_cast<std::uint32_t>(cells_per_shard_);
  family->series.push_back(Series{std::move(label_values), cell});
  cells_per_shard_ += cells;
  stride_ = (cells_per_shard_ + kCellsPerLine - 1) / kCellsPerLine * kCellsPerLine;
  return cell;
}

Counter Registry::counter(std::string_view name, std::string_view help, std::vector<Label> labels) {
  return Counter(add_series(Kind::kCounter, name, help, std::move(labels), 1));
}

Gauge Registry::gauge(std::string_view name, std::string_view help, std::vector<Label> labels) {
  return Gauge(add_series(Kind::kGauge, name, help, std::move(labels), 1));
}

Histogram Registry::histogram(std::string_view name, std::string_view help, std::vector<Label> labels) {
  return Histogram(add_series(Kind::kHistogram, name, help, std::move(labels),
                              ShardCells::kFirstSlotCell + HistogramRange::kSlots));
}

std::size_t Registry::bytes_needed() const {
  return static_cast<std::size_t>(shards_) * stride_ * sizeof(std::uint64_t);
}

void Registry::place(void* memory, std::size_t bytes) {
  if (placed()) panic("metrics: place() called twice");
  if (memory == nullptr || reinterpret_cast<std::uintptr_t>(memory) % kAlign != 0) {
    panic("metrics: place() wants memory aligned to %zu bytes (got %p)", kAlign, memory);
  }
  if (bytes < bytes_needed()) panic("metrics: place() got %zu bytes, the registry needs %zu (bytes_needed())", bytes, bytes_needed());
  std::size_t n = static_cast<std::size_t>(shards_) * stride_;
  auto* cells = static_cast<std::atomic<std::uint64_t>*>(memory);
  for (std::size_t i = 0; i < n; ++i) new (cells + i) std::atomic<std::uint64_t>(0);
  cells_ = cells;
}

ShardCells Registry::shard(int i) const {
  MNV_ASSERT(placed());
  MNV_ASSERT(i >= 0 && i < shards_);
  return ShardCells(cells_ + static_cast<std::size_t>(i) * stride_);
}

void Registry::reset_gauges(int i) const {
  MNV_ASSERT(placed());
  MNV_ASSERT(i >= 0 && i < shards_);
  for (const Family& f : families_) {
    if (f.kind != Kind::kGauge) continue;
    for (const Series& s : f.series) cells_[static_cast<std::size_t>(i) * stride_ + s.cell].store(0, std::memory_order_relaxed);
  }
}

const std::atomic<std::uint64_t>& Registry::read_cell(std::uint32_t cell, int shard) const {
  MNV_ASSERT(placed());
  MNV_ASSERT(shard >= 0 && shard < shards_);
  MNV_ASSERT(cell < cells_per_shard_);
  return cells_[static_cast<std::size_t>(shard) * stride_ + cell];
}

std::uint64_t Registry::cell_value(std::uint32_t cell, int shard) const {
  return read_cell(cell, shard).load(std::memory_order_relaxed);
}

HistogramSnapshot Registry::histogram_at(std::uint32_t cell, int shard) const {
  const std::atomic<std::uint64_t>* c = &read_cell(cell, shard);
  HistogramSnapshot s;
  s.sum_ns_ = c[ShardCells::kSumCell].load(std::memory_order_relaxed);
  s.max_ns_ = c[ShardCells::kMaxCell].load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < HistogramRange::kSlots; ++i) {
    s.slots_[i] = c[ShardCells::kFirstSlotCell + i].load(std::memory_order_relaxed);
    s.count_ += s.slots_[i];
  }
  return s;
}

std::uint64_t Registry::value(Counter c, int shard) const { return cell_value(c.cell_, shard); }

std::uint64_t Registry::total(Counter c) const {
  std::uint64_t t = 0;
  for (int i = 0; i < shards_; ++i) t += value(c, i);
  return t;
}

std::int64_t Registry::value(Gauge g, int shard) const { return static_cast<std::int64_t>(cell_value(g.cell_, shard)); }

std::int64_t Registry::total(Gauge g) const {
  std::int64_t t = 0;
  for (int i = 0; i < shards_; ++i) t += value(g, i);
  return t;
}

HistogramSnapshot Registry::snapshot(Histogram h, int shard) const { return histogram_at(h.cell_, shard); }

HistogramSnapshot Registry::merged(Histogram h) const {
  HistogramSnapshot s = snapshot(h, 0);
  for (int i = 1; i < shards_; ++i) s.merge(snapshot(h, i));
  return s;
}

}  // namespace mnv::metrics
