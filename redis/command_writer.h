// redis/command_writer.h — writes a command (a RESP array of bulk strings) into a send ring.
//
//   const std::string_view args[] = {"SET", key, value};
//   CommandWriter w(args);
//   while (!w.write(socket.tx())) { ...drain the ring... }   // true once all of it is in
//
// write() copies as much of the command as the ring has room for and remembers where it stopped,
// so a command larger than the ring (a big SET) streams through it; one that fits in the ring's
// first piece of free space is formatted straight into it in one pass. The arguments are the caller's and must stay valid until it is written.
// Nothing is allocated. (Redis reads arrays of bulk strings; inline commands are not written.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "net/vectoring.h"

namespace mnv::redis {

// The bytes `args` take as a RESP command.
std::size_t command_size(std::span<const std::string_view> args);

class CommandWriter {
 public:
  explicit CommandWriter(std::span<const std::string_view> args) : args_(args) {}

  // Writes what fits of the rest of the command into `tx` (which must be allocated). True once
  // the whole command has been written.
  bool write(Vectoring& tx);
  bool done() const { return arg_ == static_cast<std::int64_t>(args_.size()) && part_ == 0; }

 private:
  // Copies what fits of `piece` from offset off_ into tx; true once it is all in.
  bool put(Vectoring& tx, std::string_view piece);

  std::span<const std::string_view> args_;
  std::int64_t arg_ = -1;   // -1: the array's header; then each argument; args_.size(): done
  std::uint8_t part_ = 0;   // of an argument: 0 its "$len\r\n", 1 its bytes, 2 its "\r\n"
  std::size_t off_ = 0;     // bytes of the current part already written
};

// A decimal integer as an argument: `Int n(42); args = {"INCRBY", key, n};`. The argument views
// the Int's own bytes: the Int must live until the command is written (a named one, or a
// temporary inside the call's full expression, as in c.call_args(&r, "INCRBY", key, Int(5))).
class Int {
 public:
  explicit Int(std::int64_t v);
  operator std::string_view() const { return {buf_, len_}; }

 private:
  char buf_[24];
  std::uint8_t len_;
};

}  // namespace mnv::redis
