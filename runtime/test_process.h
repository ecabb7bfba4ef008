// runtime/test_process.h — a process on its own mapped micro-heap, for tests and benchmarks.
#pragma once

#include "mem/heap.h"
#include "mem/segment.h"
#include "runtime/process.h"

namespace mnv {

struct TestProcess {
  explicit TestProcess(std::size_t pages = 16)
      : segment(Segment::map(pages)), heap(Heap::init(segment.base(), pages)), process(Process::create(heap)) {}
  ~TestProcess() { process->destroy(); }
  Process* operator->() const { return process; }
  Segment segment;
  Heap* heap;
  Process* process;
};

}  // namespace mnv
