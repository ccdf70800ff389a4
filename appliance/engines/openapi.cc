#include "appliance/engines/openapi.h"

#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace strongroom::engines {
namespace {

using core::json::array;
using core::json::object;

// Words of a path for an operation id: "auth/userpass/users/{username}" -> "auth-userpass-users-
// username".
std::string Words(std::string_view path) {
  std::string out;
  bool sep = false;
  for (char c : path) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      if (sep && !out.empty()) out.push_back('-');
      out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
      sep = false;
    } else {
      sep = true;
    }
  }
  return out;
}

// "auth-userpass-write-users" -> "AuthUserpassWriteUsers"
std::string TitleCase(absl::string_view hyphenated) {
  std::string out;
  for (absl::string_view w : absl::StrSplit(hyphenated, '-', absl::SkipEmpty())) {
    std::string word(w);
    word[0] = absl::ascii_toupper(static_cast<unsigned char>(word[0]));
    out += word;
  }
  return out;
}

std::string Tag(const core::MountEntry& m) {
  if (m.type == "system") return "system";
  if (m.type == "identity") return "identity";
  if (absl::StartsWith(m.path, "auth/")) return "auth";
  return "secrets";
}

// Mounts that can live at any path get a parameter for it with generic_mount_paths.
bool Relocatable(const core::MountEntry& m) {
  return m.type != "system" && m.type != "identity" && m.type != "token";
}

object Param(const std::string& name, const std::string& description, const std::string& in,
             bool required) {
  object p;
  p["name"] = name;
  if (!description.empty()) p["description"] = description;
  p["in"] = in;
  object schema;
  schema["type"] = "string";
  p["schema"] = std::move(schema);
  if (required) p["required"] = true;
  return p;
}

object FieldSchema(const core::RouteField& f) {
  object s;
  s["type"] = std::string(f.type);
  if (!f.description.empty()) s["description"] = std::string(f.description);
  if (f.type == "array") {
    object items;
    items["type"] = "string";
    s["items"] = std::move(items);
  }
  return s;
}

object Responses(int code) {
  object r;
  object d;
  d["description"] = code == 204 ? "empty body" : "OK";
  r[std::to_string(code)] = std::move(d);
  return r;
}

class Builder {
 public:
  explicit Builder(const OpenApiOptions& options) : options_(options) {}

  void AddMount(const core::MountEntry& m, const core::Backend& backend) {
    std::string prefix = absl::StrCat("/", m.path);  // "/secret/", "/auth/userpass/"
    std::optional<std::string> mount_param;
    if (options_.generic_mount_paths && Relocatable(m)) {
      std::string type = m.type;
      for (char& c : type) {
        if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      mount_param = absl::StrCat(type, "_mount_path");
      prefix =
          absl::StrCat(absl::StartsWith(m.path, "auth/") ? "/auth/" : "/", "{", *mount_param, "}/");
    }
    const std::string tag = Tag(m);
    for (const core::Route& r : backend.Routes()) {
      const std::string rel(r.pattern);
      std::string key = prefix + core::RouteOpenApiPath(r.pattern);
      if (key.size() > 1 && key.back() == '/' && !rel.empty()) key.pop_back();
      if (paths_.contains(key)) continue;  // generic paths: one entry per engine type
      object item;
      if (!r.summary.empty()) item["description"] = std::string(r.summary);
      array params;
      if (mount_param) {
        params.emplace_back(Param(*mount_param, "Path that the backend was mounted at", "path",
                                  /*required=*/true));
      }
      for (const std::string& p : core::RouteParams(r.pattern)) {
        params.emplace_back(Param(p, "", "path", /*required=*/true));
      }
      if (!params.empty()) item["parameters"] = std::move(params);
      if (backend.IsRootPath(rel)) item["x-vault-sudo"] = true;
      if (backend.IsUnauthenticatedPath(rel)) item["x-vault-unauthenticated"] = true;
      if (r.ops & core::kRouteWrite) item["x-vault-createSupported"] = true;
      const std::string words = Words(absl::StrCat(m.path, rel));
      if (r.ops & (core::kRouteRead | core::kRouteList)) {
        object op = Operation(r, tag, (r.ops & core::kRouteRead) ? "read" : "list", words);
        array qp;
        if ((r.ops & core::kRouteRead) && (r.ops & core::kRouteList)) {
          qp.emplace_back(Param("list", "Return a list if `true`", "query", false));
        } else if (r.ops & core::kRouteList) {
          object list = Param("list", "Must be set to `true`", "query", true);
          list["schema"].as_object()["enum"] = array{"true"};
          qp.emplace_back(std::move(list));
        }
        if ((r.ops & (core::kRouteWrite | core::kRoutePatch)) == 0) {
          for (const auto& f : r.fields) {
            qp.emplace_back(Param(std::string(f.name), std::string(f.description), "query", false));
          }
        }
        if (!qp.empty()) op["parameters"] = std::move(qp);
        op["responses"] = Responses(200);
        item["get"] = std::move(op);
      }
      if (r.ops & core::kRouteWrite) item["post"] = BodyOperation(r, tag, "write", words);
      if (r.ops & core::kRoutePatch) item["patch"] = BodyOperation(r, tag, "patch", words);
      if (r.ops & core::kRouteDelete) {
        object op = Operation(r, tag, "delete", words);
        op["responses"] = Responses(204);
        item["delete"] = std::move(op);
      }
      paths_.emplace(key, std::move(item));
      order_.push_back(key);
    }
  }

  object Finish() {
    object doc;
    doc["openapi"] = "3.0.2";
    object info;
    info["title"] = "HashiCorp Vault API";
    info["description"] =
        "HTTP API that gives you full access to Vault. All API routes are prefixed with `/v1/`.";
    info["version"] = options_.version;
    object license;
    license["name"] = "Mozilla Public License 2.0";
    license["url"] = "https://www.mozilla.org/en-US/MPL/2.0";
    info["license"] = std::move(license);
    doc["info"] = std::move(info);
    object paths;
    for (const std::string& key : order_) paths[key] = std::move(paths_.at(key));
    doc["paths"] = std::move(paths);
    object components;
    components["schemas"] = std::move(schemas_);
    doc["components"] = std::move(components);
    return doc;
  }

 private:
  object Operation(const core::Route& r, const std::string& tag, const std::string& verb,
                   const std::string& words) {
    object op;
    if (!r.summary.empty()) op["summary"] = std::string(r.summary);
    op["operationId"] = UniqueId(absl::StrCat(verb, "-", words));
    op["tags"] = array{core::json::value(tag)};
    return op;
  }

  object BodyOperation(const core::Route& r, const std::string& tag, const std::string& verb,
                       const std::string& words) {
    object op = Operation(r, tag, verb, words);
    if (!r.fields.empty()) {
      object schema;
      schema["type"] = "object";
      object props;
      array required;
      for (const auto& f : r.fields) {
        props[std::string(f.name)] = FieldSchema(f);
        if (f.required) required.emplace_back(std::string(f.name));
      }
      schema["properties"] = std::move(props);
      if (!required.empty()) schema["required"] = std::move(required);
      const std::string name =
          absl::StrCat(TitleCase(std::string(op.at("operationId").as_string())), "Request");
      schemas_[name] = std::move(schema);
      object ref;
      ref["$ref"] = absl::StrCat("#/components/schemas/", name);
      object media;
      media["schema"] = std::move(ref);
      object content;
      content["application/json"] = std::move(media);
      object body;
      body["required"] = true;
      body["content"] = std::move(content);
      op["requestBody"] = std::move(body);
    }
    op["responses"] = Responses(200);
    return op;
  }

  std::string UniqueId(const std::string& base) {
    std::string id = base;
    for (int n = 2; !ids_.insert(id).second; ++n) id = absl::StrCat(base, "-", n);
    return id;
  }

  const OpenApiOptions& options_;
  std::map<std::string, object> paths_;
  std::vector<std::string> order_;
  std::set<std::string> ids_;
  object schemas_;
};

}  // namespace

object OpenApiDocument(const std::vector<core::Core::MountBackend>& mounts,
                       const OpenApiOptions& options) {
  Builder b(options);
  for (const auto& m : mounts) {
    if (m.backend != nullptr) b.AddMount(m.entry, *m.backend);
  }
  return b.Finish();
}

}  // namespace strongroom::engines
