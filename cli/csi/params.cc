#include "cli/csi/params.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <limits>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/strings.h"
#include "cli/template/functions.h"

namespace strongroom::csi {
namespace {

constexpr std::string_view kPodName = "csi.storage.k8s.io/pod.name";
constexpr std::string_view kPodUid = "csi.storage.k8s.io/pod.uid";
constexpr std::string_view kPodNamespace = "csi.storage.k8s.io/pod.namespace";
constexpr std::string_view kServiceAccountName = "csi.storage.k8s.io/serviceAccount.name";
constexpr std::string_view kServiceAccountTokens = "csi.storage.k8s.io/serviceAccount.tokens";

absl::Status Bad(std::string_view what) { return absl::InvalidArgumentError(std::string(what)); }

// "object \"api-keys\"" or "object 3" (1-based) when it has no usable name yet.
std::string ObjectLabel(size_t index, std::string_view name) {
  if (!name.empty() && CheckObjectName(name).ok()) return absl::StrCat("object \"", Av(name), "\"");
  return absl::StrCat("object ", index + 1);
}

bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto b = static_cast<unsigned char>(c);
    return b < 0x20 || b == 0x7f;
  });
}

// A Kubernetes object name (RFC 1123 subdomain: pod, namespace and service account names).
bool IsKubernetesName(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (!(absl::ascii_islower(static_cast<unsigned char>(c)) ||
          absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.')) {
      return false;
    }
  }
  return absl::ascii_isalnum(static_cast<unsigned char>(s.front())) &&
         absl::ascii_isalnum(static_cast<unsigned char>(s.back()));
}

// A pod UID: a UUID as Kubernetes writes them (hex and dashes).
bool IsUid(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isxdigit(static_cast<unsigned char>(c)) || c == '-';
  });
}

// --- YAML ------------------------------------------------------------------------------------

constexpr std::string_view kStrTag = "tag:yaml.org,2002:str";

// Walk state shared by one ParseObjects call: the node budget.
struct Walk {
  size_t nodes = 0;
  absl::Status Visit() {
    if (++nodes > kMaxYamlNodes) {
      return Bad(absl::StrCat("parameter \"objects\" has more than ", kMaxYamlNodes,
                              " YAML nodes (aliases count every time they are used)"));
    }
    return absl::OkStatus();
  }
};

// A YAML scalar as yaml.v3 resolves a plain scalar decoded into interface{} (YAML 1.2 core
// schema, plus 0-prefixed octal): null, bool, int, float or string. Quoted scalars and !!str are
// strings.
absl::StatusOr<json::value> ResolveScalar(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  const std::string& tag = node.Tag();
  if (tag == "!" || tag == kStrTag) return json::value(json::string(text));
  for (std::string_view n : {"", "~", "null", "Null", "NULL"}) {
    if (text == n) return json::value(nullptr);
  }
  for (std::string_view t : {"true", "True", "TRUE"}) {
    if (text == t) return json::value(true);
  }
  for (std::string_view f : {"false", "False", "FALSE"}) {
    if (text == f) return json::value(false);
  }
  // Integers: decimal, 0x hex, 0o and 0-prefixed octal, 0b binary, with an optional sign.
  {
    std::string_view digits = text;
    bool negative = false;
    if (!digits.empty() && (digits.front() == '+' || digits.front() == '-')) {
      negative = digits.front() == '-';
      digits.remove_prefix(1);
    }
    int base = 10;
    if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
      base = 16;
      digits.remove_prefix(2);
    } else if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'o' || digits[1] == 'O')) {
      base = 8;
      digits.remove_prefix(2);
    } else if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'b' || digits[1] == 'B')) {
      base = 2;
      digits.remove_prefix(2);
    } else if (digits.size() > 1 && digits[0] == '0') {
      base = 8;
      digits.remove_prefix(1);
    }
    auto is_digit = [base](char c) {
      if (base == 16) return absl::ascii_isxdigit(static_cast<unsigned char>(c)) != 0;
      return c >= '0' && c < static_cast<char>('0' + base);
    };
    if (!digits.empty() && digits.size() <= 64 &&
        std::all_of(digits.begin(), digits.end(), is_digit)) {
      errno = 0;
      const std::string d(digits);
      const unsigned long long u = std::strtoull(d.c_str(), nullptr, base);
      if (errno == 0) {
        if (!negative && u <= static_cast<unsigned long long>(INT64_MAX)) {
          return json::value(static_cast<int64_t>(u));
        }
        if (!negative) return json::value(static_cast<uint64_t>(u));
        if (u <= static_cast<unsigned long long>(INT64_MAX) + 1ULL) {
          return json::value(u == static_cast<unsigned long long>(INT64_MAX) + 1ULL
                                 ? std::numeric_limits<int64_t>::min()
                                 : -static_cast<int64_t>(u));
        }
      }
      // Out of range: YAML then reads it as a float below (or a string).
    }
  }
  // Floats: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, and the infinities and NaN,
  // which JSON cannot carry.
  for (std::string_view special : {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
                                   "-.Inf", "-.INF", ".nan", ".NaN", ".NAN"}) {
    if (text == special) return Bad("cannot be sent as JSON (infinity or NaN)");
  }
  {
    size_t i = 0;
    const size_t n = text.size();
    if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
    size_t int_digits = 0, frac_digits = 0;
    while (i < n && absl::ascii_isdigit(static_cast<unsigned char>(text[i]))) ++i, ++int_digits;
    bool dot = false;
    if (i < n && text[i] == '.') {
      dot = true;
      ++i;
      while (i < n && absl::ascii_isdigit(static_cast<unsigned char>(text[i]))) ++i, ++frac_digits;
    }
    bool ok = int_digits > 0 || (dot && frac_digits > 0);
    if (ok && i < n && (text[i] == 'e' || text[i] == 'E')) {
      ++i;
      if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
      size_t exp_digits = 0;
      while (i < n && absl::ascii_isdigit(static_cast<unsigned char>(text[i]))) ++i, ++exp_digits;
      ok = exp_digits > 0;
    }
    double d = 0;
    if (ok && i == n && n <= 64 && absl::SimpleAtod(text, &d)) {
      if (d != d || d == std::numeric_limits<double>::infinity() ||
          d == -std::numeric_limits<double>::infinity()) {
        return Bad("cannot be sent as JSON (a number out of range)");
      }
      return json::value(d);
    }
  }
  return json::value(json::string(text));
}

// A YAML node as a JSON value (secretArgs), within the depth cap and the node budget.
absl::StatusOr<json::value> ToJson(const YAML::Node& node, int depth, Walk& walk) {
  if (absl::Status s = walk.Visit(); !s.ok()) return s;
  if (depth > kMaxYamlDepth) {
    return Bad(absl::StrCat("is nested more than ", kMaxYamlDepth, " levels deep"));
  }
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return json::value(nullptr);
    case YAML::NodeType::Scalar:
      return ResolveScalar(node);
    case YAML::NodeType::Sequence: {
      json::array a;
      for (const YAML::Node& item : node) {
        auto v = ToJson(item, depth + 1, walk);
        if (!v.ok()) return v.status();
        a.push_back(std::move(*v));
      }
      return json::value(std::move(a));
    }
    case YAML::NodeType::Map: {
      json::object o;
      for (const auto& kv : node) {
        if (absl::Status s = walk.Visit(); !s.ok()) return s;
        if (!kv.first.IsScalar()) return Bad("has a key that is not a string");
        const std::string& key = kv.first.Scalar();
        if (o.contains(key)) {
          // At most 64 bytes of the key: a secretArgs key could be long, or a value by mistake.
          return Bad(absl::StrCat("has the key \"", Av(std::string_view(key).substr(0, 64)),
                                  key.size() > 64 ? "...\" twice" : "\" twice"));
        }
        auto v = ToJson(kv.second, depth + 1, walk);
        if (!v.ok()) return v.status();
        o[key] = std::move(*v);
      }
      return json::value(std::move(o));
    }
  }
  return Bad("has a YAML node of an unknown kind");
}

// A string field of an object: any scalar as its text (yaml.v3 decodes an int into a string
// field as its text), null as empty; a collection is an error.
absl::Status StringField(const YAML::Node& node, std::string_view field, std::string* out) {
  if (node.IsNull()) {
    out->clear();
    return absl::OkStatus();
  }
  if (!node.IsScalar()) return Bad(absl::StrCat(Av(field), " must be a string"));
  if (node.Scalar().size() > kMaxFieldBytes) {
    return Bad(absl::StrCat(Av(field), " is longer than ", kMaxFieldBytes, " bytes"));
  }
  if (HasControl(node.Scalar())) return Bad(absl::StrCat(Av(field), " holds a control character"));
  *out = node.Scalar();
  return absl::OkStatus();
}

// filePermission: an integer (decimal, 0o or 0-prefixed octal, 0x hex) from 0 to 0777.
absl::Status PermissionField(const YAML::Node& node, uint32_t* out) {
  if (node.IsNull()) {
    *out = 0;
    return absl::OkStatus();
  }
  constexpr std::string_view kWant =
      "filePermission must be a file mode from 0 to 0777 (an unquoted integer such as 0600, "
      "0o600 or 384)";
  if (!node.IsScalar() || node.Tag() == "!") return Bad(kWant);
  auto v = ResolveScalar(node);
  if (!v.ok() || !v->is_int64() || v->as_int64() < 0 || v->as_int64() > 0777) return Bad(kWant);
  *out = static_cast<uint32_t>(v->as_int64());
  return absl::OkStatus();
}

absl::StatusOr<ObjectSpec> ParseObject(const YAML::Node& item, size_t index, Walk& walk) {
  if (absl::Status s = walk.Visit(); !s.ok()) return s;
  if (!item.IsMap()) {
    return Bad(absl::StrCat("parameter \"objects\": entry ", index + 1,
                            " is not a mapping (objectName, secretPath, ...)"));
  }
  ObjectSpec spec;
  // The name first, so that the other errors can name the object.
  std::set<std::string> seen;
  for (const auto& kv : item) {
    if (absl::Status s = walk.Visit(); !s.ok()) return s;
    if (!kv.first.IsScalar()) {
      return Bad(absl::StrCat("parameter \"objects\": entry ", index + 1,
                              " has a key that is not a string"));
    }
    if (!seen.insert(kv.first.Scalar()).second) {
      return Bad(absl::StrCat("parameter \"objects\": entry ", index + 1, " has the key \"",
                              kv.first.Scalar().substr(0, 64), "\" twice"));
    }
    if (kv.first.Scalar() == "objectName") {
      if (absl::Status s = StringField(kv.second, "objectName", &spec.object_name); !s.ok()) {
        return Bad(absl::StrCat("parameter \"objects\": entry ", index + 1, ": ", s.message()));
      }
    }
  }
  const std::string label = ObjectLabel(index, spec.object_name);
  auto fail = [&](const absl::Status& s) {
    return Bad(absl::StrCat("parameter \"objects\": ", label, ": ", s.message()));
  };
  for (const auto& kv : item) {
    const std::string& key = kv.first.Scalar();
    absl::Status s;
    if (key == "secretPath") {
      s = StringField(kv.second, key, &spec.secret_path);
    } else if (key == "secretKey") {
      s = StringField(kv.second, key, &spec.secret_key);
    } else if (key == "method") {
      s = StringField(kv.second, key, &spec.method);
    } else if (key == "encoding") {
      s = StringField(kv.second, key, &spec.encoding);
    } else if (key == "filePermission") {
      s = PermissionField(kv.second, &spec.file_permission);
    } else if (key == "secretArgs") {
      if (kv.second.IsNull()) continue;
      if (!kv.second.IsMap()) {
        s = Bad("secretArgs must be a mapping (the request's JSON body)");
      } else {
        auto v = ToJson(kv.second, 2, walk);
        if (!v.ok()) {
          s = Bad(absl::StrCat("secretArgs ", v.status().message()));
        } else {
          spec.secret_args = std::move(v->as_object());
        }
      }
    }
    // Other keys (objectName, done above, and keys this provider does not know) are ignored,
    // as yaml.v3 ignores unknown fields of Vault's struct.
    if (!s.ok()) return fail(s);
  }
  if (absl::Status s = CheckObjectName(spec.object_name); !s.ok()) return fail(s);
  if (spec.secret_path.empty()) return fail(Bad("secretPath is required"));
  if (spec.method.empty()) spec.method = "GET";
  if (spec.method != "GET" && spec.method != "PUT" && spec.method != "POST") {
    return fail(Bad("method must be GET, PUT or POST"));
  }
  if (!spec.encoding.empty() && !absl::EqualsIgnoreCase(spec.encoding, "utf-8") &&
      !absl::EqualsIgnoreCase(spec.encoding, "base64") &&
      !absl::EqualsIgnoreCase(spec.encoding, "hex")) {
    return fail(Bad("invalid encoding type. Should be utf-8, base64, or hex"));
  }
  if (spec.secret_args) {
    auto body = tmpl::EncodeJson(json::value(*spec.secret_args), false, kMaxSecretArgsBytes);
    if (!body.ok()) {
      return fail(
          Bad(absl::StrCat("secretArgs are larger than ", kMaxSecretArgsBytes, " bytes as JSON")));
    }
  }
  // The canonical configuration: what the version hashes besides the content.
  json::object canonical;
  canonical["objectName"] = spec.object_name;
  canonical["secretPath"] = spec.secret_path;
  canonical["secretKey"] = spec.secret_key;
  canonical["method"] = spec.method;
  canonical["encoding"] = spec.encoding;
  canonical["filePermission"] = spec.file_permission;
  if (spec.secret_args) canonical["secretArgs"] = *spec.secret_args;
  auto encoded = tmpl::EncodeJson(json::value(std::move(canonical)), false, 1 << 20);
  if (!encoded.ok()) return fail(Bad("cannot be encoded"));
  spec.canonical = std::move(*encoded);
  return spec;
}

absl::StatusOr<uint32_t> ParsePermission(std::string_view text) {
  std::string_view t = Sv(absl::StripAsciiWhitespace(Av(text)));
  uint32_t mode = 0;
  if (t.empty() || t.size() > 10 ||
      !std::all_of(t.begin(), t.end(),
                   [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }) ||
      !absl::SimpleAtoi(Av(t), &mode) || mode > 0777) {
    return Bad("the mount request's permission must be a decimal file mode from 0 to 511");
  }
  return mode;
}

// The driver's serviceAccount.tokens: {"<audience>": {"token": "...", "expirationTimestamp":
// "..."}}; the token for `audience`, or empty.
absl::StatusOr<std::string> TokenForAudience(std::string_view tokens_json,
                                             std::string_view audience) {
  auto tokens = core::ParseObject(tokens_json, 4);
  if (!tokens.ok()) {
    return Bad(absl::StrCat("failed to unmarshal service account tokens (",
                            Av(kServiceAccountTokens), "): not a JSON object of audiences"));
  }
  for (const auto& kv : *tokens) {
    if (!kv.value().is_object()) {
      return Bad(absl::StrCat("failed to unmarshal service account tokens (",
                              Av(kServiceAccountTokens),
                              "): an audience's entry is not an object"));
    }
    const json::object& entry = kv.value().as_object();
    for (std::string_view field : {"token", "expirationTimestamp"}) {
      auto it = entry.find(field);
      if (it != entry.end() && !it->value().is_string() && !it->value().is_null()) {
        return Bad(absl::StrCat("failed to unmarshal service account tokens (",
                                Av(kServiceAccountTokens), "): ", Av(field), " is not a string"));
      }
    }
  }
  auto it = tokens->find(audience);
  if (it == tokens->end()) return std::string();
  const json::object& entry = it->value().as_object();
  auto token = entry.find("token");
  if (token == entry.end() || !token->value().is_string()) return std::string();
  return std::string(token->value().as_string());
}

}  // namespace

absl::Status CheckObjectName(std::string_view name) {
  if (name.empty()) return Bad("objectName is required");
  if (name.size() > kMaxFieldBytes) {
    return Bad(absl::StrCat("objectName is longer than ", kMaxFieldBytes, " bytes"));
  }
  if (HasControl(name)) return Bad("objectName holds a control character");
  if (name.front() == '/') return Bad("objectName must be a relative path");
  if (name.substr(0, 2) == "..") return Bad("objectName must not start with \"..\"");
  for (absl::string_view element : absl::StrSplit(Av(name), '/')) {
    if (element.empty() || element == "." || element == "..") {
      return Bad("objectName must not hold an empty, \".\" or \"..\" path element");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ObjectSpec>> ParseObjects(std::string_view yaml) {
  if (yaml.size() > kMaxObjectsYamlBytes) {
    return Bad(
        absl::StrCat("parameter \"objects\" is larger than ", kMaxObjectsYamlBytes, " bytes"));
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::DeepRecursion&) {
    return Bad("parameter \"objects\" is not valid YAML: nested too deeply");
  } catch (const YAML::Exception& e) {
    // The mark only: yaml-cpp's message can quote a character of the text (review finding),
    // which may be part of a secretArgs value.
    return Bad(absl::StrCat("parameter \"objects\" is not valid YAML: line ", e.mark.line + 1,
                            ", column ", e.mark.column + 1));
  } catch (const std::exception&) {
    return Bad("parameter \"objects\" is not valid YAML");
  }
  std::vector<ObjectSpec> objects;
  if (root.IsNull()) return objects;
  if (!root.IsSequence()) {
    return Bad("parameter \"objects\" must be a YAML list of objects (\"- objectName: ...\")");
  }
  if (root.size() > kMaxObjects) {
    return Bad(absl::StrCat("parameter \"objects\" lists more than ", kMaxObjects, " objects"));
  }
  Walk walk;
  try {
    for (size_t i = 0; i < root.size(); ++i) {
      auto spec = ParseObject(root[i], i, walk);
      if (!spec.ok()) return spec.status();
      objects.push_back(std::move(*spec));
    }
  } catch (const std::exception&) {
    return Bad("parameter \"objects\" could not be read");
  }
  return objects;
}

absl::StatusOr<MountParams> ParseMountRequest(std::string_view attributes,
                                              std::string_view target_path,
                                              std::string_view permission) {
  if (attributes.size() > kMaxAttributesBytes) {
    return Bad(absl::StrCat("the mount request's attributes are larger than ", kMaxAttributesBytes,
                            " bytes"));
  }
  auto parsed = core::ParseObject(attributes, 4);
  if (!parsed.ok()) {
    return Bad("the mount request's attributes are not a JSON object of strings");
  }
  // map[string]string, as Vault reads it: every value a string (null reads as empty).
  auto get = [&](std::string_view key) -> std::string {
    auto it = parsed->find(key);
    if (it == parsed->end() || !it->value().is_string()) return "";
    return std::string(it->value().as_string());
  };
  for (const auto& kv : *parsed) {
    if (!kv.value().is_string() && !kv.value().is_null()) {
      const std::string_view key = kv.key();
      return Bad(absl::StrCat("parameter \"", key.size() <= 128 ? Av(key) : "(long name)",
                              "\" must be a string"));
    }
  }

  MountParams p;
  p.target_path = std::string(target_path);
  if (p.target_path.empty()) return Bad("missing target path field");
  if (target_path.size() > kMaxFieldBytes || HasControl(target_path)) {
    return Bad("the mount request's target path is not a usable path");
  }
  auto mode = ParsePermission(permission);
  if (!mode.ok()) return mode.status();
  p.permission = *mode;

  p.role_name = get("roleName");
  p.vault_address = get("vaultAddress");
  p.vault_namespace = get("vaultNamespace");
  p.tls.ca_cert = get("vaultCACertPath");
  p.tls.ca_directory = get("vaultCADirectory");
  p.tls.server_name = get("vaultTLSServerName");
  p.tls.client_cert = get("vaultTLSClientCertPath");
  p.tls.client_key = get("vaultTLSClientKeyPath");
  p.audience = get("audience");
  const bool k8s_set = parsed->contains("vaultKubernetesMountPath");
  const bool auth_set = parsed->contains("vaultAuthMountPath");
  if (k8s_set && auth_set) {
    return Bad("cannot set both vaultKubernetesMountPath and vaultAuthMountPath");
  }
  p.auth_mount_path = get(k8s_set ? "vaultKubernetesMountPath" : "vaultAuthMountPath");
  if (parsed->contains("vaultSkipTLSVerify")) {
    bool skip = false;
    if (!ParseGoBool(get("vaultSkipTLSVerify"), &skip)) {
      return Bad("parameter \"vaultSkipTLSVerify\" must be true or false");
    }
    p.tls.skip_verify = skip;
  }
  struct Field {
    std::string_view name;
    const std::string* value;
  };
  for (const Field& f :
       {Field{"roleName", &p.role_name}, Field{"vaultAddress", &p.vault_address},
        Field{"vaultNamespace", &p.vault_namespace}, Field{"vaultCACertPath", &p.tls.ca_cert},
        Field{"vaultCADirectory", &p.tls.ca_directory},
        Field{"vaultTLSServerName", &p.tls.server_name},
        Field{"vaultTLSClientCertPath", &p.tls.client_cert},
        Field{"vaultTLSClientKeyPath", &p.tls.client_key}, Field{"audience", &p.audience},
        Field{k8s_set ? "vaultKubernetesMountPath" : "vaultAuthMountPath", &p.auth_mount_path}}) {
    if (f.value->size() > kMaxFieldBytes || HasControl(*f.value)) {
      return Bad(absl::StrCat("parameter \"", Av(f.name),
                              "\" is too long or holds a control "
                              "character"));
    }
  }
  if ((!p.tls.client_cert.empty()) != (!p.tls.client_key.empty())) {
    return Bad("vaultTLSClientCertPath and vaultTLSClientKeyPath must be set together");
  }

  p.pod.name = get(kPodName);
  p.pod.uid = get(kPodUid);
  p.pod.namespace_ = get(kPodNamespace);
  p.pod.service_account_name = get(kServiceAccountName);
  for (const Field& f : {Field{kPodName, &p.pod.name}, Field{kPodNamespace, &p.pod.namespace_},
                         Field{kServiceAccountName, &p.pod.service_account_name}}) {
    if (!f.value->empty() && !IsKubernetesName(*f.value)) {
      return Bad(absl::StrCat("parameter \"", Av(f.name), "\" is not a Kubernetes name"));
    }
  }
  if (!p.pod.uid.empty() && !IsUid(p.pod.uid)) {
    return Bad(absl::StrCat("parameter \"", Av(kPodUid), "\" is not a UID"));
  }
  if (const std::string tokens = get(kServiceAccountTokens); !tokens.empty()) {
    auto token = TokenForAudience(tokens, p.audience.empty() ? kDefaultAudience : p.audience);
    if (!token.ok()) return token.status();
    p.pod.service_account_token = std::move(*token);
  }

  if (p.role_name.empty()) return Bad("missing 'roleName' in SecretProviderClass definition");
  auto objects = ParseObjects(get("objects"));
  if (!objects.ok()) return objects.status();
  p.objects = std::move(*objects);
  if (p.objects.empty()) {
    return Bad("no secrets configured - the provider will not read any secret material");
  }
  std::set<std::string_view> names;
  std::vector<std::string> duplicates;
  for (const ObjectSpec& o : p.objects) {
    if (!names.insert(o.object_name).second) duplicates.push_back(o.object_name);
  }
  if (!duplicates.empty()) {
    return Bad(absl::StrCat(
        "each `objectName` within a SecretProviderClass must be unique, but the following keys "
        "were duplicated: ",
        absl::StrJoin(duplicates, ", ")));
  }
  return p;
}

}  // namespace strongroom::csi
