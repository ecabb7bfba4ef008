// shard/cpuset.h — a set of logical CPU ids and its cpuset(7) "list" text form.
//
// Shard placement speaks in CPU sets: the CPUs this process may use (sched_getaffinity), the
// `cpuset = "0-3,8"` line of the affinity config, the CPUs chosen for the shards. CpuSet is a
// small fixed-size value (a bitmap of kMaxCpus bits, no allocation) so it can be copied, compared
// and intersected freely. The text form is the one Linux prints in /sys and /proc and that
// taskset -c accepts: comma-separated items, each "N", "N-M" or "N-M:S" (every S-th CPU from N
// to M). Parse errors say at which character and why.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mnv {

class CpuSet {
 public:
  static constexpr int kMaxCpus = 1024;  // same as glibc's cpu_set_t

  CpuSet() = default;

  // False (and no change) when cpu is outside [0, kMaxCpus).
  bool add(int cpu);
  void remove(int cpu);
  bool contains(int cpu) const;
  int count() const;
  bool empty() const;
  // The smallest member, or -1 when empty.
  int first() const;
  // The smallest member greater than `cpu`, or -1.
  int next(int cpu) const;
  std::vector<int> to_vector() const;

  CpuSet operator&(const CpuSet& other) const;  // intersection
  CpuSet operator|(const CpuSet& other) const;  // union
  CpuSet operator-(const CpuSet& other) const;  // members of this not in other
  bool subset_of(const CpuSet& other) const;
  bool operator==(const CpuSet& other) const = default;

  // Iteration in increasing order: for (int cpu : set).
  class Iterator {
   public:
    Iterator(const CpuSet* set, int cpu) : set_(set), cpu_(cpu) {}
    int operator*() const { return cpu_; }
    Iterator& operator++() {
      cpu_ = set_->next(cpu_);
      return *this;
    }
    bool operator==(const Iterator& other) const { return cpu_ == other.cpu_; }
    bool operator!=(const Iterator& other) const { return cpu_ != other.cpu_; }

   private:
    const CpuSet* set_;
    int cpu_;
  };
  Iterator begin() const { return Iterator(this, first()); }
  Iterator end() const { return Iterator(this, -1); }

 private:
  static constexpr int kWords = kMaxCpus / 64;
  std::array<std::uint64_t, kWords> words_{};
};

// Parses the cpuset(7) list form ("0-3,8,10-11", "0-7:2"). Whitespace around the whole text is
// ignored (sysfs files end in a newline); an empty list is an error, as is any CPU >= kMaxCpus.
// On error returns false, leaves *out alone and sets *error to e.g.
// `at character 5: expected a CPU number, found 'x'`.
bool parse_cpuset(std::string_view text, CpuSet* out, std::string* error);

// The canonical list form, as Linux prints it: increasing, every run of consecutive CPUs as one
// range ("0-3,8,10-11"; two neighbours are "0-1"). The empty set is "".
std::string format_cpuset(const CpuSet& set);

}  // namespace mnv
