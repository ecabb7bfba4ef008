// net/http/body_step.h — what one step of decoding a message body yields.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "net/http/parse_error.h"

namespace mnv::http {

// One call of a parser's parse_body(): the caller uses `data` (a view into the input) and then
// consumes `consumed` bytes, so the next call's input starts right after them. `data` is always
// the last data.size() bytes of the consumed ones (framing, such as a chunk-size line, comes
// before it). A step with no data and not done needs more input.
struct BodyStep {
  std::size_t consumed = 0;
  std::string_view data;
  bool done = false;  // the body (with any chunked trailer) is complete
  Error error = Error::kNone;
};

// One step of a body framed by length: up to `*remaining` bytes of the contiguous run `run` (the
// input's first), which it counts off.
inline BodyStep length_step(std::string_view run, std::uint64_t* remaining) {
  BodyStep s;
  std::size_t k = *remaining < run.size() ? static_cast<std::size_t>(*remaining) : run.size();
  *remaining -= k;
  s.consumed = k;
  s.data = run.substr(0, k);
  s.done = *remaining == 0;
  return s;
}

}  // namespace mnv::http
