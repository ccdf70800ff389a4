#include "cli/csi/kube_token.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "appliance/core/json.h"
#include "base/strings.h"
#include "client/http.h"

namespace strongroom::csi {
namespace {

constexpr size_t kMaxTokenFileBytes = 64 * 1024;
constexpr uint64_t kMaxResponseBytes = 1 << 20;

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot read the provider's service account token ",
                                               path, ": ", std::strerror(errno)));
  }
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return absl::UnavailableError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxTokenFileBytes) {
      close(fd);
      return absl::UnavailableError(absl::StrCat(path, " is larger than 64 KiB"));
    }
  }
  close(fd);
  return std::string(absl::StripAsciiWhitespace(out));
}

bool FileExists(const char* path) { return access(path, R_OK) == 0; }

// A Status object's message (bounded, the bearer and any token-like text it echoes redacted).
std::string StatusMessage(const http::Response& r, const std::string& bearer) {
  std::string message;
  auto parsed = core::ParseObject(r.body, 8);
  if (parsed.ok()) {
    if (auto it = parsed->find("message"); it != parsed->end() && it->value().is_string()) {
      message = std::string(it->value().as_string());
    }
  }
  if (message.empty()) message = r.reason;
  if (!bearer.empty()) message = absl::StrReplaceAll(message, {{bearer, "[redacted]"}});
  if (message.size() > 512) message = message.substr(0, 512) + "...";
  for (char& c : message) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return message;
}

}  // namespace

std::optional<KubeApiConfig> InClusterConfig() {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  const std::string token = absl::StrCat(kServiceAccountDir, "/token");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0' ||
      !FileExists(token.c_str())) {
    return std::nullopt;
  }
  KubeApiConfig c;
  const std::string_view h = host;
  c.host = absl::StrCat("https://", h.find(':') != std::string_view::npos ? "[" : "", Av(h),
                        h.find(':') != std::string_view::npos ? "]" : "", ":", port);
  c.ca_file = absl::StrCat(kServiceAccountDir, "/ca.crt");
  c.token_file = token;
  return c;
}

std::string TokenRequester::Body(const PodInfo& pod, std::string_view audience) {
  json::array audiences;
  if (!audience.empty()) audiences.emplace_back(json::string(audience));
  json::object spec{
      {"audiences", std::move(audiences)},
      {"expirationSeconds", kTokenRequestSeconds},
      {"boundObjectRef",
       json::object{{"kind", "Pod"}, {"apiVersion", "v1"}, {"name", pod.name}, {"uid", pod.uid}}}};
  json::object body{{"apiVersion", "authentication.k8s.io/v1"},
                    {"kind", "TokenRequest"},
                    {"spec", std::move(spec)}};
  return core::Serialize(body);
}

absl::StatusOr<std::string> TokenRequester::ServiceAccountToken(const PodInfo& pod,
                                                                std::string_view audience) {
  if (pod.namespace_.empty() || pod.service_account_name.empty() || pod.name.empty() ||
      pod.uid.empty()) {
    return absl::InvalidArgumentError(
        "the driver passed no pod information (pod name, uid, namespace and service account): "
        "set podInfoOnMount on the CSIDriver");
  }
  const std::string who = absl::StrCat("service account ", pod.namespace_, "/",
                                       pod.service_account_name, " (pod ", pod.name, ")");
  auto url = http::ParseUrl(config_.host, "the Kubernetes API address", /*allow_http=*/false);
  if (!url.ok()) return url.status();
  auto bearer = ReadSmallFile(config_.token_file);
  if (!bearer.ok()) return bearer.status();
  if (bearer->empty() || !http::IsPrintableAscii(*bearer)) {
    return absl::UnavailableError(absl::StrCat("the provider's own service account token ",
                                               config_.token_file, " is empty or not printable"));
  }
  http::TlsOptions tls;
  tls.ca_file = config_.ca_file;
  http::Request req;
  req.method = "POST";
  // Both names are Kubernetes names (params.cc checks them): nothing to escape.
  req.target = absl::StrCat("/api/v1/namespaces/", pod.namespace_, "/serviceaccounts/",
                            pod.service_account_name, "/token");
  req.headers = {{"Authorization", absl::StrCat("Bearer ", *bearer)},
                 {"Content-Type", "application/json"},
                 {"Accept", "application/json"}};
  req.body = Body(pod, audience);
  http::Limits limits;
  limits.max_body_bytes = kMaxResponseBytes;
  auto r = http::Fetch(*url, tls, req, config_.timeout, limits, "Kubernetes TokenRequest");
  if (!r.ok()) {
    return absl::Status(r.status().code(),
                        absl::StrCat("requesting a token for ", who,
                                     " from the Kubernetes API: ", r.status().message()));
  }
  if (r->status < 200 || r->status > 299) {
    return absl::PermissionDeniedError(absl::StrCat("requesting a token for ", who,
                                                    " from the Kubernetes API: ", r->status, " ",
                                                    StatusMessage(*r, *bearer)));
  }
  auto parsed = core::ParseObject(r->body, 16);
  std::string token;
  if (parsed.ok()) {
    auto status = parsed->find("status");
    if (status != parsed->end() && status->value().is_object()) {
      const json::object& s = status->value().as_object();
      if (auto t = s.find("token"); t != s.end() && t->value().is_string()) {
        token = std::string(t->value().as_string());
      }
    }
  }
  if (token.empty()) {
    return absl::UnavailableError(absl::StrCat("requesting a token for ", who,
                                               " from the Kubernetes API: the answer holds no "
                                               "token"));
  }
  return token;
}

}  // namespace strongroom::csi
