// The values that allowed_parameters / denied_parameters list, and the values of a request's
// data that are checked against them (vault-api.md section 7.2 step 4).
//
// One recursive type serves both sides so that comparison is structural: the broker converts its
// parsed JSON body into ParamValue, the policy parser converts hcl::Value. (A canonical-JSON
// string for lists and objects would make equality depend on both sides formatting numbers,
// escapes and key order identically; a tree does not.)
//
// The policy library must not depend on Boost, which is why this is not boost::json::value.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/hcl.h"

namespace strongroom::policy {

struct ParamValue {
  enum class Kind { kNull, kBool, kNumber, kString, kList, kObject };

  // Out of line for the same reason as hcl::Value: clang with libstdc++ in C++20 mode rejects a
  // recursive std::pair member while the implicit constructor's properties are being decided.
  ParamValue();
  ParamValue(const ParamValue&);
  ParamValue(ParamValue&&) noexcept;
  ParamValue& operator=(const ParamValue&);
  ParamValue& operator=(ParamValue&&) noexcept;
  ~ParamValue();

  static ParamValue Null();
  static ParamValue Bool(bool b);
  static ParamValue Number(double n);
  static ParamValue String(std::string s);
  static ParamValue List(std::vector<ParamValue> items);
  static ParamValue Object(std::vector<std::pair<std::string, ParamValue>> members);

  Kind kind = Kind::kNull;
  bool boolean = false;                                    // kBool
  double number = 0;                                       // kNumber
  std::string str;                                         // kString
  std::vector<ParamValue> list;                            // kList
  std::vector<std::pair<std::string, ParamValue>> object;  // kObject; a repeated key: last wins
};

// The request body as the ACL sees it: top-level keys in request order with their values.
using ParamEntry = std::pair<std::string, ParamValue>;

// Converts a value from a parsed policy. HCL has no null, so the result never is one.
ParamValue FromHcl(const hcl::Value& value);

// Structural equality: same kind and same contents; numbers by numeric value; objects as maps
// (member order is irrelevant, a repeated key counts once with its last value).
bool DeepEqual(const ParamValue& a, const ParamValue& b);

// Vault's glob for parameter values: a pattern of at least two characters may start and/or end
// with '*' ("foo-*", "*-bar", "*mid*"); anything else, including "*" alone, matches only itself.
bool GlobMatch(std::string_view pattern, std::string_view value);

// Whether `value` from a request matches one entry of a policy's parameter list: two strings
// compare with GlobMatch, everything else with DeepEqual. An empty list matches every value.
bool ValueInList(const ParamValue& value, const std::vector<ParamValue>& list);

}  // namespace strongroom::policy
