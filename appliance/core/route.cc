#include "appliance/core/route.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "appliance/core/backend.h"

namespace strongroom::core {
namespace {

absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool IsParam(absl::string_view seg) {
  return seg.size() >= 2 && seg.front() == '{' && seg.back() == '}';
}
bool IsRest(absl::string_view seg) { return IsParam(seg) && seg[seg.size() - 2] == '*'; }

bool SegmentMatches(absl::string_view pattern_seg, absl::string_view seg) {
  if (IsParam(pattern_seg)) return !seg.empty();
  return pattern_seg == seg;
}

// Segment by segment, no recursion or backtracking: the one rest parameter a pattern may have
// takes what its prefix and its suffix (fixed numbers of segments) leave, at least one segment.
bool Matches(std::string_view pattern, std::string_view path) {
  if (pattern.empty() || path.empty()) return pattern.empty() && path.empty();
  const std::vector<absl::string_view> ps = absl::StrSplit(Sv(pattern), '/');
  const std::vector<absl::string_view> ss = absl::StrSplit(Sv(path), '/');
  size_t rest = ps.size();
  for (size_t i = 0; i < ps.size(); ++i) {
    if (IsRest(ps[i])) rest = i;
  }
  if (rest == ps.size()) {
    if (ps.size() != ss.size()) return false;
    for (size_t i = 0; i < ps.size(); ++i) {
      if (!SegmentMatches(ps[i], ss[i])) return false;
    }
    return true;
  }
  const size_t suffix = ps.size() - rest - 1;
  if (ss.size() < rest + 1 + suffix) return false;
  for (size_t i = 0; i < rest; ++i) {
    if (!SegmentMatches(ps[i], ss[i])) return false;
  }
  for (size_t i = 0; i < suffix; ++i) {
    if (!SegmentMatches(ps[rest + 1 + i], ss[ss.size() - suffix + i])) return false;
  }
  for (size_t i = rest; i < ss.size() - suffix; ++i) {
    if (ss[i].empty()) return false;
  }
  return true;
}

}  // namespace

uint8_t RouteOpOf(Operation op) {
  switch (op) {
    case Operation::kRead:
    case Operation::kHead:
      return kRouteRead;
    case Operation::kList:
      return kRouteList;
    case Operation::kCreate:
    case Operation::kUpdate:
      return kRouteWrite;
    case Operation::kPatch:
      return kRoutePatch;
    case Operation::kDelete:
      return kRouteDelete;
  }
  return 0;
}

const Route* FindRoute(std::span<const Route> table, std::string_view rel_path) {
  std::string_view path = rel_path;
  // One trailing slash is the LIST spelling ("role/"); the mount root stays "".
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  for (const Route& r : table) {
    if (Matches(r.pattern, path)) return &r;
  }
  return nullptr;
}

absl::Status CheckRoute(std::span<const Route> table, std::string_view rel_path, Operation op) {
  const Route* r = FindRoute(table, rel_path);
  if (r == nullptr) return absl::NotFoundError("unsupported path");
  if ((r->ops & RouteOpOf(op)) == 0) return UnsupportedOperation();
  return absl::OkStatus();
}

absl::StatusOr<Response> HandleRouted(Backend& backend, Request& req) {
  const std::span<const Route> routes = backend.Routes();
  if (!routes.empty()) {
    const Route* r = FindRoute(routes, req.rel_path);
    if (r == nullptr) return backend.UnmatchedRoute(req);
    if ((r->ops & RouteOpOf(req.operation)) == 0) return UnsupportedOperation();
  }
  return backend.Handle(req);
}

std::vector<std::string> RouteParams(std::string_view pattern) {
  std::vector<std::string> out;
  for (absl::string_view seg : absl::StrSplit(Sv(pattern), '/')) {
    if (!IsParam(seg)) continue;
    absl::string_view name = seg.substr(1, seg.size() - 2);
    if (!name.empty() && name.back() == '*') name.remove_suffix(1);
    out.emplace_back(name);
  }
  return out;
}

std::string RouteOpenApiPath(std::string_view pattern) {
  std::vector<std::string> segs;
  for (absl::string_view seg : absl::StrSplit(Sv(pattern), '/')) {
    if (IsRest(seg)) {
      segs.push_back(absl::StrCat(seg.substr(0, seg.size() - 2), "}"));
    } else {
      segs.emplace_back(seg);
    }
  }
  return absl::StrJoin(segs, "/");
}

}  // namespace strongroom::core
