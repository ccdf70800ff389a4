#include "tests/faults/linearizability.h"

#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"

namespace strongroom::faults {
namespace {

struct State {
  int32_t value = 0;  // 0: none; otherwise 1 + index into the key's value table
  int64_t version = 0;
  bool operator==(const State&) const = default;
};

// The register's sequential specification (see the header). `value` is the op's value id (the
// written value for write / cas, the seen value for a read).
bool Step(const Op& op, int32_t value, const State& s, State* next) {
  switch (op.kind) {
    case Kind::kRead:
      *next = s;
      return op.outcome == Outcome::kOk && s.value == value && s.version == op.version;
    case Kind::kWrite:
      if (op.outcome == Outcome::kFail) return false;  // left out before the search
      if (op.outcome == Outcome::kOk && op.version >= 0 && op.version != s.version + 1) {
        return false;
      }
      *next = State{value, s.version + 1};
      return true;
    case Kind::kCas:
      if (op.outcome == Outcome::kFail) {
        *next = s;
        return s.version != op.cas;
      }
      // ok, or unknown: an unknown CAS that did not match had no effect, which is the same as
      // never linearising it.
      if (s.version != op.cas) return false;
      if (op.outcome == Outcome::kOk && op.version >= 0 && op.version != op.cas + 1) return false;
      *next = State{value, op.cas + 1};
      return true;
  }
  return false;
}

// Which operations the search takes part in: a failed plain write never happened (a write has
// no precondition, so "fail" is an answer that says "not applied"), an unknown read says
// nothing.
bool Relevant(const Op& op) {
  if (op.kind == Kind::kRead) return op.outcome == Outcome::kOk;
  if (op.kind == Kind::kWrite) return op.outcome != Outcome::kFail;
  return true;
}

class Bits {
 public:
  explicit Bits(size_t n) : words_((n + 63) / 64, 0) {}
  void Set(size_t i) { words_[i / 64] |= uint64_t{1} << (i % 64); }
  void Clear(size_t i) { words_[i / 64] &= ~(uint64_t{1} << (i % 64)); }
  const std::vector<uint64_t>& words() const { return words_; }

 private:
  std::vector<uint64_t> words_;
};

struct CacheEntry {
  std::vector<uint64_t> linearized;
  State state;
  bool operator==(const CacheEntry&) const = default;
};

struct CacheHash {
  size_t operator()(const CacheEntry& e) const {
    return absl::HashOf(e.linearized, e.state.value, e.state.version);
  }
};

// The events of a key's history in time order, as a doubly linked list the search lifts
// operations out of (and puts them back, in reverse order) as it linearises them.
struct Event {
  int op = 0;        // index into the relevant operations
  bool call = true;  // call (invocation) or return (completion)
  int match = -1;    // a call's return event; -1 for an open-ended (unknown) operation
  int64_t time = 0;
  int prev = -1, next = -1;
};

class EventList {
 public:
  explicit EventList(const std::vector<const Op*>& ops) {
    events_.push_back(Event{});  // the head sentinel, index 0
    std::vector<Event> sorted;
    for (size_t i = 0; i < ops.size(); ++i) {
      const int op = static_cast<int>(i);
      sorted.push_back(Event{op, true, -1, ops[i]->invoke});
      if (ops[i]->outcome != Outcome::kUnknown) {
        sorted.push_back(Event{op, false, -1, ops[i]->complete});
      }
    }
    // At equal times, calls before returns (the operations then overlap: the weaker demand).
    std::stable_sort(sorted.begin(), sorted.end(), [](const Event& a, const Event& b) {
      if (a.time != b.time) return a.time < b.time;
      return a.call && !b.call;
    });
    std::vector<int> call_of(ops.size(), -1);
    for (Event& e : sorted) {
      const int index = static_cast<int>(events_.size());
      if (e.call) {
        call_of[e.op] = index;
      } else {
        events_[call_of[e.op]].match = index;
      }
      events_.push_back(e);
    }
    for (size_t i = 0; i < events_.size(); ++i) {
      events_[i].prev = static_cast<int>(i) - 1;
      events_[i].next = i + 1 < events_.size() ? static_cast<int>(i) + 1 : -1;
    }
  }

  int First() const { return events_[0].next; }
  const Event& operator[](int i) const { return events_[i]; }

  // Takes a call and its return (if any) out of the list.
  void Lift(int call) {
    Unlink(call);
    if (events_[call].match >= 0) Unlink(events_[call].match);
  }
  // Undoes the Lift of `call` (the most recent one not yet undone).
  void Unlift(int call) {
    if (events_[call].match >= 0) Relink(events_[call].match);
    Relink(call);
  }

 private:
  void Unlink(int i) {
    Event& e = events_[i];
    events_[e.prev].next = e.next;
    if (e.next >= 0) events_[e.next].prev = e.prev;
  }
  void Relink(int i) {
    Event& e = events_[i];
    events_[e.prev].next = i;
    if (e.next >= 0) events_[e.next].prev = i;
  }

  std::vector<Event> events_;
};

}  // namespace

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kLinearizable:
      return "linearizable";
    case Verdict::kNotLinearizable:
      return "not linearizable";
    case Verdict::kUndecided:
      return "undecided (search budget exhausted)";
  }
  return "?";
}

KeyVerdict CheckKey(const std::vector<Op>& all, const CheckOptions& options) {
  KeyVerdict verdict;
  if (!all.empty()) verdict.key = all.front().key;
  std::vector<const Op*> ops;
  for (const Op& op : all) {
    if (Relevant(op)) ops.push_back(&op);
  }
  verdict.ops = ops.size();
  // Value ids: every written value, and every value a read saw (a value no write wrote gets an
  // id no state ever holds, so such a read cannot be linearised).
  std::unordered_map<std::string, int32_t> ids;
  std::vector<std::string> names = {"none"};
  std::vector<int32_t> value_of(ops.size(), 0);
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& op = *ops[i];
    if (op.kind == Kind::kRead && !op.found) continue;
    auto [it, added] = ids.emplace(op.value, static_cast<int32_t>(ids.size()) + 1);
    if (added) names.push_back("'" + op.value + "'");
    value_of[i] = it->second;
  }

  EventList events(ops);
  size_t definite = 0;  // operations that must be linearised (all but the open-ended ones)
  for (const Op* op : ops) definite += op->outcome != Outcome::kUnknown;

  struct Frame {
    int call;
    State before;
  };
  std::vector<Frame> stack;
  std::unordered_set<CacheEntry, CacheHash> cache;
  Bits linearized(ops.size());
  State state;
  size_t linearized_definite = 0;
  size_t deepest = 0;
  int culprit = -1;  // the op whose return the deepest search could not get past
  State culprit_state;
  int entry = events.First();
  while (linearized_definite < definite) {
    if (entry >= 0 && events[entry].call) {
      const int op = events[entry].op;
      State next;
      if (Step(*ops[op], value_of[op], state, &next)) {
        linearized.Set(op);
        if (cache.insert(CacheEntry{linearized.words(), next}).second) {
          if (cache.size() > options.max_states_per_key) {
            verdict.verdict = Verdict::kUndecided;
            verdict.states_explored = cache.size();
            verdict.explanation = absl::StrCat("gave up after ", cache.size(), " states");
            return verdict;
          }
          stack.push_back(Frame{entry, state});
          state = next;
          linearized_definite += ops[op]->outcome != Outcome::kUnknown;
          events.Lift(entry);
          entry = events.First();
          continue;
        }
        linearized.Clear(op);
      }
      entry = events[entry].next;
      continue;
    }
    // A return: the operation completed and no order placed it yet. Undo the latest choice.
    if (entry >= 0 && (culprit < 0 || stack.size() >= deepest)) {
      deepest = stack.size();
      culprit = events[entry].op;
      culprit_state = state;
    }
    if (stack.empty()) {
      verdict.verdict = Verdict::kNotLinearizable;
      break;
    }
    const Frame top = stack.back();
    stack.pop_back();
    const int op = events[top.call].op;
    state = top.before;
    linearized.Clear(op);
    linearized_definite -= ops[op]->outcome != Outcome::kUnknown;
    events.Unlift(top.call);
    entry = events[top.call].next;
  }
  verdict.states_explored = cache.size();
  if (verdict.verdict != Verdict::kNotLinearizable || culprit < 0) return verdict;

  const Op& bad = *ops[culprit];
  verdict.explanation =
      absl::StrCat("no order of the operations explains ", Describe(bad), "; the longest order ",
                   "found places ", deepest, " operations and leaves the register at ",
                   names[culprit_state.value], " v", culprit_state.version, " before it");
  // The window: every operation overlapping the culprit in time, in invocation order.
  for (const Op* op : ops) {
    if (op->invoke <= bad.complete && op->complete >= bad.invoke) verdict.window.push_back(*op);
  }
  std::sort(verdict.window.begin(), verdict.window.end(),
            [](const Op& a, const Op& b) { return a.invoke < b.invoke; });
  return verdict;
}

std::vector<KeyVerdict> CheckLinearizable(const std::vector<Op>& ops, const CheckOptions& options) {
  std::map<std::string, std::vector<Op>> by_key;
  for (const Op& op : ops) by_key[op.key].push_back(op);
  std::vector<KeyVerdict> out;
  for (const auto& [key, key_ops] : by_key) out.push_back(CheckKey(key_ops, options));
  return out;
}

}  // namespace strongroom::faults
