// net/http/header_list.h — a message's header fields as views into its head, in a fixed array.
//
// Entries are 16-bit offsets from the head's first byte (a head is at most 64 KiB), so the
// index of 64 fields costs 512 bytes inside the parser and nothing is allocated per message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "net/http/chars.h"
#include "net/http/limits.h"

namespace mnv::http {

struct Header {
  std::string_view name;   // as sent (case preserved)
  std::string_view value;  // leading and trailing whitespace removed
};

class HeaderList {
 public:
  static constexpr std::uint32_t kCapacity = Limits::kMaxHeaderCapacity;

  std::size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  Header operator[](std::size_t i) const {
    const Entry& e = e_[i];
    return Header{std::string_view(base_ + e.name, e.name_len),
                  std::string_view(base_ + e.value, e.value_len)};
  }
  // The value of the first field named `lower_name` (lower case; compared case-insensitively),
  // or an empty view with found = false.
  std::string_view find(std::string_view lower_name, bool* found = nullptr) const {
    for (std::size_t i = 0; i < n_; ++i) {
      const Entry& e = e_[i];
      if (chars::iequals(std::string_view(base_ + e.name, e.name_len), lower_name)) {
        if (found != nullptr) *found = true;
        return std::string_view(base_ + e.value, e.value_len);
      }
    }
    if (found != nullptr) *found = false;
    return {};
  }

  // For the parsers.
  void reset(const char* base) {
    base_ = base;
    n_ = 0;
  }
  bool full() const { return n_ == kCapacity; }
  void add(const char* name, std::size_t name_len, const char* value, std::size_t value_len) {
    e_[n_++] = Entry{static_cast<std::uint16_t>(name - base_), static_cast<std::uint16_t>(name_len),
                     static_cast<std::uint16_t>(value - base_), static_cast<std::uint16_t>(value_len)};
  }

 private:
  struct Entry {
    std::uint16_t name, name_len, value, value_len;
  };
  const char* base_ = nullptr;
  std::uint32_t n_ = 0;
  Entry e_[kCapacity];
};

}  // namespace mnv::http
