// perf/echo_client.h — the echo benchmark's client side: a ping-pong load run and an
// idle-connection memory run against any server speaking the echo protocol (apps/echo,
// perf/epoll_echo_server): each line sent is answered with "Line N: <line>", N counting from 0
// per connection.
//
// Both runs are single-threaded epoll loops over a fixed set of connections whose buffers are
// allocated up front; nothing is allocated per message. Every reply is checked: the "Line N: "
// prefix must carry the right N and the rest must be the line that was sent (each line's payload
// differs, so a reply to the wrong line is caught). Connections are opened at most
// `max_connecting` at a time (a connection counts as opening until its first reply arrives), so
// a server with a short listen backlog never sees its accept queue overflow.
//
// Everything is bounded: every run stops by itself at `timeout_s` at the latest.
#pragma once

#include <cstdint>
#include <string>

namespace mnv::perf {

struct LoadOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  int connections = 1000;
  int msg_size = 64;         // bytes per line, the '\n' included: msg_size-1 printable bytes + '\n'
  double warmup_s = 1.0;     // ping-pong before measuring (starts once every connection is open)
  double duration_s = 5.0;   // the measured window, unless `messages` > 0
  std::int64_t messages = 0; // > 0: measure exactly this many messages instead of a duration
  double timeout_s = 60.0;   // hard bound on the whole run; unfinished work counts as errors
  int server_pid = 0;        // > 0: measure that process's CPU time over the measured window
  int max_connecting = 64;   // connections opening at once
};

struct LoadResult {
  int connections_ok = 0;        // connections that stayed healthy to the end
  std::uint64_t messages = 0;    // replies counted in the measured window
  double seconds = 0;            // length of the measured window
  double msgs_per_s = 0;
  // Round-trip latency (send of a line to the arrival of its whole reply), nanoseconds.
  std::uint64_t p50_ns = 0, p90_ns = 0, p99_ns = 0, p999_ns = 0, max_ns = 0;
  double mean_ns = 0;
  std::uint64_t mismatches = 0;  // replies with a wrong prefix, payload or length
  std::uint64_t conn_errors = 0; // connections refused, reset or closed by the server
  std::uint64_t timeouts = 0;    // messages a count-mode run did not get before timeout_s
  std::uint64_t errors() const { return mismatches + conn_errors + timeouts; }
  std::string first_error;       // a description of the first error, if any
  // Server CPU (utime+stime from /proc/PID/stat) over the measured window; -1 if not measured.
  std::int64_t server_cpu_us = -1;
  double server_cpu_us_per_msg = 0;
  double msgs_per_server_cpu_s = 0;
  double client_cpu_pct = 0;     // this process's CPU time over the window, percent of one core
};

// Runs a ping-pong load as described by `opt`. Never throws; problems show up as errors.
LoadResult run_load(const LoadOptions& opt);

struct IdleOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  int connections = 10000;
  int msg_size = 64;
  double timeout_s = 60.0;
  int server_pid = 0;  // > 0: measure its RSS before connecting and with every connection idle
  int max_connecting = 64;
  double settle_s = 2.0;  // how long the connections stay idle before RSS is read
};

struct IdleResult {
  int connections_ok = 0;  // connections opened, answered once and held idle
  std::uint64_t errors = 0;
  std::string first_error;
  std::int64_t rss_before_kib = -1;  // VmRSS before the first connection; -1 if not measured
  std::int64_t rss_fresh_kib = -1;   // VmRSS right after the last connection was answered
  std::int64_t rss_after_kib = -1;   // VmRSS with every connection idle for settle_s
  double kib_per_conn = 0;           // (after - before) / connections_ok
  double setup_s = 0;                // time to open and answer every connection
};

// Opens opt.connections connections, sends one line on each and checks its reply, measures the
// server's RSS with all of them idle, then closes them all.
IdleResult run_idle(const IdleOptions& opt);

// utime+stime of process `pid` and the processes below it (a server whose shards are
// processes), in microseconds (from clock ticks); false if `pid`'s is unreadable.
bool read_proc_cpu_us(int pid, std::int64_t* us);
// VmRSS of process `pid` and the processes below it, in KiB (pages they share, such as the
// shard mailboxes, count once per process); false if `pid`'s is unreadable.
bool read_proc_rss_kib(int pid, std::int64_t* kib);
// Raises RLIMIT_NOFILE's soft limit to its hard limit; returns the new soft limit (-1 on error).
long raise_nofile_limit();

// "RESULT key=value ..." lines for scripts (no trailing newline).
std::string result_line(const LoadOptions& opt, const LoadResult& r);
std::string result_line(const IdleOptions& opt, const IdleResult& r);
// One human-readable line each (no trailing newline).
std::string summary_line(const LoadOptions& opt, const LoadResult& r);
std::string summary_line(const IdleOptions& opt, const IdleResult& r);

}  // namespace mnv::perf
