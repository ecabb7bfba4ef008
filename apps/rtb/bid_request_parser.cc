// apps/rtb/bid_request_parser.cc — the on-demand walk over a BidRequest (see bid_request_parser.h).
//
// Each parse_X() reads one JSON object into its struct, iterating its fields once; a field we do
// not read is skipped by simdjson when the next one is asked for. Every failure goes through
// fail(), which writes "PATH: WHAT" into the reason buffer; nothing here allocates after the
// constructor.
#include "apps/rtb/bid_request_parser.h"

#include <simdjson.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mnv::rtb {

namespace od = simdjson::ondemand;
using simdjson::error_code;

// The JSON path of the value being read ("imp[1].banner.format[0].w"), in a fixed buffer.
class JsonPath {
 public:
  // Appends ".key" (or "key" at the top) and returns the length to pop back to.
  int push(std::string_view key) {
    int old = len_;
    if (len_ > 0) put(".");
    put(key);
    return old;
  }
  int push_index(int i) {
    int old = len_;
    char tmp[16];
    int n = std::snprintf(tmp, sizeof tmp, "[%d]", i);
    put(std::string_view(tmp, static_cast<std::size_t>(n)));
    return old;
  }
  void pop(int old) {
    len_ = old;
    buf_[len_] = '\0';
  }
  const char* c_str() const { return len_ == 0 ? "body" : buf_; }
  void clear() { pop(0); }

 private:
  void put(std::string_view s) {
    for (char c : s) {
      if (len_ + 1 >= static_cast<int>(sizeof buf_)) break;  // a deep path is cut short
      buf_[len_++] = c;
    }
    buf_[len_] = '\0';
  }
  char buf_[128] = {};
  int len_ = 0;
};

struct BidRequestParser::Impl {
  od::parser parser;
  JsonPath path;
  char reason[320] = {};  // path (128) + ": " + what (160)
  ParseStatus status = ParseStatus::kOk;

  explicit Impl(std::size_t max) : parser(max) {}

  bool fail(ParseStatus s, const char* what) {
    status = s;
    std::snprintf(reason, sizeof reason, "%s: %s", path.c_str(), what);
    return false;
  }
  bool invalid(const char* what) { return fail(ParseStatus::kInvalid, what); }
  // A simdjson error while reading a value that should have been of type `expected`.
  bool json_error(error_code e, const char* expected) {
    if (e == simdjson::INCORRECT_TYPE || e == simdjson::NUMBER_ERROR || e == simdjson::NUMBER_OUT_OF_RANGE) {
      return invalid(expected);
    }
    if (e == simdjson::CAPACITY) return fail(ParseStatus::kTooLarge, "body larger than the parser's capacity");
    if (e == simdjson::DEPTH_ERROR) return fail(ParseStatus::kTooLarge, "JSON nested too deep");
    char what[160];
    std::snprintf(what, sizeof what, "malformed JSON (%s)", simdjson::error_message(e));
    return invalid(what);
  }
  bool too_many(int limit) {
    char what[96];
    std::snprintf(what, sizeof what, "more than %d entries (the bidder's limit)", limit);
    return fail(ParseStatus::kTooLarge, what);
  }

  // Scalars.
  bool read_string(od::value& v, std::string_view* out) {
    if (error_code e = v.get_string().get(*out)) return json_error(e, "expected a string");
    return true;
  }
  bool read_int(od::value& v, std::int64_t lo, std::int64_t hi, int* out) {
    std::int64_t x = 0;
    if (error_code e = v.get_int64().get(x); e || x < lo || x > hi) {
      char what[96];
      std::snprintf(what, sizeof what, "expected an integer from %lld to %lld", static_cast<long long>(lo),
                    static_cast<long long>(hi));
      return e ? json_error(e, what) : invalid(what);
    }
    *out = static_cast<int>(x);
    return true;
  }
  bool read_micros(od::value& v, Micros* out) {
    od::json_type t;
    if (error_code e = v.type().get(t)) return json_error(e, "expected a number");
    if (t != od::json_type::number) return invalid("expected a number");
    std::string_view raw = v.raw_json_token();  // the number's text, then any whitespace
    while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\t' || raw.back() == '\n' || raw.back() == '\r')) {
      raw.remove_suffix(1);
    }
    if (!parse_decimal_micros(raw, out)) return invalid("expected a number from 0 to 1000000");
    return true;
  }
  template <int N>
  bool read_strings(od::value& v, StringList<N>* out) {
    out->clear();
    od::array arr;
    if (error_code e = v.get_array().get(arr)) return json_error(e, "expected an array of strings");
    int i = 0;
    for (auto item_r : arr) {
      od::value item;
      int old = path.push_index(i++);
      if (error_code e = std::move(item_r).get(item)) return json_error(e, "expected a string");
      if (out->full()) return too_many(N);
      if (!read_string(item, &out->push())) return false;
      path.pop(old);
    }
    return true;
  }

  // A key as it stands in the input when it has no escape (stage 1 saw its closing quote, so the
  // scan ends inside the buffer): no copy. False for a key with an escape (unescaped_key() then).
  static bool raw_key(od::field& field, std::string_view* out) {
    const char* begin = field.key().raw();
    const char* p = begin;
    while (*p != '"' && *p != '\\') ++p;
    if (*p != '"') return false;
    *out = std::string_view(begin, static_cast<std::size_t>(p - begin));
    return true;
  }

  // Iterates the fields of object `v`, calling on_field(key, value) for each; false on the
  // first failure. The path has the key pushed while on_field runs.
  template <typename F>
  bool each_field(od::value& v, F&& on_field) {
    od::object obj;
    if (error_code e = v.get_object().get(obj)) return json_error(e, "expected an object");
    return each_field_of(obj, on_field);
  }
  template <typename F>
  bool each_field_of(od::object& obj, F& on_field) {
    for (auto field_r : obj) {
      od::field field;
      if (error_code e = std::move(field_r).get(field)) return json_error(e, "expected an object");
      std::string_view key;
      if (!raw_key(field, &key)) {
        if (error_code e = field.unescaped_key().get(key)) return json_error(e, "expected a key");
      }
      int old = path.push(key);
      if (!on_field(key, field.value())) return false;
      path.pop(old);
    }
    return true;
  }
  // Iterates the entries of array `v`, calling on_item(index, value).
  template <typename F>
  bool each_item(od::value& v, const char* expected, F&& on_item) {
    od::array arr;
    if (error_code e = v.get_array().get(arr)) return json_error(e, expected);
    int i = 0;
    for (auto item_r : arr) {
      od::value item;
      int old = path.push_index(i);
      if (error_code e = std::move(item_r).get(item)) return json_error(e, "expected a value");
      if (!on_item(i, item)) return false;
      path.pop(old);
      ++i;
    }
    return true;
  }

  bool parse_size(od::value& v, Size* out) {
    return each_field(v, [&](std::string_view k, od::value& f) {
      int x = 0;
      if (k == "w") {
        if (!read_int(f, 0, 65535, &x)) return false;
        out->w = static_cast<std::uint16_t>(x);
      } else if (k == "h") {
        if (!read_int(f, 0, 65535, &x)) return false;
        out->h = static_cast<std::uint16_t>(x);
      }
      return true;
    });
  }

  bool parse_banner(od::value& v, Banner* out) {
    out->present = true;
    out->formats.clear();
    Size one;
    bool ok = each_field(v, [&](std::string_view k, od::value& f) {
      int x = 0;
      if (k == "format") {
        out->formats.clear();
        return each_item(f, "expected an array of {w, h} objects", [&](int, od::value& item) {
          if (out->formats.full()) return too_many(kMaxFormats);
          return parse_size(item, &out->formats.push());
        });
      }
      if (k == "w") {
        if (!read_int(f, 0, 65535, &x)) return false;
        one.w = static_cast<std::uint16_t>(x);
      } else if (k == "h") {
        if (!read_int(f, 0, 65535, &x)) return false;
        one.h = static_cast<std::uint16_t>(x);
      }
      return true;
    });
    if (!ok) return false;
    // format[] is preferred; banner.w/h stand for a single format when it is absent.
    if (out->formats.empty() && one.w != 0 && one.h != 0) out->formats.push() = one;
    return true;
  }

  bool parse_video(od::value& v, Video* out) {
    out->present = true;
    out->size = {};
    out->mimes.clear();
    return each_field(v, [&](std::string_view k, od::value& f) {
      int x = 0;
      if (k == "mimes") return read_strings(f, &out->mimes);
      if (k == "w") {
        if (!read_int(f, 0, 65535, &x)) return false;
        out->size.w = static_cast<std::uint16_t>(x);
      } else if (k == "h") {
        if (!read_int(f, 0, 65535, &x)) return false;
        out->size.h = static_cast<std::uint16_t>(x);
      }
      return true;
    });
  }

  bool parse_imp(od::value& v, Imp* out) {
    bool ok = each_field(v, [&](std::string_view k, od::value& f) {
      if (k == "id") return read_string(f, &out->id);
      if (k == "banner") return parse_banner(f, &out->banner);
      if (k == "video") return parse_video(f, &out->video);
      if (k == "native") {
        od::object obj;  // any object: the bidder only needs to know an ad can be native
        if (error_code e = f.get_object().get(obj)) return json_error(e, "expected an object");
        out->native = true;
        return true;
      }
      if (k == "bidfloor") return read_micros(f, &out->bidfloor);
      if (k == "bidfloorcur") return read_string(f, &out->bidfloorcur);
      if (k == "tagid") return read_string(f, &out->tagid);
      return true;
    });
    if (!ok) return false;
    if (out->id.empty()) {
      int old = path.push("id");
      invalid("required: a non-empty string");
      path.pop(old);
      return false;
    }
    return true;
  }

  bool parse_publisher(od::value& v, Channel channel, Publisher* out) {
    if (out->channel != Channel::kNone && out->channel != channel) {
      return invalid("a request has a site or an app, not both");
    }
    out->channel = channel;
    return each_field(v, [&](std::string_view k, od::value& f) {
      if (channel == Channel::kSite && k == "domain") return read_string(f, &out->domain);
      if (channel == Channel::kApp && k == "bundle") return read_string(f, &out->bundle);
      if (k == "cat") return read_strings(f, &out->cat);
      if (k == "publisher") {
        return each_field(f, [&](std::string_view pk, od::value& pf) {
          return pk == "id" ? read_string(pf, &out->publisher_id) : true;
        });
      }
      return true;
    });
  }

  bool parse_device(od::value& v, Device* out) {
    return each_field(v, [&](std::string_view k, od::value& f) {
      if (k == "ua") return read_string(f, &out->ua);
      if (k == "ip") return read_string(f, &out->ip);
      if (k == "ifa") return read_string(f, &out->ifa);
      if (k == "devicetype") return read_int(f, 0, 255, &out->devicetype);
      if (k == "geo") {
        return each_field(f, [&](std::string_view gk, od::value& gf) {
          return gk == "country" ? read_string(gf, &out->country) : true;
        });
      }
      return true;
    });
  }

  bool parse_user(od::value& v, User* out) {
    return each_field(v, [&](std::string_view k, od::value& f) {
      if (k == "id") return read_string(f, &out->id);
      if (k == "buyeruid") return read_string(f, &out->buyeruid);
      return true;
    });
  }

  bool parse_regs(od::value& v, Regs* out) {
    return each_field(v, [&](std::string_view k, od::value& f) {
      if (k == "gdpr") return read_int(f, 0, 1, &out->gdpr);
      if (k == "us_privacy") return read_string(f, &out->us_privacy);
      return true;
    });
  }

  bool parse_root(od::object& root, BidRequest* out) {
    auto on_field = [&](std::string_view k, od::value& f) {
      int x = 0;
      switch (k.size() > 0 ? k[0] : '\0') {
        case 'i':
          if (k == "id") return read_string(f, &out->id);
          if (k == "imp") {
            out->imp.clear();
            return each_item(f, "expected an array of objects", [&](int, od::value& item) {
              if (out->imp.full()) return too_many(kMaxImps);
              return parse_imp(item, &out->imp.push());
            });
          }
          break;
        case 's':
          if (k == "site") return parse_publisher(f, Channel::kSite, &out->publisher);
          break;
        case 'a':
          if (k == "app") return parse_publisher(f, Channel::kApp, &out->publisher);
          if (k == "at") return read_int(f, 1, 3, &out->at);
          break;
        case 'd':
          if (k == "device") return parse_device(f, &out->device);
          break;
        case 'u':
          if (k == "user") return parse_user(f, &out->user);
          break;
        case 't':
          if (k == "tmax") return read_int(f, 0, 1'000'000, &out->tmax);
          if (k == "test") {
            if (!read_int(f, 0, 1, &x)) return false;
            out->test = x == 1;
            return true;
          }
          break;
        case 'c':
          if (k == "cur") return read_strings(f, &out->cur);
          break;
        case 'b':
          if (k == "bcat") return read_strings(f, &out->bcat);
          if (k == "badv") return read_strings(f, &out->badv);
          break;
        case 'r':
          if (k == "regs") return parse_regs(f, &out->regs);
          break;
        default:
          break;
      }
      return true;
    };
    if (!each_field_of(root, on_field)) return false;
    if (out->id.empty()) {
      int old = path.push("id");
      invalid("required: a non-empty string");
      path.pop(old);
      return false;
    }
    if (out->imp.empty()) {
      int old = path.push("imp");
      invalid("required: an array of at least one impression");
      path.pop(old);
      return false;
    }
    return true;
  }
};

BidRequestParser::BidRequestParser(std::size_t max_body_bytes)
    : max_body_bytes_(max_body_bytes), impl_(std::make_unique<Impl>(max_body_bytes)) {
  if (error_code e = impl_->parser.allocate(max_body_bytes)) {
    std::fprintf(stderr, "BidRequestParser: cannot allocate for %zu bytes: %s\n", max_body_bytes,
                 simdjson::error_message(e));
    std::abort();
  }
}

BidRequestParser::~BidRequestParser() = default;

ParseResult BidRequestParser::parse(const char* body, std::size_t len, std::size_t capacity, BidRequest* out) {
  assert(capacity >= len + kPadding);
  Impl& m = *impl_;
  m.path.clear();
  m.status = ParseStatus::kOk;
  m.reason[0] = '\0';
  out->clear();
  auto result = [&] { return ParseResult{m.status, std::string_view(m.reason)}; };
  if (len > max_body_bytes_) {
    char what[96];
    std::snprintf(what, sizeof what, "%zu bytes, over the limit of %zu", len, max_body_bytes_);
    m.fail(ParseStatus::kTooLarge, what);
    return result();
  }
  od::document doc;
  if (error_code e = m.parser.iterate(simdjson::padded_string_view(body, len, capacity)).get(doc)) {
    if (e == simdjson::EMPTY) {
      m.invalid("empty: expected a JSON object");
    } else {
      m.json_error(e, "expected a JSON object");
    }
    return result();
  }
  od::object root;
  if (error_code e = doc.get_object().get(root)) {
    m.json_error(e, "expected a JSON object");
    return result();
  }
  if (!m.parse_root(root, out)) return result();
  // Past the root object, the iterator must be at the end of the input.
  const char* rest = nullptr;
  if (doc.current_location().get(rest) != simdjson::OUT_OF_BOUNDS) {
    m.path.clear();
    m.invalid("malformed JSON (content after the request object)");
  }
  return result();
}

}  // namespace mnv::rtb
