#include "cli/vault/policy_format.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/hcl.h"
#include "cli/vault/paths.h"
#include "policy/policy.h"

namespace strongroom::vault {
namespace {

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\r':
        out.append("\\r");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          absl::StrAppend(&out, absl::StrFormat("\\u%04x", static_cast<unsigned char>(c)));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

bool IsName(std::string_view s) {
  if (s.empty() || !(absl::ascii_isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

std::string Key(std::string_view k) { return IsName(k) ? std::string(k) : Quote(k); }

bool IsScalar(const hcl::Value& v) {
  return v.kind == hcl::Value::Kind::kString || v.kind == hcl::Value::Kind::kNumber ||
         v.kind == hcl::Value::Kind::kBool;
}

std::string Indent(int level) { return std::string(static_cast<size_t>(level) * 2, ' '); }

std::string ValueText(const hcl::Value& v, int level);

// key = value lines; runs of one-line values are aligned on '='.
std::string Assignments(const std::vector<std::pair<std::string, const hcl::Value*>>& items,
                        int level) {
  std::vector<std::string> keys, values;
  for (const auto& [k, v] : items) {
    keys.push_back(k);
    values.push_back(ValueText(*v, level));
  }
  std::string out;
  size_t i = 0;
  while (i < items.size()) {
    size_t j = i;
    size_t width = 0;
    while (j < items.size() && values[j].find('\n') == std::string::npos) {
      width = std::max(width, keys[j].size());
      ++j;
    }
    if (j == i) {  // a multi-line value stands alone
      absl::StrAppend(&out, Indent(level), keys[i], " = ", values[i], "\n");
      ++i;
      continue;
    }
    for (; i < j; ++i) {
      absl::StrAppend(&out, Indent(level), keys[i], std::string(width - keys[i].size(), ' '), " = ",
                      values[i], "\n");
    }
  }
  return out;
}

std::string ValueText(const hcl::Value& v, int level) {
  switch (v.kind) {
    case hcl::Value::Kind::kString:
      return Quote(v.str);
    case hcl::Value::Kind::kNumber:
      return v.str;
    case hcl::Value::Kind::kBool:
      return v.boolean ? "true" : "false";
    case hcl::Value::Kind::kList: {
      if (v.list.empty()) return "[]";
      if (std::all_of(v.list.begin(), v.list.end(), IsScalar)) {
        std::vector<std::string> items;
        for (const hcl::Value& e : v.list) items.push_back(ValueText(e, level));
        return absl::StrCat("[", absl::StrJoin(items, ", "), "]");
      }
      std::string out = "[\n";
      for (const hcl::Value& e : v.list) {
        absl::StrAppend(&out, Indent(level + 1), ValueText(e, level + 1), ",\n");
      }
      absl::StrAppend(&out, Indent(level), "]");
      return out;
    }
    case hcl::Value::Kind::kObject: {
      if (v.object.empty()) return "{}";
      std::vector<std::pair<std::string, const hcl::Value*>> items;
      for (const auto& [k, e] : v.object) items.emplace_back(Quote(k), &e);
      return absl::StrCat("{\n", Assignments(items, level + 1), Indent(level), "}");
    }
  }
  return "";
}

std::string BlockText(const hcl::Block& b, int level);

std::string BodyText(const std::vector<hcl::Attribute>& attributes,
                     const std::vector<hcl::Block>& blocks, int level, bool top) {
  std::vector<std::pair<std::string, const hcl::Value*>> items;
  for (const hcl::Attribute& a : attributes) items.emplace_back(Key(a.key), &a.value);
  std::string out = Assignments(items, level);
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (top && (i > 0 || !attributes.empty())) out.push_back('\n');
    absl::StrAppend(&out, BlockText(blocks[i], level));
  }
  return out;
}

std::string BlockText(const hcl::Block& b, int level) {
  std::string head = absl::StrCat(Indent(level), Key(b.type));
  for (const std::string& l : b.labels) absl::StrAppend(&head, " ", Quote(l));
  if (b.attributes.empty() && b.blocks.empty()) return absl::StrCat(head, " {}\n");
  return absl::StrCat(head, " {\n", BodyText(b.attributes, b.blocks, level + 1, false),
                      Indent(level), "}\n");
}

}  // namespace

bool HasHclComment(std::string_view t) {
  size_t i = 0;
  while (i < t.size()) {
    const char c = t[i];
    if (c == '"') {  // a quoted string: to its closing quote, escapes skipped
      ++i;
      while (i < t.size() && t[i] != '"' && t[i] != '\n') i += t[i] == '\\' ? 2 : 1;
      ++i;
      continue;
    }
    if (c == '#') return true;
    if (c == '/' && i + 1 < t.size() && (t[i + 1] == '/' || t[i + 1] == '*')) return true;
    if (c == '<' && i + 1 < t.size() && t[i + 1] == '<') {  // a heredoc: to its terminator line
      size_t j = i + 2;
      const bool indented = j < t.size() && t[j] == '-';
      if (indented) ++j;
      const size_t start = j;
      while (j < t.size() &&
             (absl::ascii_isalnum(static_cast<unsigned char>(t[j])) || t[j] == '_')) {
        ++j;
      }
      const std::string_view marker = t.substr(start, j - start);
      size_t eol = t.find('\n', j);
      if (marker.empty() || eol == std::string_view::npos) {
        i = j;
        continue;
      }
      i = eol + 1;
      while (i < t.size()) {
        size_t end = t.find('\n', i);
        if (end == std::string_view::npos) end = t.size();
        std::string_view line = t.substr(i, end - i);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (indented) line.remove_prefix(std::min(line.size(), line.find_first_not_of(" \t")));
        i = end + 1;
        if (line == marker) break;
      }
      continue;
    }
    ++i;
  }
  return false;
}

absl::StatusOr<std::string> FormatPolicy(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') {
    return absl::InvalidArgumentError(
        "the policy is JSON; policy fmt formats HCL policies only (the file is unchanged)");
  }
  if (HasHclComment(text)) {
    return absl::InvalidArgumentError(
        "the policy has comments, which policy fmt cannot keep; the file is unchanged");
  }
  if (auto p = policy::ParsePolicy("fmt", text); !p.ok()) return p.status();
  auto body = hcl::Parse(text);
  if (!body.ok()) return body.status();
  return BodyText(body->attributes, body->blocks, 0, true);
}

absl::Status ReplaceFile(const std::string& path, std::string_view content) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::InternalError(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  return WriteFileAtomic(path, content, st.st_mode & 07777);
}

}  // namespace strongroom::vault
