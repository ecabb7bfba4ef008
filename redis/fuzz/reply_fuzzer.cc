// redis/fuzz/reply_fuzzer.cc — libFuzzer target for the RESP reply parser (tools/fuzz_resp.sh).
//
// The first input byte picks where a ring wraps and how big the pieces arriving are; the rest is
// the bytes from the server. They are parsed as a run of pipelined replies three ways — whole, a
// piece at a time, and placed across a ring's wrap a piece at a time — which must agree reply
// by reply (rendering every node, so a view outside the input is found by ASan), and each
// complete reply is checked against its own invariants (sizes, spans, node counts, limits).
// Any disagreement aborts with both results on stderr.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "redis/reply_parser.h"

namespace mnv::redis {
namespace {

// Renders r and checks its invariants; `depth`: r's nesting (1 at the top) for the limit check.
void render(const Reply& r, const Limits& l, std::uint32_t depth, std::string* out) {
  if (is_aggregate(r.type()) && depth > l.max_depth) {
    std::fprintf(stderr, "MISMATCH: an aggregate at depth %u, over the limit %u\n", depth, l.max_depth);
    std::abort();
  }
  out->push_back(static_cast<char>('A' + static_cast<int>(r.type())));
  switch (r.type()) {
    case Type::kInteger:
    case Type::kBoolean: *out += std::to_string(r.integer()); break;
    case Type::kNull: break;
    case Type::kArray:
    case Type::kMap:
    case Type::kSet:
    case Type::kPush: {
      *out += "[";
      std::size_t nodes = 1;
      for (std::size_t i = 0; i < r.size(); ++i) {
        render(r[i], l, depth + 1, out);
        nodes += r[i].nodes();
      }
      if (nodes != r.nodes()) {
        std::fprintf(stderr, "MISMATCH: span %zu but the elements hold %zu nodes\n", r.nodes(), nodes);
        std::abort();
      }
      *out += "]";
      break;
    }
    default: {
      ByteSpans s = r.str();
      for (std::size_t i = 0; i < s.size(); ++i) out->push_back(s[i]);
      (void)r.to_double();
      break;
    }
  }
}

// The replies in `wire` (a vector of renderings, then "E<error>@<offset>" or "M" for more).
std::vector<std::string> whole(std::string_view wire, const Limits& l) {
  std::vector<std::string> got;
  ReplyParser p(l);
  std::size_t at = 0;
  for (;;) {
    ByteSpans in(wire.substr(at));
    ReplyParser::Status st = p.parse(in);
    if (st == ReplyParser::Status::kNeedMore) {
      got.push_back("M");
      return got;
    }
    if (st == ReplyParser::Status::kError) {
      got.push_back("E" + std::to_string(static_cast<int>(p.error())) + "@" + std::to_string(at + p.error_offset()));
      return got;
    }
    Reply r = p.reply(in);
    if (p.size() == 0 || p.size() > in.size() || r.nodes() > l.max_nodes) {
      std::fprintf(stderr, "MISMATCH: reply size %zu of %zu bytes, %zu nodes\n", p.size(), in.size(), r.nodes());
      std::abort();
    }
    std::string s;
    render(r, l, 1, &s);
    got.push_back(s);
    at += p.size();
    p.reset();
    if (at == wire.size()) {
      got.push_back("M");
      return got;
    }
  }
}

// The same bytes arriving `step` at a time into a ring of `cap` bytes whose data starts at
// `start`; replies are consumed from it as they complete.
std::vector<std::string> ringed(std::string_view wire, const Limits& l, std::size_t cap, std::size_t start,
                                std::size_t step) {
  std::vector<std::string> got;
  std::vector<char> ring(cap);
  std::size_t head = start % cap, len = 0, fed = 0, consumed = 0;
  ReplyParser p(l);
  for (;;) {
    // Feed up to `step` more bytes (as many as fit).
    std::size_t n = wire.size() - fed < step ? wire.size() - fed : step;
    if (n > cap - len) n = cap - len;
    for (std::size_t i = 0; i < n; ++i) ring[(head + len + i) % cap] = wire[fed + i];
    len += n;
    fed += n;
    for (;;) {
      std::size_t first = cap - head < len ? cap - head : len;
      ByteSpans in(std::string_view(ring.data() + head, first), std::string_view(ring.data(), len - first));
      ReplyParser::Status st = p.parse(in);
      if (st == ReplyParser::Status::kError) {
        got.push_back("E" + std::to_string(static_cast<int>(p.error())) + "@" +
                      std::to_string(consumed + p.error_offset()));
        return got;
      }
      if (st == ReplyParser::Status::kNeedMore) {
        if (fed == wire.size() || len == cap) {  // (a reply larger than the ring: stop)
          got.push_back(len == cap && fed < wire.size() ? "F" : "M");
          return got;
        }
        break;
      }
      std::string s;
      render(p.reply(in), l, 1, &s);
      got.push_back(s);
      head = (head + p.size()) % cap;
      len -= p.size();
      consumed += p.size();
      p.reset();
      if (len == 0 && fed == wire.size()) {
        got.push_back("M");
        return got;
      }
    }
  }
}

void compare(const std::vector<std::string>& a, const std::vector<std::string>& b, const char* how) {
  // A ring run that stopped on a reply larger than the ring ("F") agrees on what came before.
  std::size_t n = b.size();
  if (!b.empty() && b.back() == "F") --n;
  else if (a.size() != b.size()) n = a.size() + 1;
  for (std::size_t i = 0; i < n; ++i) {
    if (i >= a.size() || a[i] != b[i]) {
      std::fprintf(stderr, "MISMATCH (%s) at reply %zu: whole '%s', pieces '%s'\n", how, i,
                   i < a.size() ? a[i].c_str() : "-", i < b.size() ? b[i].c_str() : "-");
      std::abort();
    }
  }
}

}  // namespace
}  // namespace mnv::redis

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mnv::redis;
  if (size < 1) return 0;
  const std::uint8_t knob = data[0];
  std::string_view wire(reinterpret_cast<const char*>(data + 1), size - 1);
  Limits l;
  if (knob & 0x80) {  // small limits now and then, so they are reached
    l.max_depth = 3;
    l.max_nodes = 16;
    l.max_line = 16;
    l.max_bulk = 32;
  }
  std::vector<std::string> a = whole(wire, l);
  std::size_t step = 1 + (knob & 7);
  // A ring larger than the input (never full) must agree exactly; a small one up to a reply
  // that does not fit.
  compare(a, ringed(wire, l, wire.size() + 1 + (knob >> 3 & 15), (knob >> 3 & 15), step), "large ring");
  compare(a, ringed(wire, l, 64, knob % 64, step), "64-byte ring");
  return 0;
}
