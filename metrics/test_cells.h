// metrics/test_cells.h — places a registry's cells in private, aligned heap memory: for tests
// and benchmarks whose shards are threads of one process (a server uses a shared mapping).
#pragma once

#include <cstdlib>

#include "mem/log.h"
#include "metrics/registry.h"

namespace mnv::metrics {

class TestCells {
 public:
  explicit TestCells(Registry& registry) {
    std::size_t bytes = registry.bytes_needed();
    bytes = bytes == 0 ? Registry::kAlign : (bytes + Registry::kAlign - 1) / Registry::kAlign * Registry::kAlign;
    memory_ = std::aligned_alloc(Registry::kAlign, bytes);
    if (memory_ == nullptr) panic("metrics: TestCells could not allocate %zu bytes", bytes);
    registry.place(memory_, bytes);
  }
  ~TestCells() { std::free(memory_); }
  TestCells(const TestCells&) = delete;
  TestCells& operator=(const TestCells&) = delete;

 private:
  void* memory_;
};

}  // namespace mnv::metrics
