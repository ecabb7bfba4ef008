// runtime/intrusive_list.h — a doubly linked list whose links live inside its elements.
//
// The seed builds every container from <sys/queue.h> so that all of a process's objects, links
// included, sit in its own micro-heap and nothing is allocated to put an object on a queue.
// std:: has no intrusive list (and Boost is not a dependency), so this is the few lines needed:
// an element derives from Linked<Tag> once per list it can be on; List<T, Tag> is circular with a
// sentinel, so push/pop/remove are O(1) and branch-light. A List must not move once used; it
// keeps no count (callers that need one keep their own).
#pragma once

#include <cstddef>

#include "mem/log.h"

namespace mnv {

struct ListLink {
  ListLink* next = nullptr;
  ListLink* prev = nullptr;
  bool linked() const { return next != nullptr; }
};

// Base class giving T one link for the lists tagged `Tag`.
template <typename Tag>
struct Linked : ListLink {};

template <typename T, typename Tag>
class List {
 public:
  List() { head_.next = head_.prev = &head_; }
  List(const List&) = delete;
  List& operator=(const List&) = delete;

  bool empty() const { return head_.next == &head_; }
  T* front() const { return empty() ? nullptr : from(head_.next); }

  void push_back(T* t) { insert_before(&head_, link(t)); }
  void push_front(T* t) { insert_before(head_.next, link(t)); }
  T* pop_front() {
    if (empty()) return nullptr;
    T* t = from(head_.next);
    remove(t);
    return t;
  }
  void remove(T* t) { unlink(t); }
  // Takes t off whichever List<T, Tag> it is on; no-op if it is on none.
  static void unlink(T* t) {
    ListLink* l = link(t);
    if (!l->linked()) return;
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->next = l->prev = nullptr;
  }
  static bool is_linked(const T* t) { return static_cast<const Linked<Tag>*>(t)->linked(); }

  template <typename F>
  void for_each(F&& f) const {
    for (ListLink* l = head_.next; l != &head_;) {
      ListLink* next = l->next;  // f may remove the element
      f(from(l));
      l = next;
    }
  }

 private:
  static ListLink* link(T* t) { return static_cast<Linked<Tag>*>(t); }
  static T* from(ListLink* l) { return static_cast<T*>(static_cast<Linked<Tag>*>(l)); }
  void insert_before(ListLink* pos, ListLink* l) {
    MNV_ASSERT(!l->linked());
    l->next = pos;
    l->prev = pos->prev;
    pos->prev->next = l;
    pos->prev = l;
  }

  ListLink head_;
};

}  // namespace mnv
