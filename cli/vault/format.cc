#include "cli/vault/format.h"

#include <algorithm>
#include <charconv>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/strings.h"

namespace strongroom::vault {
namespace {

size_t Runes(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::vector<std::string> Cells(std::string_view row, std::string_view delim) {
  std::vector<std::string> cells;
  for (absl::string_view c : absl::StrSplit(Av(row), Av(delim))) {
    std::string cell = EscapeControls(Sv(absl::StripAsciiWhitespace(c)));
    cells.push_back(cell.empty() ? "n/a" : cell);
  }
  return cells;
}

std::vector<std::pair<std::string, const json::value*>> Sorted(const json::object& o) {
  std::vector<std::pair<std::string, const json::value*>> out;
  out.reserve(o.size());
  for (const auto& kv : o) out.emplace_back(std::string(kv.key()), &kv.value());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

std::string Double(double d) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, r.ptr);
}

std::string Scalar(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "<nil>";
    case json::kind::bool_:
      return v.as_bool() ? "true" : "false";
    case json::kind::int64:
      return absl::StrCat(v.as_int64());
    case json::kind::uint64:
      return absl::StrCat(v.as_uint64());
    case json::kind::double_:
      return Double(v.as_double());
    case json::kind::string:
      return std::string(v.as_string());
    default:
      return "";
  }
}

// Go's encoding/json string escaping (with its HTML-safe default).
void JsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out->append("\\\"");
        continue;
      case '\\':
        out->append("\\\\");
        continue;
      case '\n':
        out->append("\\n");
        continue;
      case '\r':
        out->append("\\r");
        continue;
      case '\t':
        out->append("\\t");
        continue;
      case '<':
      case '>':
      case '&':
        absl::StrAppend(out, "\\u00", absl::Hex(c, absl::kZeroPad2));
        continue;
      default:
        break;
    }
    if (c < 0x20) {
      absl::StrAppend(out, "\\u00", absl::Hex(c, absl::kZeroPad2));
    } else if (c == 0xE2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
               (static_cast<unsigned char>(s[i + 2]) == 0xA8 ||
                static_cast<unsigned char>(s[i + 2]) == 0xA9)) {
      absl::StrAppend(out, static_cast<unsigned char>(s[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029");
      i += 2;
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

// Output built piece by piece; with a FILE it is written out every 64 KiB, so a large answer
// (up to the client's 32 MiB, indented up to 64 levels deep) never sits in memory whole.
class Sink {
 public:
  explicit Sink(FILE* file = nullptr) : file_(file) {}
  ~Sink() { Flush(); }
  void Append(std::string_view s) {
    buf_.append(s);
    if (file_ != nullptr && buf_.size() >= 64 * 1024) Flush();
  }
  void Flush() {
    if (file_ != nullptr && !buf_.empty()) {
      std::fwrite(buf_.data(), 1, buf_.size(), file_);
      buf_.clear();
    }
  }
  std::string Take() { return std::move(buf_); }

 private:
  FILE* file_;
  std::string buf_;
};

// Objects print sorted (as Go prints a map) unless `ordered` (a Go struct: the JsonOrder the
// caller gave); the top object's `ordered_children` are structs too.
void JsonIndentTo(const json::value& v, int depth, bool ordered,
                  const std::vector<std::string_view>* ordered_children, Sink* out) {
  const std::string pad(static_cast<size_t>(depth + 1) * 2, ' ');
  const std::string close(static_cast<size_t>(depth) * 2, ' ');
  switch (v.kind()) {
    case json::kind::object: {
      const json::object& o = v.as_object();
      if (o.empty()) return out->Append("{}");
      std::vector<std::pair<std::string, const json::value*>> fields;
      if (ordered) {
        for (const auto& kv : o) fields.emplace_back(std::string(kv.key()), &kv.value());
      } else {
        fields = Sorted(o);
      }
      out->Append("{\n");
      for (size_t i = 0; i < fields.size(); ++i) {
        std::string key;
        JsonString(fields[i].first, &key);
        out->Append(pad);
        out->Append(key);
        out->Append(": ");
        const bool child_ordered = ordered_children != nullptr &&
                                   std::find(ordered_children->begin(), ordered_children->end(),
                                             fields[i].first) != ordered_children->end();
        JsonIndentTo(*fields[i].second, depth + 1, child_ordered, nullptr, out);
        out->Append(i + 1 < fields.size() ? ",\n" : "\n");
      }
      out->Append(close);
      return out->Append("}");
    }
    case json::kind::array: {
      const json::array& a = v.as_array();
      if (a.empty()) return out->Append("[]");
      out->Append("[\n");
      for (size_t i = 0; i < a.size(); ++i) {
        out->Append(pad);
        JsonIndentTo(a[i], depth + 1, false, nullptr, out);
        out->Append(i + 1 < a.size() ? ",\n" : "\n");
      }
      out->Append(close);
      return out->Append("]");
    }
    case json::kind::string: {
      std::string text;
      JsonString(v.as_string(), &text);
      return out->Append(text);
    }
    case json::kind::null:
      return out->Append("null");
    default:
      return out->Append(Scalar(v));
  }
}

bool YamlPlain(std::string_view s) {
  if (s.empty() || s.size() > 1024) return false;
  std::string lower = absl::AsciiStrToLower(Av(s));
  for (std::string_view word : {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"}) {
    if (lower == word) return false;
  }
  double d;
  if (absl::SimpleAtod(Av(s), &d) || lower == ".inf" || lower == "-.inf" || lower == ".nan") {
    return false;
  }
  if (std::string_view("-?:,[]{}#&*!|>'\"%@` ").find(s.front()) != std::string_view::npos) {
    return false;
  }
  if (s.back() == ' ' || s.back() == ':') return false;
  if (absl::StrContains(Av(s), ": ") || absl::StrContains(Av(s), " #")) return false;
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

std::string YamlScalar(const json::value& v) {
  if (v.is_null()) return "null";
  if (!v.is_string()) return Scalar(v);
  std::string_view s = v.as_string();
  if (YamlPlain(s)) return std::string(s);
  std::string out;
  JsonString(s, &out);  // a YAML double-quoted scalar accepts JSON's escapes
  return out;
}

// `lead` stands in for the first line's indentation ("- " for an item of a sequence).
void YamlTo(const json::value& v, int indent, std::string_view lead, Sink* out) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  bool first = true;
  auto prefix = [&]() -> std::string_view {
    std::string_view p = first ? lead : std::string_view(pad);
    first = false;
    return p;
  };
  if (v.is_object()) {
    for (const auto& [key, value] : Sorted(v.as_object())) {
      out->Append(prefix());
      out->Append(YamlScalar(json::value(key)));
      out->Append(":");
      if (value->is_object() && !value->as_object().empty()) {
        out->Append("\n");
        const std::string inner(static_cast<size_t>(indent) + 2, ' ');
        YamlTo(*value, indent + 2, inner, out);
      } else if (value->is_array() && !value->as_array().empty()) {
        out->Append("\n");
        YamlTo(*value, indent, pad, out);  // yaml.v2: a sequence under a key is not indented
      } else {
        out->Append(" ");
        out->Append(value->is_object() ? "{}" : value->is_array() ? "[]" : YamlScalar(*value));
        out->Append("\n");
      }
    }
    return;
  }
  if (v.is_array()) {
    for (const json::value& e : v.as_array()) {
      const std::string item = absl::StrCat(Av(prefix()), "- ");
      if ((e.is_object() && !e.as_object().empty()) || (e.is_array() && !e.as_array().empty())) {
        YamlTo(e, indent + 2, item, out);
      } else {
        out->Append(item);
        out->Append(e.is_object() ? "{}" : e.is_array() ? "[]" : YamlScalar(e));
        out->Append("\n");
      }
    }
    return;
  }
  out->Append(prefix());
  out->Append(YamlScalar(v));
  out->Append("\n");
}

std::string GoQuotedList(const json::value& v) {
  std::vector<std::string> items;
  if (v.is_array()) {
    for (const json::value& e : v.as_array()) {
      std::string q;
      JsonString(e.is_string() ? std::string_view(e.as_string()) : "", &q);
      items.push_back(std::move(q));
    }
  }
  return absl::StrCat("[", absl::StrJoin(items, " "), "]");
}

}  // namespace

absl::StatusOr<Format> ParseFormat(std::string_view name) {
  if (name == "table" || name.empty()) return Format::kTable;
  if (name == "json") return Format::kJson;
  if (name == "yaml" || name == "yml") return Format::kYaml;
  return absl::InvalidArgumentError(absl::StrCat("Invalid output format: ", Av(name)));
}

std::string Columns(const std::vector<std::string>& rows, std::string_view delim) {
  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> widths;
  for (const std::string& row : rows) {
    cells.push_back(Cells(row, delim));
    for (size_t i = 0; i < cells.back().size(); ++i) {
      if (widths.size() <= i) widths.push_back(0);
      widths[i] = std::max(widths[i], Runes(cells.back()[i]));
    }
  }
  std::string out;
  for (const auto& line : cells) {
    for (size_t i = 0; i < line.size(); ++i) {
      out.append(line[i]);
      if (i + 1 < line.size()) out.append(widths[i] - Runes(line[i]) + 4, ' ');
    }
    out.push_back('\n');
  }
  return out;
}

std::string Table(const std::vector<std::string>& rows, std::string_view delim) {
  if (rows.empty()) return "";
  std::vector<std::string> all;
  all.push_back(rows[0]);
  std::vector<std::string> underline;
  for (absl::string_view h : absl::StrSplit(Av(rows[0]), Av(delim))) {
    underline.emplace_back(absl::StripAsciiWhitespace(h).size(), '-');
  }
  all.push_back(absl::StrJoin(underline, Av(delim)));
  all.insert(all.end(), rows.begin() + 1, rows.end());
  return Columns(all, delim);
}

std::string GoValue(const json::value& v) {
  if (v.is_array()) {
    std::vector<std::string> items;
    for (const json::value& e : v.as_array()) items.push_back(GoValue(e));
    return absl::StrCat("[", absl::StrJoin(items, " "), "]");
  }
  if (v.is_object()) {
    std::vector<std::string> items;
    for (const auto& [k, e] : Sorted(v.as_object()))
      items.push_back(absl::StrCat(k, ":", GoValue(*e)));
    return absl::StrCat("map[", absl::StrJoin(items, " "), "]");
  }
  return Scalar(v);
}

std::string HumanDuration(int64_t seconds) {
  if (seconds == 0) return "0s";
  std::string s;
  uint64_t u =
      seconds < 0 ? static_cast<uint64_t>(-(seconds + 1)) + 1 : static_cast<uint64_t>(seconds);
  if (seconds < 0) s = "-";
  const uint64_t h = u / 3600, m = (u % 3600) / 60, sec = u % 60;
  if (h > 0)
    absl::StrAppend(&s, h, "h", m, "m", sec, "s");
  else if (m > 0)
    absl::StrAppend(&s, m, "m", sec, "s");
  else
    absl::StrAppend(&s, sec, "s");
  if (absl::EndsWith(s, "m0s")) s.resize(s.size() - 2);
  if (size_t idx = s.find("h0m"); idx != std::string::npos) s.erase(idx + 1, 2);
  return s;
}

bool LooksLikeDuration(std::string_view k) {
  return k == "period" || absl::EndsWith(Av(k), "_period") || k == "ttl" ||
         absl::EndsWith(Av(k), "_ttl") || k == "duration" || absl::EndsWith(Av(k), "_duration") ||
         k == "lease_max" || k == "ttl_max";
}

std::string CellValue(std::string_view key, const json::value& v) {
  if (LooksLikeDuration(key)) {
    if (v.is_int64()) return HumanDuration(v.as_int64());
    if (v.is_uint64() && v.as_uint64() <= INT64_MAX) {
      return HumanDuration(static_cast<int64_t>(v.as_uint64()));
    }
  }
  return GoValue(v);
}

std::string JsonIndent(const json::value& v, const JsonOrder& order) {
  Sink out;
  JsonIndentTo(v, 0, order.top, &order.children, &out);
  return out.Take();
}

void WriteJson(FILE* f, const json::value& v, const JsonOrder& order) {
  Sink out(f);
  JsonIndentTo(v, 0, order.top, &order.children, &out);
  out.Append("\n");
}

std::string Yaml(const json::value& v) {
  Sink out;
  YamlTo(v, 0, "", &out);
  std::string text = out.Take();
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

void WriteYaml(FILE* f, const json::value& v) {
  Sink out(f);
  YamlTo(v, 0, "", &out);
}

std::string EscapeControls(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if ((b < 0x20 && b != '\n' && b != '\t') || b == 0x7f) {
      absl::StrAppend(&out, "\\x", absl::Hex(b, absl::kZeroPad2));
    } else if (b == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(s[i + 1]) <= 0x9F) {
      absl::StrAppend(&out, "\\u00",
                      absl::Hex(static_cast<unsigned char>(s[i + 1]), absl::kZeroPad2));
      ++i;
    } else {
      out.push_back(static_cast<char>(b));
    }
  }
  return out;
}

json::value SecretValue(const client::Secret& s) {
  json::object o;
  o["request_id"] = s.request_id;
  o["lease_id"] = s.lease_id;
  o["lease_duration"] = s.lease_duration;
  o["renewable"] = s.renewable;
  o["data"] = s.data;
  if (s.warnings.empty()) {
    o["warnings"] = nullptr;
  } else {
    json::array w;
    for (const std::string& x : s.warnings) w.emplace_back(x);
    o["warnings"] = std::move(w);
  }
  if (auto it = s.raw.find("auth"); it != s.raw.end() && it->value().is_object()) {
    const json::object& a = it->value().as_object();
    json::object auth;
    for (std::string_view k :
         {"client_token", "accessor", "policies", "token_policies", "identity_policies", "metadata",
          "orphan", "entity_id", "lease_duration", "renewable", "mfa_requirement"}) {
      auto f = a.find(k);
      if (f != a.end()) {
        auth[k] = f->value();
      } else if (k == "mfa_requirement" || k == "metadata") {
        auth[k] = nullptr;
      }
    }
    o["auth"] = std::move(auth);
  }
  if (s.wrap_info) {
    const client::WrapInfo& w = *s.wrap_info;
    json::object wrap;
    wrap["token"] = w.token;
    wrap["accessor"] = w.accessor;
    wrap["ttl"] = w.ttl;
    wrap["creation_time"] = w.creation_time;
    wrap["creation_path"] = w.creation_path;
    wrap["wrapped_accessor"] = w.wrapped_accessor;
    o["wrap_info"] = std::move(wrap);
  }
  if (auto it = s.raw.find("mount_type");
      it != s.raw.end() && it->value().is_string() && !it->value().as_string().empty()) {
    o["mount_type"] = it->value();
  }
  return o;
}

std::string GoTimeString(std::string_view rfc3339) {
  // 2006-01-02T15:04:05[.frac](Z|+07:00)
  auto digits = [&](size_t from, size_t n) {
    if (from + n > rfc3339.size()) return false;
    for (size_t i = from; i < from + n; ++i) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(rfc3339[i]))) return false;
    }
    return true;
  };
  const std::string_view t = rfc3339;
  if (!digits(0, 4) || t.size() < 20 || t[4] != '-' || !digits(5, 2) || t[7] != '-' ||
      !digits(8, 2) || (t[10] != 'T' && t[10] != 't') || !digits(11, 2) || t[13] != ':' ||
      !digits(14, 2) || t[16] != ':' || !digits(17, 2)) {
    return std::string(t);
  }
  size_t i = 19;
  std::string frac;
  if (i < t.size() && t[i] == '.') {
    size_t j = i + 1;
    while (j < t.size() && absl::ascii_isdigit(static_cast<unsigned char>(t[j]))) ++j;
    if (j == i + 1 || j - i - 1 > 9) return std::string(t);
    frac = std::string(t.substr(i + 1, j - i - 1));
    i = j;
  }
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  std::string zone;
  const std::string_view rest = t.substr(i);
  if (rest == "Z" || rest == "z") {
    zone = "+0000 UTC";
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && digits(i + 1, 2) &&
             rest[3] == ':' && digits(i + 4, 2)) {
    // A zone Go cannot name prints its offset twice ("-0500 -0500").
    const std::string offset = absl::StrCat(Av(rest.substr(0, 3)), Av(rest.substr(4, 2)));
    zone = absl::StrCat(offset, " ", offset);
  } else {
    return std::string(t);
  }
  return absl::StrCat(Av(t.substr(0, 10)), " ", Av(t.substr(11, 8)), frac.empty() ? "" : ".", frac,
                      " ", zone);
}

std::string WarningsText(const std::vector<std::string>& warnings) {
  if (warnings.empty()) return "";
  std::string out = "WARNING! The following warnings were returned from Vault:\n\n";
  for (const std::string& w : warnings) absl::StrAppend(&out, "  * ", EscapeControls(w), "\n\n");
  return out;
}

std::string SecretTable(const client::Secret& s) {
  const std::string d(kDelim);
  std::vector<std::string> rows;
  if (s.lease_duration > 0) {
    if (!s.lease_id.empty()) {
      rows.push_back(absl::StrCat("lease_id", d, s.lease_id));
      rows.push_back(absl::StrCat("lease_duration", d, HumanDuration(s.lease_duration)));
      rows.push_back(absl::StrCat("lease_renewable", d, s.renewable ? "true" : "false"));
    } else {
      rows.push_back(absl::StrCat("refresh_interval", d, HumanDuration(s.lease_duration)));
    }
  }
  if (auto it = s.raw.find("auth"); it != s.raw.end() && it->value().is_object()) {
    const json::object& a = it->value().as_object();
    auto field = [&](std::string_view k) -> json::value {
      auto f = a.find(k);
      return f == a.end() ? json::value() : f->value();
    };
    rows.push_back(absl::StrCat("token", d, Scalar(field("client_token"))));
    rows.push_back(absl::StrCat("token_accessor", d, Scalar(field("accessor"))));
    const int64_t duration = s.auth ? s.auth->lease_duration : 0;
    rows.push_back(absl::StrCat("token_duration", d,
                                duration == 0 ? "\xE2\x88\x9E" : HumanDuration(duration)));
    rows.push_back(
        absl::StrCat("token_renewable", d, s.auth && s.auth->renewable ? "true" : "false"));
    rows.push_back(absl::StrCat("token_policies", d, GoQuotedList(field("token_policies"))));
    rows.push_back(absl::StrCat("identity_policies", d, GoQuotedList(field("identity_policies"))));
    rows.push_back(absl::StrCat("policies", d, GoQuotedList(field("policies"))));
    if (json::value meta = field("metadata"); meta.is_object()) {
      for (const auto& [k, v] : Sorted(meta.as_object())) {
        rows.push_back(absl::StrCat("token_meta_", k, d, GoValue(*v)));
      }
    }
  }
  if (s.wrap_info) {
    const client::WrapInfo& w = *s.wrap_info;
    rows.push_back(absl::StrCat("wrapping_token:", d, w.token));
    rows.push_back(absl::StrCat("wrapping_accessor:", d, w.accessor));
    rows.push_back(absl::StrCat("wrapping_token_ttl:", d, HumanDuration(w.ttl)));
    rows.push_back(absl::StrCat("wrapping_token_creation_time:", d, GoTimeString(w.creation_time)));
    rows.push_back(absl::StrCat("wrapping_token_creation_path:", d, w.creation_path));
    if (!w.wrapped_accessor.empty()) {
      rows.push_back(absl::StrCat("wrapped_accessor:", d, w.wrapped_accessor));
    }
  }
  if (s.data.is_object()) {
    for (const auto& [k, v] : Sorted(s.data.as_object())) {
      rows.push_back(absl::StrCat(k, d, CellValue(k, *v)));
    }
  }
  if (rows.empty()) return "";
  rows.insert(rows.begin(), absl::StrCat("Key", d, "Value"));
  return Table(rows, kDelim);
}

std::string MapTable(const json::object& data) {
  const std::string d(kDelim);
  std::vector<std::string> rows;
  for (const auto& [k, v] : Sorted(data)) rows.push_back(absl::StrCat(k, d, CellValue(k, *v)));
  if (rows.empty()) return "";
  rows.insert(rows.begin(), absl::StrCat("Key", d, "Value"));
  return Table(rows, kDelim);
}

const json::object& ObjectOr(const json::value& v) {
  static const json::object kEmpty;
  return v.is_object() ? v.as_object() : kEmpty;
}

const json::object& Member(const json::object& o, std::string_view k) {
  static const json::value kNull;
  auto it = o.find(k);
  return ObjectOr(it == o.end() ? kNull : it->value());
}

std::string Str(const json::object& o, std::string_view k) {
  auto it = o.find(k);
  if (it == o.end() || it->value().is_null()) return "";
  return it->value().is_string() ? std::string(it->value().as_string()) : GoValue(it->value());
}

bool Bool(const json::object& o, std::string_view k) {
  auto it = o.find(k);
  return it != o.end() && it->value().is_bool() && it->value().as_bool();
}

std::string PadEqualSigns(std::string_view header, size_t total) {
  int64_t signs = static_cast<int64_t>(total) - static_cast<int64_t>(header.size() + 2);
  if (signs <= 0) signs = 4;
  if (signs % 2 != 0) ++signs;
  const std::string side(static_cast<size_t>(signs / 2), '=');
  return absl::StrCat(side, " ", Av(header), " ", side);
}

std::string HeaderForMap(std::string_view header, const json::object& data) {
  size_t max_key = 0;
  for (const auto& kv : data) max_key = std::max(max_key, kv.key().size());
  return PadEqualSigns(header, max_key + 4 + 5);
}

}  // namespace strongroom::vault
