// libFuzzer target for ACL evaluation (policy/acl.h). The input is split into a request and one
// or more policies:
//
//   byte 0        operation (low nibble, modulo 9), bit 4 root_protected, bit 5 wrapped,
//                 bit 6 evaluate with an identity (templates render), bit 7 add the default policy
//   byte 1        wrap TTL in minutes, when wrapped
//   line 1        the request path
//   line 2        request data as k=v&k=v (v: true/false/null/number/other string)
//   the rest      policy texts separated by lines of "---"
//
// Policies that fail to parse are skipped. Evaluation must never crash, and the answer must be
// coherent: a reason exactly when denied, the needed capability and no deny on an allowed
// non-root answer, sudo present when a root-protected path is allowed.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "policy/acl.h"
#include "policy/builtin_policies.h"
#include "policy/policy.h"

namespace {

namespace pol = strongroom::policy;

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "acl_fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

std::string_view NextLine(std::string_view& rest) {
  const size_t nl = rest.find('\n');
  const std::string_view line = rest.substr(0, nl);
  rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  return line;
}

pol::ParamValue ParseValue(std::string_view v) {
  if (v == "true") return pol::ParamValue::Bool(true);
  if (v == "false") return pol::ParamValue::Bool(false);
  if (v == "null") return pol::ParamValue::Null();
  if (!v.empty() && v.size() < 10 && v.find_first_not_of("0123456789") == std::string_view::npos) {
    return pol::ParamValue::Number(static_cast<double>(std::stol(std::string(v))));
  }
  if (v.starts_with('[')) return pol::ParamValue::List({pol::ParamValue::String(std::string(v))});
  return pol::ParamValue::String(std::string(v));
}

std::vector<pol::ParamEntry> ParseData(std::string_view line) {
  std::vector<pol::ParamEntry> out;
  while (!line.empty()) {
    const size_t amp = line.find('&');
    const std::string_view pair = line.substr(0, amp);
    line = amp == std::string_view::npos ? std::string_view() : line.substr(amp + 1);
    const size_t eq = pair.find('=');
    out.emplace_back(std::string(pair.substr(0, eq)),
                     ParseValue(eq == std::string_view::npos ? "" : pair.substr(eq + 1)));
  }
  return out;
}

pol::IdentityContext FuzzIdentity() {
  pol::IdentityContext id;
  id.entity_id = "e-1";
  id.entity_name = "agent-a";
  id.entity_metadata = {{"agent_id", "agent-a"}, {"star", "*"}, {"empty", ""}};
  pol::IdentityAlias alias;
  alias.id = "al-1";
  alias.name = "sa";
  alias.metadata = {{"service_account_name", "sa-a"}};
  id.aliases.emplace("auth_kubernetes_1", alias);
  id.groups = {{.id = "g-1", .name = "agents", .metadata = {{"region", "eu"}}}};
  return id;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t flags = data[0];
  const uint8_t ttl_minutes = data[1];
  std::string_view rest(reinterpret_cast<const char*>(data + 2), size - 2);
  const std::string_view path = NextLine(rest);
  const std::vector<pol::ParamEntry> body = ParseData(NextLine(rest));

  std::vector<pol::Policy> policies;
  int index = 0;
  while (!rest.empty()) {
    std::string_view text = rest;
    const size_t sep = rest.find("\n---\n");
    if (sep != std::string_view::npos) {
      text = rest.substr(0, sep);
      rest = rest.substr(sep + 5);
    } else {
      rest = std::string_view();
    }
    // A text starting with "#root" stands for the root policy.
    const std::string name = text.starts_with("#root") ? "root" : "p" + std::to_string(index++);
    absl::StatusOr<pol::Policy> p = pol::ParsePolicy(name, text);
    if (p.ok()) policies.push_back(*std::move(p));
  }
  if ((flags & 0x80) != 0) {
    absl::StatusOr<pol::Policy> def =
        pol::ParsePolicy(pol::kDefaultPolicyName, pol::kDefaultPolicyText);
    Check(def.ok(), "default policy parses");
    policies.push_back(*std::move(def));
  }

  const pol::IdentityContext identity = FuzzIdentity();
  absl::StatusOr<pol::Acl> acl =
      pol::Acl::Create(policies, (flags & 0x40) != 0 ? &identity : nullptr);
  if (!acl.ok()) {
    Check(acl.status().code() == absl::StatusCode::kInvalidArgument,
          "build errors are InvalidArgument");
    return 0;  // root together with other policies
  }

  const auto op = static_cast<pol::Operation>((flags & 0x0f) % 9);
  pol::AclRequest req;
  req.path = path;
  req.operation = op;
  req.data = body;
  req.root_protected = (flags & 0x10) != 0;
  if ((flags & 0x20) != 0) req.wrap_ttl = int64_t{ttl_minutes} * 60;
  const pol::AclResult r = acl->Allowed(req);

  Check(r.allowed == r.reason.empty(), "a reason exactly when denied");
  Check(r.is_root == acl->is_root(), "is_root agrees");
  if (r.allowed && !r.is_root) {
    Check((r.capabilities & pol::kCapDeny) == 0, "allowed means no deny");
    Check(!r.granting_policies.empty(), "allowed names a granting policy");
  }
  if (r.allowed && req.root_protected) Check(r.root_privs, "sudo paths need root privileges");

  const std::vector<std::string> caps = acl->Capabilities(path);
  Check(!caps.empty(), "capabilities never empty");
  if (acl->is_root()) Check(caps.size() == 1 && caps[0] == "root", "root answers root");
  // A list is looked up exactly as Capabilities() looks up, so they must agree.
  if (op == pol::Operation::kList && !acl->is_root()) {
    const bool listed = std::find(caps.begin(), caps.end(), "list") != caps.end();
    if (r.allowed) Check(listed, "allowed list implies the list capability");
    if (!listed) Check(!r.allowed, "no list capability, no list");
  }
  return 0;
}
