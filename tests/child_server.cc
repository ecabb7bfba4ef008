// tests/child_server.cc — see child_server.h.
#include "tests/child_server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace mnv::testing {

ChildServer::ChildServer(const std::function<int()>& body, const ChildOptions& options) {
  int out[2];
  if (::pipe(out) != 0) return;
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    if (!options.stderr_path.empty()) {
      int err = ::open(options.stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (err >= 0) ::dup2(err, STDERR_FILENO);
    }
    if (options.max_files != 0) {
      rlimit r{options.max_files, options.max_files};
      ::setrlimit(RLIMIT_NOFILE, &r);
    }
    std::_Exit(body());
  }
  ::close(out[1]);
  if (pid_ < 0) {
    ::close(out[0]);
    return;
  }
  FILE* f = ::fdopen(out[0], "r");
  char line[256];
  while ((port_ == 0 || (options.admin && admin_ == 0)) && std::fgets(line, sizeof line, f) != nullptr) {
    unsigned p = 0;
    if (std::sscanf(line, "listening on 127.0.0.1:%u", &p) == 1) port_ = static_cast<std::uint16_t>(p);
    if (std::sscanf(line, "admin listening on 127.0.0.1:%u", &p) == 1) admin_ = static_cast<std::uint16_t>(p);
  }
  std::fclose(f);
}

std::function<int()> ChildServer::exec(std::vector<std::string> argv) {
  return [argv]() mutable {
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    return 127;
  };
}

ChildServer::~ChildServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

int ChildServer::terminate() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  return wait();
}

int ChildServer::wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

long ChildServer::cpu_ticks() const {
  std::string stat = slurp("/proc/" + std::to_string(pid_) + "/stat");
  std::size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream in(stat.substr(paren + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::atol(field.c_str());
    if (i == 15) stime = std::atol(field.c_str());
  }
  return utime + stime;
}

}  // namespace mnv::testing
