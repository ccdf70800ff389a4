// Kubernetes TokenReview client for the Kubernetes auth method (Vault API §5.2, login step 4):
// POST <kubernetes_host>/apis/authentication.k8s.io/v1/tokenreviews over HTTPS with the body
// Vault sends, and the answer's status. Synchronous; one connection per call; the timeout bounds
// the whole exchange (resolve, connect, TLS handshake, write, read).
//
// The TLS peer is always verified (kubernetes_ca_cert, or the system's default verify paths when
// it is empty) and so is the host name, against the certificate's DNS or IP address SANs.
// Errors never carry the reviewed token or the bearer:
//   InvalidArgument   bad kubernetes_host (http:// is refused), CA PEM without a certificate,
//                     an empty token, an empty bearer or one that is not printable ASCII
//   Unavailable       resolve/connect/TLS/read/write failures, timeouts, oversized or
//                     unparsable HTTP responses
//   PermissionDenied  401 (Vault's "lookup failed: service account unauthorized; ..."), any other
//                     non-2xx ("TokenReview failed: <code> <Status message>"), a 2xx Status
//                     object that is not Success, or a 2xx body that is not a TokenReview
// A review that the API server answered (authenticated or not, status.error or not) is OK;
// judging it (authenticated, username, uid, audiences) is the caller's business.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace strongroom::engines {

struct TokenReviewRequest {
  std::string host;    // kubernetes_host: "https://host:port", optionally with a path prefix
  std::string ca_pem;  // kubernetes_ca_cert; empty -> the system's default verify paths
  std::string bearer;  // Authorization: Bearer <bearer> (token_reviewer_jwt, or the login JWT)
  std::string token;   // the JWT under review
  std::vector<std::string> audiences;          // spec.audiences (omitted when empty)
  absl::Duration timeout = absl::Seconds(10);  // the whole exchange
};

struct TokenReviewResult {
  bool authenticated = false;          // status.authenticated
  std::string username, uid;           // status.user
  std::vector<std::string> audiences;  // status.audiences
  std::string error;                   // status.error
};

inline constexpr size_t kMaxTokenReviewResponseBytes = 1 << 20;

absl::StatusOr<TokenReviewResult> ReviewToken(const TokenReviewRequest& req);

// The request body exactly as Vault marshals it (Go encoding/json of a TokenReview with empty
// TypeMeta): {"metadata":{"creationTimestamp":null},"spec":{"token":...,"audiences":[...]},
// "status":{"user":{}}}. Exposed for tests.
std::string TokenReviewBody(const std::string& token, const std::vector<std::string>& audiences);

}  // namespace strongroom::engines
