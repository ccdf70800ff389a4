#include "policy/template.h"

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "policy/quote.h"

namespace strongroom::policy {
namespace {

// strings.Split semantics: n separators give n+1 pieces, empty pieces kept.
std::vector<std::string_view> Split(std::string_view s, std::string_view sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const size_t at = s.find(sep, start);
    if (at == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, at - start));
    start = at + sep.size();
  }
}

std::string_view TrimSpace(std::string_view s) {
  constexpr std::string_view kSpace = " \t\n\r\v\f";
  const size_t first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kSpace) - first + 1);
}

bool Consume(std::string_view& s, std::string_view prefix) {
  if (!s.starts_with(prefix)) return false;
  s.remove_prefix(prefix.size());
  return true;
}

// Splits "head.rest" at the first '.'; both parts must be non-empty.
bool SplitFirst(std::string_view s, std::string_view& head, std::string_view& rest) {
  const size_t dot = s.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == s.size()) return false;
  head = s.substr(0, dot);
  rest = s.substr(dot + 1);
  return true;
}

absl::Status InvalidSelector(std::string_view selector) {
  return absl::InvalidArgumentError(absl::StrCat("invalid template ", QuoteForError(selector)));
}

absl::Status Unresolved(std::string_view selector) {
  return absl::NotFoundError(absl::StrCat("no value for template ", QuoteForError(selector)));
}

const std::string* Lookup(const StringMap& map, std::string_view key) {
  const auto it = map.find(key);
  return it == map.end() ? nullptr : &it->second;
}

// What a selector refers to: nullptr when absent (or when only validating). `valid` is cleared
// for selectors outside the grammar.
struct Resolution {
  bool valid = true;
  const std::string* value = nullptr;
};

// Field of an alias: id | name | metadata.<key> | custom_metadata.<key>.
Resolution AliasField(std::string_view field, const IdentityAlias* alias) {
  Resolution r;
  std::string_view key = field;
  if (field == "id") {
    if (alias != nullptr) r.value = &alias->id;
  } else if (field == "name") {
    if (alias != nullptr) r.value = &alias->name;
  } else if (Consume(key, "metadata.") && !key.empty()) {
    if (alias != nullptr) r.value = Lookup(alias->metadata, key);
  } else if (key = field; Consume(key, "custom_metadata.") && !key.empty()) {
    if (alias != nullptr) r.value = Lookup(alias->custom_metadata, key);
  } else {
    r.valid = false;
  }
  return r;
}

// Field of a group: id | name | metadata.<key>.
Resolution GroupField(std::string_view field, const IdentityGroup* group) {
  Resolution r;
  std::string_view key = field;
  if (field == "id") {
    if (group != nullptr) r.value = &group->id;
  } else if (field == "name") {
    if (group != nullptr) r.value = &group->name;
  } else if (Consume(key, "metadata.") && !key.empty()) {
    if (group != nullptr) r.value = Lookup(group->metadata, key);
  } else {
    r.valid = false;
  }
  return r;
}

// The grammar of vault-api.md 6.3. With identity == nullptr, only the syntax is checked.
Resolution Resolve(std::string_view selector, const IdentityContext* identity) {
  std::string_view s = selector;
  Resolution r;
  if (Consume(s, "identity.entity.")) {
    // A token without an entity resolves nothing, not even fields that would be empty anyway.
    const bool has_entity = identity != nullptr && !identity->entity_id.empty();
    std::string_view key = s;
    std::string_view accessor;
    std::string_view field;
    if (s == "id") {
      if (has_entity) r.value = &identity->entity_id;
    } else if (s == "name") {
      if (has_entity) r.value = &identity->entity_name;
    } else if (Consume(key, "metadata.") && !key.empty()) {
      if (has_entity) r.value = Lookup(identity->entity_metadata, key);
    } else if (key = s; Consume(key, "aliases.") && SplitFirst(key, accessor, field)) {
      const IdentityAlias* alias = nullptr;
      if (has_entity) {
        const auto it = identity->aliases.find(accessor);
        if (it != identity->aliases.end()) alias = &it->second;
      }
      r = AliasField(field, alias);
    } else {
      r.valid = false;
    }
    return r;
  }
  if (Consume(s, "identity.groups.")) {
    const bool by_id = Consume(s, "ids.");
    if (!by_id && !Consume(s, "names.")) {
      r.valid = false;
      return r;
    }
    std::string_view wanted;
    std::string_view field;
    if (!SplitFirst(s, wanted, field)) {
      r.valid = false;
      return r;
    }
    const IdentityGroup* group = nullptr;
    if (identity != nullptr) {
      for (const IdentityGroup& g : identity->groups) {
        if ((by_id ? g.id : g.name) == wanted) {
          group = &g;
          break;
        }
      }
    }
    return GroupField(field, group);
  }
  r.valid = false;
  return r;
}

// Walks the `{{ ... }}` structure exactly as Vault's identitytpl does (split on "{{", then each
// piece must split on "}}" into exactly two parts) and calls `emit` for literal text and
// `selector` for each trimmed selector. Returns whether any template was seen.
template <typename Literal, typename Selector>
absl::StatusOr<bool> Walk(std::string_view path, Literal literal, Selector selector) {
  const std::vector<std::string_view> pieces = Split(path, "{{");
  if (pieces[0].find("}}") != std::string_view::npos) {
    return absl::InvalidArgumentError("unbalanced templating characters");
  }
  RETURN_IF_ERROR(literal(pieces[0]));
  for (size_t i = 1; i < pieces.size(); ++i) {
    const std::vector<std::string_view> parts = Split(pieces[i], "}}");
    if (parts.size() != 2) return absl::InvalidArgumentError("unbalanced templating characters");
    RETURN_IF_ERROR(selector(TrimSpace(parts[0])));
    RETURN_IF_ERROR(literal(parts[1]));
  }
  return pieces.size() > 1;
}

absl::Status CheckValue(std::string_view selector, const std::string& value,
                        const RenderOptions& options) {
  if (value.empty()) return Unresolved(selector);
  if (!options.allow_wildcards && value.find_first_of("*+") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("template ", QuoteForError(selector),
                                                   " resolved to a value containing a wildcard"));
  }
  if (!options.allow_slashes && value.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("template ", QuoteForError(selector),
                                                   " resolved to a value containing a slash"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<bool> ValidateTemplates(std::string_view path) {
  return Walk(
      path, [](std::string_view) { return absl::OkStatus(); },
      [](std::string_view selector) {
        return Resolve(selector, nullptr).valid ? absl::OkStatus() : InvalidSelector(selector);
      });
}

absl::StatusOr<std::string> RenderPath(std::string_view path, const IdentityContext& identity,
                                       const RenderOptions& options) {
  std::string out;
  out.reserve(path.size());
  const absl::StatusOr<bool> walked = Walk(
      path,
      [&out](std::string_view text) {
        out.append(text);
        return absl::OkStatus();
      },
      [&out, &identity, &options](std::string_view selector) {
        const Resolution r = Resolve(selector, &identity);
        if (!r.valid) return InvalidSelector(selector);
        if (r.value == nullptr) return Unresolved(selector);
        RETURN_IF_ERROR(CheckValue(selector, *r.value, options));
        out.append(*r.value);
        return absl::OkStatus();
      });
  if (!walked.ok()) return walked.status();
  return out;
}

}  // namespace strongroom::policy
