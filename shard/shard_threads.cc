// shard/shard_threads.cc — shards as threads of this process (shard/shard_threads.h).
#include "shard/shard_threads.h"

namespace mnv {

std::unique_ptr<ShardSet> ShardThreads::start(const Topology& topology, ShardSetOptions options, std::string* error) {
  std::unique_ptr<ShardThreads> set(new ShardThreads(std::move(options)));
  set->make_shards();
  set->loops_ = std::make_unique<Loop[]>(set->size());
  for (auto& s : set->shards_) {
    Shard* shard = s.get();
    set->threads_.emplace_back([shard, &topology] { run_shard(*shard, topology); });
  }
  {
    std::unique_lock<std::mutex> lock(set->mu_);
    set->cv_.wait(lock, [&] { return set->failed_ || set->go_; });
    if (!set->failed_) return set;
    *error = set->error_;
  }
  for (auto& t : set->threads_) t.join();
  set->threads_.clear();
  return nullptr;
}

ShardThreads::~ShardThreads() {
  if (!threads_.empty()) {
    request_stop();
    wait();
  }
}

int ShardThreads::wait() {
  for (auto& t : threads_) t.join();
  threads_.clear();
  return 0;
}

void ShardThreads::request_stop() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& s : shards_) {
    if (auto& kernel = kernel_of(*s); kernel != nullptr) kernel->request_stop();
  }
}

void ShardThreads::attach(Shard& shard) {
  mailboxes_.set_waker(shard.index(), [](void* p) { static_cast<Poller*>(p)->wake(); }, &shard.kernel().poller());
}

void ShardThreads::report(std::size_t index, bool ok, const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!ok) {
    if (!failed_) error_ = error;
    failed_ = true;
    for (auto& s : shards_) {
      if (auto& kernel = kernel_of(*s); kernel != nullptr && s->index() != index) kernel->request_stop();
    }
  } else {
    ++started_;
    if (started_ == shards_.size()) go_ = true;
  }
  cv_.notify_all();
}

bool ShardThreads::await_turn(std::size_t index) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return failed_ || started_ == index; });
  return !failed_;
}

bool ShardThreads::await_go() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return failed_ || go_; });
  return !failed_;
}

bool ShardThreads::send_fd(std::size_t from, std::size_t to, ShardMessage message, int fd) {
  message.id = static_cast<std::uint64_t>(fd);  // one fd table: the number is the fd
  return mailboxes_.send(from, to, message);
}

void ShardThreads::swap_kernel(Shard& shard, std::unique_ptr<Kernel>& kernel) {
  // request_stop() and a failing shard's report() reach the kernel from other threads under mu_.
  std::lock_guard<std::mutex> lock(mu_);
  kernel_of(shard).swap(kernel);
}

}  // namespace mnv
