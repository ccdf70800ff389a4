#include "policy/param_value.h"

#include <map>

namespace strongroom::policy {

ParamValue::ParamValue() = default;
ParamValue::ParamValue(const ParamValue&) = default;
ParamValue::ParamValue(ParamValue&&) noexcept = default;
ParamValue& ParamValue::operator=(const ParamValue&) = default;
ParamValue& ParamValue::operator=(ParamValue&&) noexcept = default;
ParamValue::~ParamValue() = default;

ParamValue ParamValue::Null() { return ParamValue(); }

ParamValue ParamValue::Bool(bool b) {
  ParamValue v;
  v.kind = Kind::kBool;
  v.boolean = b;
  return v;
}

ParamValue ParamValue::Number(double n) {
  ParamValue v;
  v.kind = Kind::kNumber;
  v.number = n;
  return v;
}

ParamValue ParamValue::String(std::string s) {
  ParamValue v;
  v.kind = Kind::kString;
  v.str = std::move(s);
  return v;
}

ParamValue ParamValue::List(std::vector<ParamValue> items) {
  ParamValue v;
  v.kind = Kind::kList;
  v.list = std::move(items);
  return v;
}

ParamValue ParamValue::Object(std::vector<std::pair<std::string, ParamValue>> members) {
  ParamValue v;
  v.kind = Kind::kObject;
  v.object = std::move(members);
  return v;
}

ParamValue FromHcl(const hcl::Value& value) {
  switch (value.kind) {
    case hcl::Value::Kind::kString:
      return ParamValue::String(value.str);
    case hcl::Value::Kind::kNumber:
      return ParamValue::Number(value.number);
    case hcl::Value::Kind::kBool:
      return ParamValue::Bool(value.boolean);
    case hcl::Value::Kind::kList: {
      std::vector<ParamValue> items;
      items.reserve(value.list.size());
      for (const hcl::Value& item : value.list) items.push_back(FromHcl(item));
      return ParamValue::List(std::move(items));
    }
    case hcl::Value::Kind::kObject: {
      std::vector<std::pair<std::string, ParamValue>> members;
      members.reserve(value.object.size());
      for (const auto& [key, item] : value.object) members.emplace_back(key, FromHcl(item));
      return ParamValue::Object(std::move(members));
    }
  }
  return ParamValue();
}

namespace {

// Map view of an object with JSON's "last duplicate wins".
std::map<std::string_view, const ParamValue*> AsMap(const ParamValue& v) {
  std::map<std::string_view, const ParamValue*> out;
  for (const auto& [key, item] : v.object) out[key] = &item;
  return out;
}

}  // namespace

bool DeepEqual(const ParamValue& a, const ParamValue& b) {
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case ParamValue::Kind::kNull:
      return true;
    case ParamValue::Kind::kBool:
      return a.boolean == b.boolean;
    case ParamValue::Kind::kNumber:
      return a.number == b.number;
    case ParamValue::Kind::kString:
      return a.str == b.str;
    case ParamValue::Kind::kList:
      if (a.list.size() != b.list.size()) return false;
      for (size_t i = 0; i < a.list.size(); ++i) {
        if (!DeepEqual(a.list[i], b.list[i])) return false;
      }
      return true;
    case ParamValue::Kind::kObject: {
      const auto ma = AsMap(a);
      const auto mb = AsMap(b);
      if (ma.size() != mb.size()) return false;
      for (const auto& [key, item] : ma) {
        const auto it = mb.find(key);
        if (it == mb.end() || !DeepEqual(*item, *it->second)) return false;
      }
      return true;
    }
  }
  return false;
}

bool GlobMatch(std::string_view pattern, std::string_view value) {
  if (pattern.size() < 2) return pattern == value;
  const bool leading = pattern.front() == '*';
  const bool trailing = pattern.back() == '*';
  if (leading && trailing) {
    return value.find(pattern.substr(1, pattern.size() - 2)) != std::string_view::npos;
  }
  if (leading) return value.ends_with(pattern.substr(1));
  if (trailing) return value.starts_with(pattern.substr(0, pattern.size() - 1));
  return pattern == value;
}

bool ValueInList(const ParamValue& value, const std::vector<ParamValue>& list) {
  if (list.empty()) return true;
  for (const ParamValue& entry : list) {
    if (entry.kind == ParamValue::Kind::kString && value.kind == ParamValue::Kind::kString) {
      if (GlobMatch(entry.str, value.str)) return true;
    } else if (DeepEqual(entry, value)) {
      return true;
    }
  }
  return false;
}

}  // namespace strongroom::policy
