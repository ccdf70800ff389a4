// The metrics strongroom's broker keeps on its hot paths, declared in one place (as the worker
// protocol is): name, help and label values of each. Names are Vault's where Vault has the same
// measure (core.handle_request, core.response_status_code, audit.log_request, ...); the others
// are strongroom's own (hsm.*, audit.records, ...). docs/operations.md lists them all, with
// the ones collectors report at each scrape (seal, Raft, tokens, workers).
//
// Latencies are histograms in milliseconds (Vault's timers are milliseconds too, reported by
// Vault as summaries).
#pragma once

#include <cstddef>
#include <string_view>

#include "base/metrics.h"

namespace strongroom::metrics {

// The process's registry: the catalog below (registered on first use of either) and every
// collector live in it.
Registry& DefaultRegistry();

// Route classes: what a request's path reached, bounded by the engine table (never a path).
//   sys          sys/... (the system backend and the status endpoints)
//   auth/<type>  an auth method's mount (token, approle, kubernetes, userpass; others
//                "auth/other")
//   <type>       a secrets engine's mount (kv, transit, identity, cubbyhole; others "other")
//   none         no mount: refused before routing (sealed, bad path, no handler)
inline constexpr std::string_view kRouteClasses[] = {
    "sys", "auth/token", "auth/approle", "auth/kubernetes", "auth/userpass", "auth/other",
    "kv",  "transit",    "identity",     "cubbyhole",       "none",          "other"};

// HTTP status codes kept apart; any other is "other" (sys/health's codes are configurable).
inline constexpr std::string_view kStatusCodes[] = {
    "200", "204", "307", "400", "403", "404", "405", "409", "412", "413",  "415",
    "429", "431", "472", "473", "474", "500", "501", "502", "503", "other"};

// HSM operations and the PKCS#11 mechanisms they use ("none": C_GenerateRandom).
inline constexpr std::string_view kHsmOperations[] = {
    "encrypt",      "decrypt",           "sign",   "wrap", "unwrap",
    "generate_key", "generate_key_pair", "random", "other"};
inline constexpr std::string_view kHsmMechanisms[] = {"CKM_AES_GCM",
                                                      "CKM_AES_KEY_WRAP_PAD",
                                                      "CKM_SHA_1_HMAC",
                                                      "CKM_SHA224_HMAC",
                                                      "CKM_SHA256_HMAC",
                                                      "CKM_SHA384_HMAC",
                                                      "CKM_SHA512_HMAC",
                                                      "CKM_SHA3_224_HMAC",
                                                      "CKM_SHA3_256_HMAC",
                                                      "CKM_SHA3_384_HMAC",
                                                      "CKM_SHA3_512_HMAC",
                                                      "CKM_ECDSA",
                                                      "CKM_EDDSA",
                                                      "CKM_RSA_PKCS",
                                                      "CKM_RSA_PKCS_PSS",
                                                      "CKM_RSA_PKCS_OAEP",
                                                      "CKM_AES_KEY_GEN",
                                                      "CKM_GENERIC_SECRET_KEY_GEN",
                                                      "CKM_EC_KEY_PAIR_GEN",
                                                      "CKM_EC_EDWARDS_KEY_PAIR_GEN",
                                                      "CKM_RSA_PKCS_KEY_PAIR_GEN",
                                                      "none",
                                                      "other"};

// The index of `value` in `list`, or of its last entry (the catch-all) when it is not there.
template <size_t N>
size_t IndexIn(const std::string_view (&list)[N], std::string_view value) {
  for (size_t i = 0; i < N; ++i) {
    if (list[i] == value) return i;
  }
  return N - 1;
}

struct Catalog {
  // Requests, counted by the broker as it answers its workers (broker/ipc_server.cc): time from
  // taking the request up to its answer, by route class and status code.
  Family<Histogram>& handle_request;      // core.handle_request {route, code}
  Family<Counter>& response_status_code;  // core.response_status_code {code, type}
  // Audit (core/audit.cc, core/audit_file.cc).
  Histogram& audit_log_request;         // audit.log_request
  Histogram& audit_log_response;        // audit.log_response
  Counter& audit_log_request_failure;   // audit.log_request_failure
  Counter& audit_log_response_failure;  // audit.log_response_failure
  Counter& audit_records;               // audit.records
  Counter& audit_bytes;                 // audit.bytes
  Histogram& audit_fsync;               // audit.fsync
  Counter& audit_sink_failure;          // audit.sink_failure
  // HSM (hsm/token.cc).
  Family<Histogram>& hsm_operation;  // hsm.operation {operation, mechanism}
  Gauge& hsm_sessions_in_use;        // hsm.sessions.in_use
  Gauge& hsm_sessions_idle;          // hsm.sessions.idle
  Counter& hsm_sessions_opened;      // hsm.sessions.opened
};

// The catalog, registered in DefaultRegistry() on first use (never destroyed).
Catalog& Get();

// The HTTP status class label of Vault's response_status_code ("2xx", ...; "other").
std::string_view StatusClass(unsigned status);
// Its index in the `type` label's values (1xx, 2xx, 3xx, 4xx, 5xx, other).
size_t StatusClassIndex(unsigned status);
// The kStatusCodes index of `status`.
size_t StatusIndex(unsigned status);

}  // namespace strongroom::metrics
