// net/http/response_head.cc — the response head writer.
#include "net/http/response_head.h"

#include <cstring>

#include "net/http/chars.h"
#include "net/http/status.h"

namespace mnv::http {

void ResponseHeadWriter::put(std::string_view s) {
  if (failed_) return;
  if (s.size() > cap_ - len_) {
    failed_ = true;
    return;
  }
  std::memcpy(buf_ + len_, s.data(), s.size());
  len_ += s.size();
}

void ResponseHeadWriter::raw_field(std::string_view name_colon_space, std::string_view value) {
  put(name_colon_space);
  put(value);
  put("\r\n");
}

void ResponseHeadWriter::status(int code) {
  if (code < 100 || code > 999) {
    failed_ = true;
    return;
  }
  char digits[4] = {static_cast<char>('0' + code / 100), static_cast<char>('0' + code / 10 % 10),
                    static_cast<char>('0' + code % 10), ' '};
  put("HTTP/1.1 ");
  put(std::string_view(digits, 4));
  put(reason_phrase(code));
  put("\r\n");
}

void ResponseHeadWriter::header(std::string_view name, std::string_view value) {
  bool ok = !name.empty();
  for (char c : name) {
    if (!chars::token(c)) ok = false;
  }
  const char* end = value.data() + value.size();
  std::size_t n = name.size() + value.size() + 4;
  if (!ok || chars::skip_field_value(value.data(), end) != end || failed_ || n > cap_ - len_) {
    failed_ = true;
    return;
  }
  char* p = buf_ + len_;
  std::memcpy(p, name.data(), name.size());
  p += name.size();
  p[0] = ':';
  p[1] = ' ';
  if (!value.empty()) std::memcpy(p + 2, value.data(), value.size());
  p += 2 + value.size();
  p[0] = '\r';
  p[1] = '\n';
  len_ += n;
}

void ResponseHeadWriter::content_length(std::uint64_t n) {
  char digits[20];
  int i = 20;
  do {
    digits[--i] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0);
  raw_field("Content-Length: ", std::string_view(digits + i, static_cast<std::size_t>(20 - i)));
}

std::size_t ResponseHeadWriter::end() {
  put("\r\n");
  return failed_ ? 0 : len_;
}

}  // namespace mnv::http
