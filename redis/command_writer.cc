// redis/command_writer.cc — RESP commands into the send ring (command_writer.h).
#include "redis/command_writer.h"

#include <sys/uio.h>

#include <charconv>
#include <cstring>

namespace mnv::redis {
namespace {

// "<prefix><n>\r\n" into buf; returns its length.
std::size_t header(char* buf, char prefix, std::size_t n) {
  buf[0] = prefix;
  char* end = std::to_chars(buf + 1, buf + 22, n).ptr;
  end[0] = '\r';
  end[1] = '\n';
  return static_cast<std::size_t>(end + 2 - buf);
}

std::size_t digits(std::size_t n) {
  std::size_t d = 1;
  while (n >= 10) {
    n /= 10;
    ++d;
  }
  return d;
}

}  // namespace

std::size_t command_size(std::span<const std::string_view> args) {
  std::size_t total = 1 + digits(args.size()) + 2;
  for (std::string_view a : args) total += 1 + digits(a.size()) + 2 + a.size() + 2;
  return total;
}

bool CommandWriter::put(Vectoring& tx, std::string_view piece) {
  std::size_t n = tx.write(piece.data() + off_, piece.size() - off_);
  off_ += n;
  if (off_ < piece.size()) return false;
  off_ = 0;
  return true;
}

bool CommandWriter::write(Vectoring& tx) {
  if (arg_ < 0 && off_ == 0) {  // nothing written yet: when it all fits in one piece, in one pass
    iovec space[2];
    if (tx.space_iov(space) > 0) {
      const std::size_t need = command_size(args_);
      if (space[0].iov_len >= need) {
        char* p = static_cast<char*>(space[0].iov_base);
        p += header(p, '*', args_.size());
        for (std::string_view a : args_) {
          p += header(p, '$', a.size());
          if (!a.empty()) std::memcpy(p, a.data(), a.size());
          p += a.size();
          *p++ = '\r';
          *p++ = '\n';
        }
        tx.commit(need);
        arg_ = static_cast<std::int64_t>(args_.size());
        return true;
      }
    }
  }
  char buf[24];
  const auto count = static_cast<std::int64_t>(args_.size());
  if (arg_ < 0) {
    if (!put(tx, std::string_view(buf, header(buf, '*', args_.size())))) return false;
    arg_ = 0;
  }
  while (arg_ < count) {
    std::string_view a = args_[static_cast<std::size_t>(arg_)];
    if (part_ == 0) {
      if (!put(tx, std::string_view(buf, header(buf, '$', a.size())))) return false;
      part_ = 1;
    }
    if (part_ == 1) {
      if (!put(tx, a)) return false;
      part_ = 2;
    }
    if (!put(tx, "\r\n")) return false;
    part_ = 0;
    ++arg_;
  }
  return true;
}

Int::Int(std::int64_t v) { len_ = static_cast<std::uint8_t>(std::to_chars(buf_, buf_ + sizeof buf_, v).ptr - buf_); }

}  // namespace mnv::redis
