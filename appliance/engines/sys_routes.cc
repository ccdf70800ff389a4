// The system backend's route table: every sys/ path the appliance serves, those the core answers
// before authentication (init, seal-status, unseal, health, leader, raft join, the UI mount
// listing) included, so the OpenAPI document lists them all. The core refuses a sys/ request
// that no row matches (core/route.h).
#include "appliance/engines/sys_backend.h"

namespace strongroom::engines {
namespace {

using core::kRouteDelete;
using core::kRouteList;
using core::kRouteRead;
using core::kRouteWrite;
using core::Route;
using core::RouteField;

constexpr RouteField kMountFields[] = {
    {"type", "string", "The type of the backend (kv, kv-v2, transit, ...).", true},
    {"description", "string", "User-friendly description for this mount."},
    {"config", "object", "Configuration for this mount, such as default_lease_ttl."},
    {"options", "object", "The options to pass into the backend (e.g. version)."},
    {"local", "boolean", "Mark the mount as a local mount."},
    {"seal_wrap", "boolean", "Whether to turn on seal wrapping for the mount."},
    {"external_entropy_access", "boolean", "Whether to give the mount access to external entropy."},
};
constexpr RouteField kAuthFields[] = {
    {"type", "string", "The type of the auth method (approle, kubernetes, userpass).", true},
    {"description", "string", "User-friendly description for this auth method."},
    {"local", "boolean", "Mark the auth method as local."},
};
constexpr RouteField kTuneFields[] = {
    {"default_lease_ttl", "string", "The default lease TTL of the mount."},
    {"max_lease_ttl", "string", "The maximum lease TTL of the mount."},
    {"description", "string", "User-friendly description for this mount."},
    {"listing_visibility", "string", "Whether to show the mount in the UI listing (\"unauth\")."},
    {"options", "object", "The options to pass into the backend."},
};
constexpr RouteField kPolicyFields[] = {
    {"policy", "string", "The rules of the policy (HCL, or base64-encoded HCL).", true},
};
constexpr RouteField kCapabilitiesFields[] = {
    {"paths", "array", "Paths on which capabilities are being queried."},
    {"token", "string", "Token for which capabilities are being queried (capabilities)."},
    {"accessor", "string", "Accessor of the token (capabilities-accessor)."},
};
constexpr RouteField kAuditFields[] = {
    {"type", "string", "The type of the audit device (file).", true},
    {"description", "string", "User-friendly description for the audit device."},
    {"options", "object", "Configuration options for the audit device (file_path, ...)."},
    {"local", "boolean", "Mark the device as local."},
};
constexpr RouteField kInitFields[] = {
    {"recovery_shares", "integer", "Number of recovery key shares."},
    {"recovery_threshold", "integer", "Number of recovery key shares needed to recover."},
};
constexpr RouteField kUnsealFields[] = {
    {"key", "string", "A recovery key share (hex or base64)."},
    {"reset", "boolean", "Discard the unseal progress."},
};
constexpr RouteField kRemountFields[] = {
    {"from", "string", "The previous mount point.", true},
    {"to", "string", "The new mount point.", true},
};
constexpr RouteField kJoinTokenFields[] = {
    {"node_id", "string", "The node id the credential is for.", true},
    {"ttl", "string", "How long the credential is valid (default 15m, at most 24h)."},
};
constexpr RouteField kRaftJoinFields[] = {
    {"leader_api_addr", "string", "The API address of the leader to join."},
    {"join_token", "string", "The join credential minted for this node."},
};
constexpr RouteField kRemovePeerFields[] = {
    {"server_id", "string", "The id of the server to remove.", true},
};
constexpr RouteField kAuditHashFields[] = {
    {"input", "string", "The input to hash with the audit device's salt.", true},
};
constexpr RouteField kActivityFields[] = {
    {"start_time", "string", "Start of the query interval (RFC 3339)."},
    {"end_time", "string", "End of the query interval (RFC 3339)."},
    {"current_billing_period", "boolean", "Query the current billing period."},
};
constexpr RouteField kCountersConfigFields[] = {
    {"enabled", "string", "Enable or disable client counting: enable, disable, or default."},
    {"retention_months", "integer", "Number of months of client data to retain."},
    {"default_report_months", "integer", "Number of months to report without a start date."},
};

constexpr RouteField kWrappingTokenFields[] = {
    {"token", "string", "The wrapping token (else the request's own token)."}};

constexpr Route kSystemRoutes[] = {
    // Answered by the core before authentication (core.cc, HandleSysRaw and UiMounts).
    {"init", kRouteRead | kRouteWrite, "Initialize a new vault, or read whether it is.",
     kInitFields},
    {"seal-status", kRouteRead, "Check the seal status of the vault."},
    {"unseal", kRouteWrite, "Unseal the vault with a recovery key share.", kUnsealFields},
    {"health", kRouteRead, "Returns the health status of the vault."},
    {"leader", kRouteRead, "Returns the high availability status and current leader."},
    {"storage/raft/join", kRouteWrite, "Join a Raft cluster.", kRaftJoinFields},
    {"internal/ui/mounts", kRouteRead, "Lists the mounts the caller may see."},
    {"internal/ui/mounts/{path*}", kRouteRead, "Information about the mount owning a path."},
    // The system backend (sys_backend.cc).
    {"mounts", kRouteRead, "List the mounted secrets engines."},
    {"mounts/{path*}/tune", kRouteRead | kRouteWrite, "Tune the configuration of a mount.",
     kTuneFields},
    {"mounts/{path*}", kRouteRead | kRouteWrite | kRouteDelete,
     "Enable, read or disable a secrets engine.", kMountFields},
    {"remount", kRouteWrite, "Move a secrets engine to a new path.", kRemountFields},
    {"remount/status/{migration_id}", kRouteRead, "The status of a remount."},
    {"rotate", kRouteWrite, "Rotate the barrier keyring."},
    {"rotate/keyring", kRouteWrite, "Rotate the barrier keyring."},
    {"rotate/keyring/status", kRouteRead, "The barrier keyring's active term and install time."},
    {"key-status", kRouteRead, "The barrier keyring's active term and install time."},
    {"storage/raft/join-token", kRouteWrite, "Mint a single-use join credential for a node.",
     kJoinTokenFields},
    {"storage/raft/snapshot", kRouteRead | kRouteWrite, "Save or restore a snapshot."},
    {"storage/raft/snapshot-force", kRouteWrite, "Restore a snapshot of another cluster."},
    {"storage/raft/configuration", kRouteRead, "The Raft cluster's configuration."},
    {"storage/raft/remove-peer", kRouteWrite, "Remove a peer from the Raft cluster.",
     kRemovePeerFields},
    {"storage/raft/autopilot/state", kRouteRead, "The Raft cluster's autopilot state."},
    {"ha-status", kRouteRead, "The nodes of the cluster."},
    {"policy", kRouteRead | kRouteList, "List the ACL policies."},
    {"policy/{name}", kRouteRead | kRouteWrite | kRouteDelete,
     "Read, write or delete an ACL policy.", kPolicyFields},
    {"policies/acl", kRouteList, "List the ACL policies."},
    {"policies/acl/{name}", kRouteRead | kRouteWrite | kRouteDelete,
     "Read, write or delete an ACL policy.", kPolicyFields},
    {"auth", kRouteRead, "List the enabled auth methods."},
    {"auth/{path*}/tune", kRouteRead | kRouteWrite, "Tune the configuration of an auth method.",
     kTuneFields},
    {"auth/{path*}", kRouteWrite | kRouteDelete, "Enable or disable an auth method.", kAuthFields},
    {"capabilities", kRouteWrite, "The capabilities of a token on paths.", kCapabilitiesFields},
    {"capabilities-self", kRouteWrite, "The capabilities of the caller's token on paths.",
     kCapabilitiesFields},
    {"capabilities-accessor", kRouteWrite, "The capabilities of a token, by accessor, on paths.",
     kCapabilitiesFields},
    {"audit", kRouteRead, "List the enabled audit devices."},
    {"audit/public-key", kRouteRead | kRouteWrite | kRouteDelete,
     "The public key that verifies the audit checkpoints."},
    {"audit/checkpoint/{node*}", kRouteRead | kRouteWrite | kRouteDelete,
     "The latest signed audit checkpoint of a node."},
    {"audit/{path*}", kRouteWrite | kRouteDelete, "Enable or disable an audit device.",
     kAuditFields},
    {"audit-hash/{path*}", kRouteWrite, "Hash a value with an audit device's salt.",
     kAuditHashFields},
    {"seal", kRouteWrite, "Seal the vault."},
    {"step-down", kRouteWrite, "Give up the active role of this node."},
    // sys_info.cc
    {"host-info", kRouteRead, "Information about the host the server runs on."},
    {"internal/counters/tokens", kRouteRead, "The number of service tokens."},
    {"internal/counters/entities", kRouteRead, "The number of identity entities."},
    {"internal/counters/activity", kRouteRead, "Client count report for a period.",
     kActivityFields},
    {"internal/counters/activity/monthly", kRouteRead, "Client count for this month."},
    {"internal/counters/config", kRouteRead | kRouteWrite, "Client count configuration.",
     kCountersConfigFields},
    {"internal/specs/openapi", kRouteRead,
     "An OpenAPI document of the mounted backends' paths visible to the caller."},
    {"config/state/sanitized", kRouteRead, "The server configuration without secrets."},
    {"version-history", kRouteList, "The versions installed, in the order they were."},
    // sys_metrics.cc (answered by the core without a token when the listener allows it)
    {"metrics", kRouteRead, "Telemetry metrics, as JSON or in Prometheus's text format."},
    // core/wrapping.cc
    {"wrapping/wrap", kRouteWrite, "Wrap the request body in a response-wrapping token."},
    {"wrapping/lookup", kRouteWrite, "The creation path, time and TTL of a wrapping token.",
     kWrappingTokenFields},
    {"wrapping/unwrap", kRouteWrite, "Unwrap a response-wrapping token (once).",
     kWrappingTokenFields},
    {"wrapping/rewrap", kRouteWrite, "Move a wrapped response to a new wrapping token.",
     kWrappingTokenFields},
};

}  // namespace

std::span<const core::Route> SystemRoutes() { return kSystemRoutes; }

}  // namespace strongroom::engines
