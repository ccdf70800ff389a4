// The fault suite's checker, shown first on hand-made histories: it finds a stale read, a lost
// write and a duplicated write, and accepts valid concurrent histories (including timed-out
// operations that did or did not take effect). Times are in arbitrary units.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "tests/faults/anomalies.h"
#include "tests/faults/linearizability.h"

namespace strongroom::faults {
namespace {

using ::testing::HasSubstr;

Op Write(std::string value, int64_t invoke, int64_t complete, Outcome outcome, int64_t version,
         int64_t client = 0, std::string key = "k") {
  Op op;
  op.kind = Kind::kWrite;
  op.key = std::move(key);
  op.value = std::move(value);
  op.invoke = invoke;
  op.complete = outcome == Outcome::kUnknown ? INT64_MAX : complete;
  op.outcome = outcome;
  op.version = outcome == Outcome::kOk ? version : -1;
  op.client = client;
  return op;
}

Op Cas(int64_t cas, std::string value, int64_t invoke, int64_t complete, Outcome outcome,
       int64_t client = 0) {
  Op op = Write(std::move(value), invoke, complete, outcome, outcome == Outcome::kOk ? cas + 1 : -1,
                client);
  op.kind = Kind::kCas;
  op.cas = cas;
  return op;
}

// A read that saw `value` at `version` (version 0 and an empty value: nothing there).
Op Read(std::string value, int64_t version, int64_t invoke, int64_t complete, int64_t client = 0,
        std::string key = "k") {
  Op op;
  op.kind = Kind::kRead;
  op.key = std::move(key);
  op.found = version > 0;
  op.value = std::move(value);
  op.version = version;
  op.invoke = invoke;
  op.complete = complete;
  op.outcome = Outcome::kOk;
  op.client = client;
  return op;
}

std::vector<Op> Numbered(std::vector<Op> ops) {
  for (size_t i = 0; i < ops.size(); ++i) ops[i].index = static_cast<int64_t>(i) + 1;
  return ops;
}

Verdict Check(const std::vector<Op>& ops) { return CheckKey(Numbered(ops)).verdict; }

Anomalies Classify(const std::vector<Op>& ops, const FinalKey* final = nullptr) {
  History h;
  h.ops = Numbered(ops);
  if (final != nullptr) h.finals["k"] = *final;
  return FindAnomalies(h);
}

TEST(LinearizabilityTest, EmptyAndSequentialHistoriesAreLinearizable) {
  EXPECT_EQ(Check({}), Verdict::kLinearizable);
  EXPECT_EQ(Check({Read("", 0, 0, 1), Write("a", 2, 3, Outcome::kOk, 1), Read("a", 1, 4, 5),
                   Cas(1, "b", 6, 7, Outcome::kOk), Read("b", 2, 8, 9),
                   Cas(1, "c", 10, 11, Outcome::kFail), Read("b", 2, 12, 13),
                   Cas(0, "d", 14, 15, Outcome::kFail), Write("e", 16, 17, Outcome::kOk, 3),
                   Read("e", 3, 18, 19)}),
            Verdict::kLinearizable);
}

TEST(LinearizabilityTest, ConcurrentOperationsMayTakeEffectInEitherOrder) {
  // Two overlapping writes; the reads inside the overlap see either, the one after sees the
  // order the versions name (b second).
  EXPECT_EQ(Check({Write("a", 0, 10, Outcome::kOk, 1, 1), Write("b", 1, 11, Outcome::kOk, 2, 2),
                   Read("b", 2, 2, 3, 3), Read("", 0, 0, 1, 4), Read("b", 2, 12, 13, 3)}),
            Verdict::kLinearizable);
  EXPECT_EQ(Check({Write("a", 0, 10, Outcome::kOk, 2, 1), Write("b", 1, 11, Outcome::kOk, 1, 2),
                   Read("b", 1, 2, 3, 3), Read("a", 2, 12, 13, 3)}),
            Verdict::kLinearizable);
  // A read overlapping a write may see the old or the new value, and two overlapping reads may
  // disagree as long as an order explains both.
  EXPECT_EQ(Check({Write("a", 0, 1, Outcome::kOk, 1), Write("b", 2, 10, Outcome::kOk, 2),
                   Read("a", 1, 3, 4, 1), Read("b", 2, 5, 6, 2), Read("b", 2, 7, 8, 1)}),
            Verdict::kLinearizable);
  // Two CAS racing on version 1: one wins, the other fails.
  EXPECT_EQ(Check({Write("a", 0, 1, Outcome::kOk, 1), Cas(1, "x", 2, 9, Outcome::kOk, 1),
                   Cas(1, "y", 3, 8, Outcome::kFail, 2), Read("x", 2, 10, 11)}),
            Verdict::kLinearizable);
}

TEST(LinearizabilityTest, TimedOutOperationsMayOrMayNotHaveHappened) {
  // Never seen: fine (it did not happen, or happened after everything).
  EXPECT_EQ(Check({Write("a", 0, 1, Outcome::kOk, 1), Write("lost?", 2, 0, Outcome::kUnknown, -1),
                   Read("a", 1, 3, 4), Read("a", 1, 20, 21)}),
            Verdict::kLinearizable);
  // Seen long after its client gave up: fine (open-ended completion).
  EXPECT_EQ(
      Check({Write("a", 0, 1, Outcome::kOk, 1), Write("late", 2, 0, Outcome::kUnknown, -1),
             Read("a", 1, 30, 31), Read("late", 2, 40, 41), Write("c", 50, 51, Outcome::kOk, 3)}),
      Verdict::kLinearizable);
  // An unknown CAS that took effect, and one that did not.
  EXPECT_EQ(Check({Write("a", 0, 1, Outcome::kOk, 1), Cas(1, "b", 2, 0, Outcome::kUnknown),
                   Cas(1, "c", 3, 0, Outcome::kUnknown), Read("b", 2, 10, 11)}),
            Verdict::kLinearizable);
  // But not seen before it was invoked.
  EXPECT_EQ(Check({Read("early", 1, 0, 1), Write("early", 2, 0, Outcome::kUnknown, -1)}),
            Verdict::kNotLinearizable);
}

TEST(LinearizabilityTest, FindsAStaleRead) {
  // b (v2) was acknowledged before the read began; the read still sees a (v1), as a deposed
  // leader answering from its own copy would. Later reads show b: it is a stale read, not a
  // lost write.
  std::vector<Op> h = {Write("a", 0, 1, Outcome::kOk, 1, 1), Write("b", 2, 3, Outcome::kOk, 2, 1),
                       Read("a", 1, 4, 5, 2), Read("b", 2, 6, 7, 3)};
  KeyVerdict v = CheckKey(Numbered(h));
  EXPECT_EQ(v.verdict, Verdict::kNotLinearizable);
  ASSERT_FALSE(v.window.empty());
  EXPECT_THAT(v.explanation, HasSubstr("#3"));  // the stale read
  Anomalies a = Classify(h);
  EXPECT_EQ(a.stale_reads, 1u);
  EXPECT_EQ(a.lost_writes, 0u);
  EXPECT_EQ(a.duplicated_writes, 0u);
  ASSERT_EQ(a.findings.size(), 1u);
  EXPECT_THAT(a.findings[0].text, HasSubstr("#3"));
  // A read after another read that saw a newer version is stale too (monotonicity).
  EXPECT_EQ(Check({Write("a", 0, 1, Outcome::kOk, 1), Write("b", 2, 10, Outcome::kOk, 2),
                   Read("b", 2, 3, 4, 1), Read("a", 1, 5, 6, 2)}),
            Verdict::kNotLinearizable);
  EXPECT_EQ(Classify({Write("a", 0, 1, Outcome::kOk, 1), Write("b", 2, 10, Outcome::kOk, 2),
                      Read("b", 2, 3, 4, 1), Read("a", 1, 5, 6, 2)})
                .stale_reads,
            1u);
  // A CAS refused by a node that checked it against its stale copy: v2 was current before the
  // CAS began and still after it ended.
  std::vector<Op> cas = {Write("a", 0, 1, Outcome::kOk, 1), Write("b", 2, 3, Outcome::kOk, 2),
                         Cas(2, "c", 4, 5, Outcome::kFail), Read("b", 2, 6, 7)};
  EXPECT_EQ(Check(cas), Verdict::kNotLinearizable);
  Anomalies stale_cas = Classify(cas);
  EXPECT_EQ(stale_cas.stale_reads, 1u);
  EXPECT_THAT(stale_cas.findings.at(0).text, HasSubstr("refused, yet v2 was current"));
  // Not when another write may have come in between (the unknown one).
  std::vector<Op> maybe = {Write("a", 0, 1, Outcome::kOk, 1), Write("b", 2, 3, Outcome::kOk, 2),
                           Write("x", 3, 0, Outcome::kUnknown, -1),
                           Cas(2, "c", 4, 5, Outcome::kFail), Read("x", 3, 6, 7)};
  EXPECT_EQ(Check(maybe), Verdict::kLinearizable);
  EXPECT_EQ(Classify(maybe).stale_reads, 0u);
  // Nor on the word of a stale read: v3 came in before the CAS; the read of v2 after it is the
  // (one) stale operation.
  std::vector<Op> misled = {Write("a", 0, 1, Outcome::kOk, 1), Write("b", 2, 3, Outcome::kOk, 2),
                            Write("x", 3, 4, Outcome::kOk, 3), Cas(2, "c", 5, 6, Outcome::kFail),
                            Read("b", 2, 7, 8)};
  EXPECT_EQ(Check(misled), Verdict::kNotLinearizable);
  EXPECT_EQ(Classify(misled).stale_reads, 1u);
}

TEST(LinearizabilityTest, FindsALostWrite) {
  // b was acknowledged as v2, but every later read sees a (v1) and the final table ends at v1.
  std::vector<Op> h = {Write("a", 0, 1, Outcome::kOk, 1), Write("b", 2, 3, Outcome::kOk, 2),
                       Read("a", 1, 4, 5), Read("a", 1, 6, 7)};
  EXPECT_EQ(Check(h), Verdict::kNotLinearizable);
  FinalKey final{1, {{1, "a"}}};
  Anomalies a = Classify(h, &final);
  EXPECT_EQ(a.lost_writes, 1u);
  EXPECT_EQ(a.stale_reads, 0u);  // the reads are old only with respect to the lost write
  EXPECT_THAT(a.findings.at(0).text, HasSubstr("final version is v1"));
  // Without a final table the reads alone show it.
  EXPECT_EQ(Classify(h).lost_writes, 1u);
  // Overwritten at its own version (two leaders each acknowledged a v2): lost as well.
  std::vector<Op> split = {Write("a", 0, 1, Outcome::kOk, 1), Write("b", 2, 3, Outcome::kOk, 2, 1),
                           Write("c", 2, 3, Outcome::kOk, 2, 2), Read("c", 2, 4, 5)};
  EXPECT_EQ(Check(split), Verdict::kNotLinearizable);
  FinalKey split_final{2, {{1, "a"}, {2, "c"}}};
  EXPECT_EQ(Classify(split, &split_final).lost_writes, 1u);
}

TEST(LinearizabilityTest, FindsADuplicatedWrite) {
  // The CAS was forwarded, applied, the forward failed and the client replayed it: the replay
  // found version 2 and failed, yet the value is there.
  std::vector<Op> replayed = {Write("a", 0, 1, Outcome::kOk, 1), Cas(1, "b", 2, 5, Outcome::kFail),
                              Read("b", 2, 6, 7)};
  EXPECT_EQ(Check(replayed), Verdict::kNotLinearizable);
  Anomalies a = Classify(replayed);
  EXPECT_EQ(a.duplicated_writes, 1u);
  EXPECT_THAT(a.findings.at(0).text, HasSubstr("its write failed"));
  // A write applied twice: the value is at v2 and v3 though one write made it.
  std::vector<Op> twice = {Write("a", 0, 1, Outcome::kOk, 1), Cas(1, "b", 2, 5, Outcome::kOk),
                           Read("b", 3, 6, 7)};
  EXPECT_EQ(Check(twice), Verdict::kNotLinearizable);
  FinalKey final{3, {{1, "a"}, {2, "b"}, {3, "b"}}};
  Anomalies t = Classify(twice, &final);
  EXPECT_EQ(t.duplicated_writes, 1u);
  EXPECT_EQ(t.lost_writes, 0u);
  // A value nobody wrote.
  EXPECT_EQ(Check({Write("a", 0, 1, Outcome::kOk, 1), Read("zzz", 1, 2, 3)}),
            Verdict::kNotLinearizable);
}

TEST(LinearizabilityTest, RealTimeOrderIsRespected) {
  // The read completed before the write was invoked, yet saw it.
  EXPECT_EQ(Check({Read("a", 1, 0, 1), Write("a", 2, 3, Outcome::kOk, 1)}),
            Verdict::kNotLinearizable);
  // A CAS against a version that did not exist yet.
  EXPECT_EQ(Check({Cas(1, "x", 0, 1, Outcome::kOk), Write("a", 2, 3, Outcome::kOk, 1)}),
            Verdict::kNotLinearizable);
  // A failed CAS while the version did match the whole time.
  EXPECT_EQ(Check({Write("a", 0, 1, Outcome::kOk, 1), Cas(1, "x", 2, 3, Outcome::kFail),
                   Read("a", 1, 4, 5)}),
            Verdict::kNotLinearizable);
}

TEST(LinearizabilityTest, KeysAreCheckedApart) {
  std::vector<Op> h = Numbered({Write("a", 0, 1, Outcome::kOk, 1, 0, "k1"),
                                Write("b", 0, 1, Outcome::kOk, 1, 0, "k2"),
                                Read("a", 1, 2, 3, 0, "k1"), Read("", 0, 2, 3, 0, "k2")});
  auto verdicts = CheckLinearizable(h);
  ASSERT_EQ(verdicts.size(), 2u);
  EXPECT_EQ(verdicts[0].key, "k1");
  EXPECT_EQ(verdicts[0].verdict, Verdict::kLinearizable);
  EXPECT_EQ(verdicts[1].key, "k2");
  EXPECT_EQ(verdicts[1].verdict, Verdict::kNotLinearizable);
}

// Random concurrent histories of a real register: each operation takes effect at a random
// point inside its interval (unknown writes sometimes not at all). Every such history is
// linearizable; making one read return the value before an earlier completed write is not.
struct Generated {
  std::vector<Op> ops;
  int stale_target = -1;  // a read that can be made stale (a write completed before it)
};

Generated Generate(uint32_t seed, int n, int clients) {
  std::mt19937 rng(seed);
  struct Pending {
    Op op;
    int64_t point;
    bool applies;
  };
  std::vector<Pending> all;
  std::vector<int64_t> free_at(clients, 0);
  for (int i = 0; i < n; ++i) {
    const int c = static_cast<int>(rng() % clients);
    const int64_t invoke = free_at[c] + 1 + rng() % 5;
    const int64_t complete = invoke + 1 + rng() % 40;
    free_at[c] = complete;
    Op op;
    op.client = c;
    op.key = "k";
    op.invoke = invoke;
    op.complete = complete;
    const int kind = static_cast<int>(rng() % 3);
    op.kind = kind == 0 ? Kind::kRead : kind == 1 ? Kind::kWrite : Kind::kCas;
    op.value = absl::StrCat("c", c, "-", i);
    const bool timed_out = op.kind != Kind::kRead && rng() % 10 == 0;
    op.outcome = timed_out ? Outcome::kUnknown : Outcome::kOk;
    all.push_back(Pending{op, invoke + static_cast<int64_t>(rng() % (complete - invoke)),
                          !timed_out || rng() % 2 == 0});
  }
  std::sort(all.begin(), all.end(),
            [](const Pending& a, const Pending& b) { return a.point < b.point; });
  std::string value;
  int64_t version = 0;
  for (Pending& p : all) {
    Op& op = p.op;
    if (op.kind == Kind::kCas) op.cas = version - static_cast<int64_t>(p.point % 2);
    if (op.kind == Kind::kRead) {
      op.found = version > 0;
      op.value = version > 0 ? value : "";
      op.version = version;
    } else if (!p.applies) {
      op.complete = INT64_MAX;
    } else if (op.kind == Kind::kCas && op.cas != version) {
      if (op.outcome == Outcome::kOk) op.outcome = Outcome::kFail;
    } else {
      value = op.value;
      ++version;
      if (op.outcome == Outcome::kOk) op.version = version;
    }
    if (op.outcome == Outcome::kUnknown) op.complete = INT64_MAX;
  }
  Generated g;
  for (Pending& p : all) g.ops.push_back(p.op);
  std::sort(g.ops.begin(), g.ops.end(),
            [](const Op& a, const Op& b) { return a.invoke < b.invoke; });
  g.ops = Numbered(std::move(g.ops));
  for (size_t i = 0; i < g.ops.size() && g.stale_target < 0; ++i) {
    const Op& r = g.ops[i];
    if (r.kind != Kind::kRead || r.version < 1) continue;
    for (const Op& w : g.ops) {
      if (w.kind != Kind::kRead && w.outcome == Outcome::kOk && w.version == r.version &&
          w.complete < r.invoke) {
        g.stale_target = static_cast<int>(i);
        break;
      }
    }
  }
  return g;
}

TEST(LinearizabilityTest, RandomValidHistoriesPassAndAStaleReadInThemIsFound) {
  int mutated = 0;
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    Generated g = Generate(seed, 120, 5);
    KeyVerdict v = CheckKey(g.ops);
    ASSERT_EQ(v.verdict, Verdict::kLinearizable) << "seed " << seed << ": " << v.explanation;
    const Anomalies clean = Classify(g.ops);
    EXPECT_EQ(clean.stale_reads + clean.lost_writes + clean.duplicated_writes, 0u)
        << "seed " << seed << ": " << (clean.findings.empty() ? "" : clean.findings[0].text);
    if (g.stale_target < 0) continue;
    // The read now sees what was there before the write it should have seen.
    Op& r = g.ops[g.stale_target];
    std::string before;
    for (const Op& w : g.ops) {
      if (w.kind != Kind::kRead && w.outcome == Outcome::kOk && w.version == r.version - 1) {
        before = w.value;
      }
    }
    if (r.version > 1 && before.empty()) continue;  // written by a timed-out write
    r.version -= 1;
    r.found = r.version > 0;
    r.value = before;
    EXPECT_EQ(CheckKey(g.ops).verdict, Verdict::kNotLinearizable) << "seed " << seed;
    // Named a stale read, or (when no other read shows the newer write) a lost write.
    const Anomalies found = Classify(g.ops);
    EXPECT_GE(found.stale_reads + found.lost_writes, 1u) << "seed " << seed;
    ++mutated;
  }
  EXPECT_GT(mutated, 100);
}

TEST(LinearizabilityTest, GivesUpAtTheBudgetAndSaysSo) {
  Generated g = Generate(7, 300, 12);
  CheckOptions tiny;
  tiny.max_states_per_key = 10;
  EXPECT_EQ(CheckKey(g.ops, tiny).verdict, Verdict::kUndecided);
}

TEST(HistoryTest, ParsesTheHarnessFormatAndRefusesBadLines) {
  std::istringstream good(
      R"({"op":"write","key":"k1","value":"c1-1","client":1,"node":"n1","invoke":1,"complete":2,"outcome":"ok","version":1})"
      "\n"
      R"({"op":"cas","key":"k1","cas":1,"value":"c2-1","client":2,"node":"n2","invoke":3,"outcome":"unknown"})"
      "\n\n"
      R"({"op":"read","key":"k1","client":3,"node":"n3","invoke":4,"complete":5,"outcome":"ok","found":true,"value":"c1-1","version":1})"
      "\n"
      R"({"op":"read","key":"k2","invoke":4,"complete":5,"outcome":"ok","found":false})"
      "\n"
      R"({"final":"k1","current":2,"versions":{"1":"c1-1","2":"c2-1"}})"
      "\n");
  auto h = ParseHistory(good);
  ASSERT_TRUE(h.ok()) << h.status();
  ASSERT_EQ(h->ops.size(), 4u);
  EXPECT_EQ(h->ops[1].kind, Kind::kCas);
  EXPECT_EQ(h->ops[1].complete, INT64_MAX);
  EXPECT_EQ(h->ops[3].version, 0);
  EXPECT_EQ(h->finals.at("k1").versions.at(2), "c2-1");
  EXPECT_EQ(CheckLinearizable(h->ops)[0].verdict, Verdict::kLinearizable);
  EXPECT_THAT(Describe(h->ops[0]), HasSubstr("c1@n1 write k1 'c1-1' -> ok v1"));

  for (const char* bad : {
           "not json",
           "[1]",
           R"({"op":"delete","key":"k","invoke":1,"complete":2,"outcome":"ok"})",
           R"({"op":"write","key":"k","value":"v","invoke":1,"complete":2,"outcome":"maybe"})",
           R"({"op":"write","key":"k","value":"v","invoke":3,"complete":2,"outcome":"ok"})",
           R"({"op":"write","key":"k","value":"v","invoke":1,"outcome":"ok"})",
           R"({"op":"read","key":"k","invoke":1,"complete":2,"outcome":"ok"})",
           R"({"op":"read","key":"k","invoke":1,"complete":2,"outcome":"fail"})",
           R"({"op":"cas","key":"k","value":"v","invoke":1,"complete":2,"outcome":"ok"})",
           R"({"final":"k","current":1,"versions":{"2":"v"}})",
       }) {
    std::istringstream in(bad);
    EXPECT_FALSE(ParseHistory(in).ok()) << bad;
  }
  // Values identify writes: a second write of one value to one key is refused.
  std::istringstream twice(
      R"({"op":"write","key":"k","value":"v","invoke":1,"complete":2,"outcome":"ok"})"
      "\n"
      R"({"op":"write","key":"k","value":"v","invoke":3,"complete":4,"outcome":"ok"})");
  EXPECT_FALSE(ParseHistory(twice).ok());
  // Bounded: a line longer than the limit is refused before it is parsed.
  HistoryLimits limits;
  limits.max_line = 64;
  std::istringstream longline(std::string(100, ' ') + "{}");
  EXPECT_FALSE(ParseHistory(longline, limits).ok());
}

}  // namespace
}  // namespace strongroom::faults
