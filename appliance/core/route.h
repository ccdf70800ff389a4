// The route table every backend declares (Vault's framework.Path, as data): each route is a path
// pattern relative to the mount, the operations it takes and a short description. The core
// refuses a request no route of its backend matches before the backend runs (404 "unsupported
// path"; a known path with an operation it does not take: 405), and sys/internal/specs/openapi is
// generated from the same tables, so the documented API and the accepted one are one list.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "appliance/core/request.h"

namespace strongroom::core {

// Operations a route takes (a bit set). Create and update are one: Vault's POST/PUT, turned into
// create or update by the existence check.
enum RouteOp : uint8_t {
  kRouteRead = 1 << 0,
  kRouteList = 1 << 1,
  kRouteWrite = 1 << 2,
  kRoutePatch = 1 << 3,
  kRouteDelete = 1 << 4,
};

// A body (or query) field of a route, for the OpenAPI document. `type` is an OpenAPI type:
// "string", "integer", "boolean", "object", "array" (of strings).
struct RouteField {
  std::string_view name;
  std::string_view type;
  std::string_view description;
  bool required = false;
};

// `pattern`: segments separated by '/'; a literal segment matches itself, "{name}" one non-empty
// segment, "{name*}" (at most one per pattern) one or more segments. The empty pattern is the
// mount itself. The first route of a table that matches is the one that counts.
// A request path may end in one '/' more than the pattern (Vault's LIST form "role/").
struct Route {
  std::string_view pattern;
  uint8_t ops = 0;
  std::string_view summary;
  std::span<const RouteField> fields = {};
};

// The route of `table` that `rel_path` matches, or nullptr.
const Route* FindRoute(std::span<const Route> table, std::string_view rel_path);

// The router's check before a backend runs: NotFound("unsupported path") when no route matches,
// Unimplemented (405) when the route does not take `op` (kHead counts as a read).
absl::Status CheckRoute(std::span<const Route> table, std::string_view rel_path, Operation op);

// The route bit of a request operation.
uint8_t RouteOpOf(Operation op);

// The names of a pattern's parameters, in order ("users/{username}" -> {"username"}).
std::vector<std::string> RouteParams(std::string_view pattern);
// The pattern as an OpenAPI path below the mount ("{path*}" -> "{path}").
std::string RouteOpenApiPath(std::string_view pattern);

}  // namespace strongroom::core
