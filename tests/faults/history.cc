#include "tests/faults/history.h"

#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace strongroom::faults {
namespace {

using nlohmann::json;

absl::Status LineError(int64_t line, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("history line ", line, ": ", what));
}

// The string at `name`, or `fallback` when absent; an error when present but not a short string.
absl::StatusOr<std::string> StringField(const json& o, const char* name, int64_t line,
                                        const HistoryLimits& limits, bool required,
                                        std::string fallback = "") {
  auto it = o.find(name);
  if (it == o.end() || it->is_null()) {
    if (required) return LineError(line, absl::StrCat("\"", name, "\" is missing"));
    return fallback;
  }
  if (!it->is_string()) return LineError(line, absl::StrCat("\"", name, "\" must be a string"));
  const std::string& s = it->get_ref<const std::string&>();
  if (s.size() > limits.max_string) {
    return LineError(line, absl::StrCat("\"", name, "\" is longer than ", limits.max_string));
  }
  return s;
}

absl::StatusOr<int64_t> IntField(const json& o, const char* name, int64_t line, bool required,
                                 int64_t fallback, int64_t min, int64_t max) {
  auto it = o.find(name);
  if (it == o.end() || it->is_null()) {
    if (required) return LineError(line, absl::StrCat("\"", name, "\" is missing"));
    return fallback;
  }
  if (!it->is_number_integer()) {
    return LineError(line, absl::StrCat("\"", name, "\" must be an integer"));
  }
  const int64_t v =
      it->is_number_unsigned() && it->get<uint64_t>() > INT64_MAX ? INT64_MAX : it->get<int64_t>();
  if (v < min || v > max) return LineError(line, absl::StrCat("\"", name, "\" is out of range"));
  return v;
}

absl::Status ParseFinal(const json& o, int64_t line, const HistoryLimits& limits,
                        History* history) {
  auto key = StringField(o, "final", line, limits, true);
  if (!key.ok()) return key.status();
  if (history->finals.count(*key) != 0) return LineError(line, "a second final line for the key");
  FinalKey f;
  auto current = IntField(o, "current", line, true, 0, 0, limits.max_version);
  if (!current.ok()) return current.status();
  f.current = *current;
  auto versions = o.find("versions");
  if (versions != o.end()) {
    if (!versions->is_object()) return LineError(line, "\"versions\" must be an object");
    if (versions->size() > limits.max_ops) return LineError(line, "too many versions");
    for (const auto& [n, value] : versions->items()) {
      int64_t version = 0;
      if (!absl::SimpleAtoi(n, &version) || version < 1 || version > f.current) {
        return LineError(line, "version numbers must be 1 .. current");
      }
      if (!value.is_string() || value.get_ref<const std::string&>().size() > limits.max_string) {
        return LineError(line, "a version's value must be a short string");
      }
      f.versions[version] = value.get<std::string>();
    }
  }
  history->finals.emplace(std::move(*key), std::move(f));
  return absl::OkStatus();
}

absl::StatusOr<Op> ParseOp(const json& o, int64_t line, const HistoryLimits& limits) {
  Op op;
  op.index = line;
  auto kind = StringField(o, "op", line, limits, true);
  if (!kind.ok()) return kind.status();
  if (*kind == "read") {
    op.kind = Kind::kRead;
  } else if (*kind == "write") {
    op.kind = Kind::kWrite;
  } else if (*kind == "cas") {
    op.kind = Kind::kCas;
  } else {
    return LineError(line, "\"op\" must be read, write or cas");
  }
  auto outcome = StringField(o, "outcome", line, limits, true);
  if (!outcome.ok()) return outcome.status();
  if (*outcome == "ok") {
    op.outcome = Outcome::kOk;
  } else if (*outcome == "fail") {
    op.outcome = Outcome::kFail;
  } else if (*outcome == "unknown") {
    op.outcome = Outcome::kUnknown;
  } else {
    return LineError(line, "\"outcome\" must be ok, fail or unknown");
  }
  auto key = StringField(o, "key", line, limits, true);
  auto node = StringField(o, "node", line, limits, false);
  auto detail = StringField(o, "detail", line, limits, false);
  auto client = IntField(o, "client", line, false, 0, 0, 1 << 20);
  auto invoke = IntField(o, "invoke", line, true, 0, 0, INT64_MAX);
  auto complete =
      IntField(o, "complete", line, op.outcome != Outcome::kUnknown, INT64_MAX, 0, INT64_MAX);
  auto version = IntField(o, "version", line, false, -1, -1, limits.max_version);
  for (const absl::Status& s : {key.status(), node.status(), detail.status(), client.status(),
                                invoke.status(), complete.status(), version.status()}) {
    if (!s.ok()) return s;
  }
  op.key = std::move(*key);
  op.node = std::move(*node);
  op.detail = std::move(*detail);
  op.client = *client;
  op.invoke = *invoke;
  op.complete = op.outcome == Outcome::kUnknown ? INT64_MAX : *complete;
  op.version = *version;
  if (op.complete < op.invoke) return LineError(line, "completed before it was invoked");
  if (op.kind == Kind::kRead) {
    if (op.outcome == Outcome::kFail) {
      return LineError(line, "a failed read has no place in a history (leave it out)");
    }
    if (op.outcome == Outcome::kOk) {
      auto found = o.find("found");
      if (found == o.end() || !found->is_boolean()) {
        return LineError(line, "an ok read needs \"found\" (true or false)");
      }
      op.found = found->get<bool>();
      if (op.found) {
        auto value = StringField(o, "value", line, limits, true);
        if (!value.ok()) return value.status();
        op.value = std::move(*value);
        if (op.version == 0) return LineError(line, "a found value has a version of 1 or more");
      } else if (op.version > 0) {
        return LineError(line, "a read that found nothing saw version 0");
      } else {
        op.version = 0;
      }
    }
  } else {
    auto value = StringField(o, "value", line, limits, true);
    if (!value.ok()) return value.status();
    op.value = std::move(*value);
    if (op.kind == Kind::kCas) {
      auto cas = IntField(o, "cas", line, true, 0, 0, limits.max_version);
      if (!cas.ok()) return cas.status();
      op.cas = *cas;
    }
    if (op.outcome == Outcome::kOk && op.version == 0) {
      return LineError(line, "a write makes version 1 or more");
    }
  }
  return op;
}

}  // namespace

absl::StatusOr<History> ParseHistory(std::istream& in, const HistoryLimits& limits) {
  History history;
  std::set<std::pair<std::string, std::string>> written;  // (key, value)
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.size() > limits.max_line) return LineError(number, "line too long");
    if (line.empty()) continue;
    json o = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (o.is_discarded() || !o.is_object()) return LineError(number, "not a JSON object");
    if (o.contains("final")) {
      if (absl::Status s = ParseFinal(o, number, limits, &history); !s.ok()) return s;
      continue;
    }
    if (history.ops.size() >= limits.max_ops) return LineError(number, "too many operations");
    auto op = ParseOp(o, number, limits);
    if (!op.ok()) return op.status();
    if (op->kind != Kind::kRead && !written.emplace(op->key, op->value).second) {
      return LineError(number, absl::StrCat("a second write of \"", op->value, "\" to \"", op->key,
                                            "\" (values must identify writes)"));
    }
    history.ops.push_back(std::move(*op));
  }
  if (in.bad()) return absl::DataLossError("reading the history failed");
  return history;
}

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kRead:
      return "read";
    case Kind::kWrite:
      return "write";
    case Kind::kCas:
      return "cas";
  }
  return "?";
}

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kFail:
      return "fail";
    case Outcome::kUnknown:
      return "unknown";
  }
  return "?";
}

std::string Describe(const Op& op) {
  std::string s = absl::StrCat("#", op.index, " c", op.client, "@", op.node, " ", KindName(op.kind),
                               " ", op.key);
  if (op.kind == Kind::kCas) absl::StrAppend(&s, " cas=", op.cas);
  if (op.kind != Kind::kRead) absl::StrAppend(&s, " '", op.value, "'");
  absl::StrAppend(&s, " -> ", OutcomeName(op.outcome));
  if (op.outcome == Outcome::kOk) {
    if (op.kind == Kind::kRead) {
      absl::StrAppend(&s, op.found ? absl::StrCat(" '", op.value, "'") : std::string(" none"));
    }
    if (op.version >= 0) absl::StrAppend(&s, " v", op.version);
  }
  if (!op.detail.empty()) absl::StrAppend(&s, " (", op.detail, ")");
  absl::StrAppend(&s, absl::StrFormat(" [%.6fs, ", static_cast<double>(op.invoke) / 1e9));
  absl::StrAppend(&s, op.complete == INT64_MAX
                          ? std::string("open]")
                          : absl::StrFormat("%.6fs]", static_cast<double>(op.complete) / 1e9));
  return s;
}

}  // namespace strongroom::faults
