// net/http/fuzz/llhttp_oracle.h — llhttp (Debian's node-llhttp C sources) run over a whole
// request stream, collecting the same fields as net/http/test_driver.h, so the fuzzer can compare
// our parser against it message by message.
#pragma once

#include <llhttp.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/http/test_driver.h"

namespace mnv::http::fuzz {

struct OracleOutcome {
  std::vector<testing::Message> messages;
  llhttp_errno_t error = HPE_OK;
  std::string reason;       // llhttp's error reason
  bool partial = false;     // the stream ended inside a message
  bool upgrade = false;     // llhttp stopped after an Upgrade/CONNECT head (HPE_PAUSED_UPGRADE)
};

namespace detail {

struct State {
  OracleOutcome* out;
  testing::Message m;
  bool in_message = false;
  bool last_was_value = false;
  bool trailer = false;  // after the head: fields are a chunked trailer, ignored like ours does
  std::string field, value;

  void flush_header() {
    if (!field.empty() || !value.empty()) m.headers.emplace_back(field, value);
    field.clear();
    value.clear();
  }
};

inline State* state(llhttp_t* p) { return static_cast<State*>(p->data); }

inline int on_message_begin(llhttp_t* p) {
  State* s = state(p);
  s->m = testing::Message();
  s->in_message = true;
  s->trailer = false;
  s->last_was_value = false;
  s->field.clear();
  s->value.clear();
  return 0;
}
inline int on_method(llhttp_t* p, const char* at, size_t n) { state(p)->m.method.append(at, n); return 0; }
inline int on_url(llhttp_t* p, const char* at, size_t n) { state(p)->m.target.append(at, n); return 0; }
inline int on_header_field(llhttp_t* p, const char* at, size_t n) {
  State* s = state(p);
  if (s->trailer) return 0;
  if (s->last_was_value) s->flush_header();
  s->last_was_value = false;
  s->field.append(at, n);
  return 0;
}
inline int on_header_value(llhttp_t* p, const char* at, size_t n) {
  State* s = state(p);
  if (s->trailer) return 0;
  s->last_was_value = true;
  s->value.append(at, n);
  return 0;
}
inline int on_headers_complete(llhttp_t* p) {
  State* s = state(p);
  s->flush_header();
  s->last_was_value = false;
  s->trailer = true;
  s->m.version_major = llhttp_get_http_major(p);
  s->m.version_minor = llhttp_get_http_minor(p);
  s->m.keep_alive = llhttp_should_keep_alive(p) != 0;
  return 0;
}
inline int on_body(llhttp_t* p, const char* at, size_t n) { state(p)->m.body.append(at, n); return 0; }
inline int on_message_complete(llhttp_t* p) {
  State* s = state(p);
  s->out->messages.push_back(std::move(s->m));
  s->in_message = false;
  return 0;
}

}  // namespace detail

inline OracleOutcome run_llhttp(std::string_view in) {
  OracleOutcome out;
  detail::State st;
  st.out = &out;
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_message_begin = detail::on_message_begin;
  settings.on_method = detail::on_method;
  settings.on_url = detail::on_url;
  settings.on_header_field = detail::on_header_field;
  settings.on_header_value = detail::on_header_value;
  settings.on_headers_complete = detail::on_headers_complete;
  settings.on_body = detail::on_body;
  settings.on_message_complete = detail::on_message_complete;
  llhttp_t parser;
  llhttp_init(&parser, HTTP_REQUEST, &settings);
  parser.data = &st;
  llhttp_errno_t e = llhttp_execute(&parser, in.data(), in.size());
  if (e == HPE_PAUSED_UPGRADE) {
    out.upgrade = true;
  } else if (e != HPE_OK) {
    out.error = e;
    out.reason = llhttp_get_error_reason(&parser) != nullptr ? llhttp_get_error_reason(&parser) : "";
  }
  out.partial = st.in_message;
  return out;
}

}  // namespace mnv::http::fuzz
