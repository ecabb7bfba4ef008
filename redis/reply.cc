// redis/reply.cc — the reply view (reply.h).
#include "redis/reply.h"

#include <charconv>
#include <cstdlib>

#include "mem/log.h"

namespace mnv::redis {

const char* type_name(Type t) {
  switch (t) {
    case Type::kSimpleString: return "simple string";
    case Type::kError: return "error";
    case Type::kInteger: return "integer";
    case Type::kBulkString: return "bulk string";
    case Type::kArray: return "array";
    case Type::kNull: return "null";
    case Type::kDouble: return "double";
    case Type::kBoolean: return "boolean";
    case Type::kBigNumber: return "big number";
    case Type::kBlobError: return "blob error";
    case Type::kVerbatim: return "verbatim string";
    case Type::kMap: return "map";
    case Type::kSet: return "set";
    case Type::kPush: return "push";
  }
  return "?";
}

double Reply::to_double() const {
  if (n_->type == Type::kInteger || n_->type == Type::kBoolean) return static_cast<double>(n_->value);
  if (is_aggregate(n_->type) || n_->type == Type::kNull) return 0;
  char buf[64];
  ByteSpans s = str();
  if (s.size() >= sizeof buf) return 0;
  s.copy(0, s.size(), buf);
  buf[s.size()] = '\0';
  std::string_view v(buf, s.size());
  if (v == "inf" || v == "+inf") return __builtin_inf();
  if (v == "-inf") return -__builtin_inf();
  return std::strtod(buf, nullptr);
}

Reply Reply::operator[](std::size_t i) const {
  MNV_ASSERT(i < size());
  const Node* p = n_ + 1;
  for (; i > 0; --i) p += is_aggregate(p->type) ? p->span : 1;
  return Reply(p, data_);
}

}  // namespace mnv::redis
