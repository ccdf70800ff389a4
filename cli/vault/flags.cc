#include "cli/vault/flags.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/duration.h"
#include "base/strings.h"

namespace strongroom::vault {

void FlagSet::String(std::string_view name, std::string* target) {
  flags_[std::string(name)] = {Kind::kString, target};
}
void FlagSet::Strings(std::string_view name, std::vector<std::string>* target, bool split_commas) {
  flags_[std::string(name)] = {split_commas ? Kind::kStrings : Kind::kStringsNoSplit, target};
}
void FlagSet::Bool(std::string_view name, bool* target) {
  flags_[std::string(name)] = {Kind::kBool, target};
}
void FlagSet::Int(std::string_view name, int64_t* target) {
  flags_[std::string(name)] = {Kind::kInt, target};
}
void FlagSet::Duration(std::string_view name, int64_t* seconds) {
  flags_[std::string(name)] = {Kind::kDuration, seconds};
}
void FlagSet::Map(std::string_view name, std::map<std::string, std::string>* target) {
  flags_[std::string(name)] = {Kind::kMap, target};
}

bool FlagSet::Given(std::string_view name) const {
  return std::find(given_.begin(), given_.end(), name) != given_.end();
}

absl::Status FlagSet::Set(std::string_view name, const Flag& flag, std::string_view value) {
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid value \"", Av(value), "\" for flag -", Av(name), ": ", Av(why)));
  };
  switch (flag.kind) {
    case Kind::kString:
      *static_cast<std::string*>(flag.target) = std::string(value);
      break;
    case Kind::kStrings:
    case Kind::kStringsNoSplit: {
      auto* out = static_cast<std::vector<std::string>*>(flag.target);
      if (flag.kind == Kind::kStringsNoSplit) {
        out->emplace_back(value);
        break;
      }
      for (absl::string_view part : absl::StrSplit(Av(value), ',', absl::SkipWhitespace())) {
        out->emplace_back(absl::StripAsciiWhitespace(part));
      }
      break;
    }
    case Kind::kBool:
      if (!ParseGoBool(value, static_cast<bool*>(flag.target))) return invalid("parse error");
      break;
    case Kind::kInt:
      if (!absl::SimpleAtoi(Av(value), static_cast<int64_t*>(flag.target))) {
        return invalid("parse error");
      }
      break;
    case Kind::kDuration:
      if (absl::Status s = ParseDurationSeconds(value, static_cast<int64_t*>(flag.target));
          !s.ok()) {
        return invalid(Sv(s.message()));
      }
      break;
    case Kind::kMap: {
      size_t eq = value.find('=');
      if (eq == std::string_view::npos || eq == 0) return invalid("expected KEY=VALUE");
      (*static_cast<std::map<std::string, std::string>*>(
          flag.target))[std::string(value.substr(0, eq))] = std::string(value.substr(eq + 1));
      break;
    }
  }
  given_.emplace_back(name);
  return absl::OkStatus();
}

absl::Status FlagSet::Parse(const std::vector<std::string>& args) {
  size_t i = 0;
  for (; i < args.size(); ++i) {
    std::string_view a = args[i];
    if (a.size() < 2 || a[0] != '-') break;  // "-" (stdin) and positional arguments
    if (a == "--") {
      ++i;
      break;
    }
    a.remove_prefix(a[1] == '-' ? 2 : 1);
    if (a.empty() || a[0] == '-' || a[0] == '=') {
      return absl::InvalidArgumentError(absl::StrCat("bad flag syntax: ", args[i]));
    }
    size_t eq = a.find('=');
    std::string_view name = a.substr(0, eq);
    auto it = flags_.find(name);
    if (it == flags_.end()) {
      if (name == "help" || name == "h") return absl::CancelledError("help requested");
      return absl::InvalidArgumentError(absl::StrCat("flag provided but not defined: -", Av(name)));
    }
    std::string_view value;
    if (eq != std::string_view::npos) {
      value = a.substr(eq + 1);
    } else if (it->second.kind == Kind::kBool) {
      value = "true";
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("flag needs an argument: -", Av(name)));
    }
    if (absl::Status s = Set(name, it->second, value); !s.ok()) return s;
  }
  args_.assign(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
  return absl::OkStatus();
}

absl::Status ParseDurationSeconds(std::string_view text, int64_t* seconds) {
  if (text.empty()) return absl::InvalidArgumentError("an empty duration");
  absl::StatusOr<int64_t> parsed = ::strongroom::ParseDurationSeconds(text);
  if (!parsed.ok()) return parsed.status();
  *seconds = *parsed;
  return absl::OkStatus();
}

}  // namespace strongroom::vault
