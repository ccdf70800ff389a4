// Command-line flags as the `vault` CLI reads them (Go's flag package): `-name=value`,
// `-name value` (not for booleans), `--name` as `-name`, a boolean alone means true; parsing
// stops at the first argument that is not a flag, or after `--`. Flags come before positional
// arguments. Errors are Go's texts ("flag provided but not defined: -x").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace strongroom::vault {

class FlagSet {
 public:
  void String(std::string_view name, std::string* target);
  // Repeatable: each occurrence appends (Vault's StringSliceVar also splits on commas when
  // `split_commas`).
  void Strings(std::string_view name, std::vector<std::string>* target, bool split_commas = true);
  void Bool(std::string_view name, bool* target);
  void Int(std::string_view name, int64_t* target);
  // Vault's DurationVar: "30s", "1h", or a number of seconds. Stored in seconds.
  void Duration(std::string_view name, int64_t* seconds);
  // KEY=VALUE, repeatable (token metadata).
  void Map(std::string_view name, std::map<std::string, std::string>* target);

  // Parses args; the rest (positional arguments) go to args().
  absl::Status Parse(const std::vector<std::string>& args);
  const std::vector<std::string>& args() const { return args_; }
  // Was the flag given (for flags whose default differs from "not set")?
  bool Given(std::string_view name) const;

 private:
  enum class Kind { kString, kStrings, kStringsNoSplit, kBool, kInt, kDuration, kMap };
  struct Flag {
    Kind kind;
    void* target;
  };
  absl::Status Set(std::string_view name, const Flag& flag, std::string_view value);
  std::map<std::string, Flag, std::less<>> flags_;
  std::vector<std::string> given_;
  std::vector<std::string> args_;
};

// A duration flag: base/duration.h's parser (Vault's: "1h30m", "90s", "7d", or a bare number
// of seconds), in whole seconds; empty, negative and out-of-range values are refused.
absl::Status ParseDurationSeconds(std::string_view text, int64_t* seconds);

}  // namespace strongroom::vault
