#include "tests/faults/anomalies.h"

#include <map>
#include <set>
#include <unordered_map>

#include "absl/strings/str_cat.h"

namespace strongroom::faults {
namespace {

constexpr size_t kMaxFindingsPerKey = 20;  // counts stay exact; texts are samples

class KeyAnomalies {
 public:
  KeyAnomalies(const std::string& key, const std::vector<const Op*>& ops, const FinalKey* final,
               Anomalies* out)
      : key_(key), ops_(ops), final_(final), out_(out) {
    for (const Op* op : ops_) {
      if (op->kind == Kind::kRead) {
        if (op->outcome == Outcome::kOk) reads_.push_back(op);
      } else {
        writes_[op->value] = op;
      }
    }
  }

  void Run() {
    Duplicates();
    Lost();
    Stale();
    StaleCas();
  }

 private:
  void Add(Finding::Type type, std::string text) {
    switch (type) {
      case Finding::Type::kLostWrite:
        ++out_->lost_writes;
        break;
      case Finding::Type::kStaleRead:
        ++out_->stale_reads;
        break;
      case Finding::Type::kDuplicatedWrite:
        ++out_->duplicated_writes;
        break;
    }
    if (++recorded_ <= kMaxFindingsPerKey) {
      out_->findings.push_back(Finding{type, key_, std::move(text)});
    }
  }

  // A value seen at `version` (by `where`): flags the value once if its write does not explain it.
  void Seen(const std::string& value, int64_t version, const std::string& where) {
    auto& versions = seen_at_[value];
    versions.insert(version);
    if (flagged_.count(value) != 0) return;
    auto w = writes_.find(value);
    std::string why;
    if (w == writes_.end()) {
      why = "no operation wrote it";
    } else if (w->second->outcome == Outcome::kFail) {
      why = absl::StrCat("its write failed: ", Describe(*w->second));
    } else if (w->second->outcome == Outcome::kOk && w->second->version >= 0 &&
               w->second->version != version) {
      why = absl::StrCat("its write was acknowledged as v", w->second->version, ": ",
                         Describe(*w->second));
    } else if (versions.size() > 1) {
      why = absl::StrCat("it is at v", *versions.begin(), " and v", *versions.rbegin());
    } else {
      return;
    }
    flagged_.insert(value);
    Add(Finding::Type::kDuplicatedWrite,
        absl::StrCat("'", value, "' at v", version, " (", where, "): ", why));
  }

  void Duplicates() {
    for (const Op* r : reads_) {
      if (r->found) Seen(r->value, r->version, Describe(*r));
    }
    if (final_ == nullptr) return;
    for (const auto& [n, value] : final_->versions) Seen(value, n, "final version table");
  }

  // Whether the acknowledged write `w` (version n) is missing; `why` says how.
  bool IsLost(const Op& w, std::string* why) const {
    const int64_t n = w.version;
    if (final_ != nullptr) {
      if (final_->current < n) {
        *why = absl::StrCat("the final version is v", final_->current);
        return true;
      }
      auto at = final_->versions.find(n);
      if (at != final_->versions.end()) {
        if (at->second == w.value) return false;
        *why = absl::StrCat("the final table has '", at->second, "' at v", n);
        return true;
      }
    }
    if (seen_at_.count(w.value) != 0) return false;
    const Op* later_old = nullptr;
    for (const Op* r : reads_) {
      if (r->invoke <= w.complete) continue;
      if (r->version >= n) return false;
      later_old = r;
    }
    if (later_old == nullptr) return false;
    *why = absl::StrCat("no read saw it; reads after it see older versions, as ",
                        Describe(*later_old));
    return true;
  }

  void Lost() {
    for (const Op* op : ops_) {
      if (op->kind == Kind::kRead || op->outcome != Outcome::kOk || op->version < 1) continue;
      std::string why;
      if (IsLost(*op, &why)) {
        lost_.insert(op);
        Add(Finding::Type::kLostWrite, absl::StrCat(Describe(*op), ": ", why));
      }
    }
  }

  // A read that sees a version older than one acknowledged (by a write that is not lost, or by
  // another read) before it was invoked.
  void Stale() {
    for (const Op* r : reads_) {
      const Op* newer = nullptr;
      for (const Op* o : ops_) {
        if (o->outcome != Outcome::kOk || o->complete >= r->invoke || o->version <= r->version) {
          continue;
        }
        if (o->kind != Kind::kRead && lost_.count(o) != 0) continue;
        if (newer == nullptr || o->version > newer->version) newer = o;
      }
      if (newer != nullptr) {
        stale_.insert(r);
        Add(Finding::Type::kStaleRead,
            absl::StrCat(Describe(*r), " after ", Describe(*newer), " had completed"));
      }
    }
  }

  // A CAS refused although its expected version was current for its whole interval: an
  // operation showing that version completed before the CAS began, and a read invoked after the
  // CAS completed, itself not stale, still saw it (versions only grow). The node checked a stale
  // copy.
  void StaleCas() {
    for (const Op* c : ops_) {
      if (c->kind != Kind::kCas || c->outcome != Outcome::kFail) continue;
      const Op* before = nullptr;
      const Op* after = nullptr;
      for (const Op* o : ops_) {
        if (o->outcome != Outcome::kOk || o->version != c->cas || stale_.count(o) != 0) continue;
        if (o->complete < c->invoke && lost_.count(o) == 0) before = o;
        if (o->kind == Kind::kRead && o->invoke > c->complete && after == nullptr) after = o;
      }
      if (after == nullptr || (before == nullptr && c->cas != 0)) continue;
      Add(Finding::Type::kStaleRead,
          absl::StrCat(Describe(*c), " refused, yet v", c->cas, " was current throughout: ",
                       before != nullptr ? absl::StrCat("set by ", Describe(*before))
                                         : std::string("the key had no version"),
                       ", still seen by ", Describe(*after)));
    }
  }

  const std::string& key_;
  const std::vector<const Op*>& ops_;
  const FinalKey* final_;
  Anomalies* out_;
  std::vector<const Op*> reads_;
  std::unordered_map<std::string, const Op*> writes_;
  std::unordered_map<std::string, std::set<int64_t>> seen_at_;
  std::set<std::string> flagged_;
  std::set<const Op*> lost_;
  std::set<const Op*> stale_;  // reads found stale (not evidence of what was current)
  size_t recorded_ = 0;
};

}  // namespace

const char* FindingName(Finding::Type type) {
  switch (type) {
    case Finding::Type::kLostWrite:
      return "lost write";
    case Finding::Type::kStaleRead:
      return "stale read";
    case Finding::Type::kDuplicatedWrite:
      return "duplicated write";
  }
  return "?";
}

Anomalies FindAnomalies(const History& history) {
  std::map<std::string, std::vector<const Op*>> by_key;
  for (const Op& op : history.ops) by_key[op.key].push_back(&op);
  for (const auto& [key, f] : history.finals) by_key[key];  // a final table with no ops
  Anomalies out;
  for (const auto& [key, ops] : by_key) {
    auto f = history.finals.find(key);
    KeyAnomalies(key, ops, f == history.finals.end() ? nullptr : &f->second, &out).Run();
  }
  return out;
}

}  // namespace strongroom::faults
