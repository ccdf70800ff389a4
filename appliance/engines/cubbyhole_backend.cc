#include "appliance/engines/cubbyhole_backend.h"

#include "appliance/core/core.h"
#include "appliance/engines/routes.h"
#include "base/status_macros.h"

namespace strongroom::engines {
namespace {

using core::Operation;
using core::Request;
using core::Response;

class CubbyholeBackend final : public core::Backend {
 public:
  explicit CubbyholeBackend(core::Core* core) : core_(core) {}

  std::span<const core::Route> Routes() const override { return CubbyholeRoutes(); }

  absl::StatusOr<bool> Exists(const Request& req) override {
    if (req.token == nullptr || req.rel_path.empty() || req.token->IsBatch()) return false;
    ASSIGN_OR_RETURN(auto v, core_->tokens().CubbyholeGet(*req.token, req.rel_path));
    return v.has_value();
  }

  absl::StatusOr<Response> Handle(Request& req) override {
    if (req.token == nullptr) return absl::PermissionDeniedError("permission denied");
    core::TokenStore& tokens = core_->tokens();
    const std::string& key = req.rel_path;
    switch (req.operation) {
      case Operation::kList: {
        std::string prefix = key;
        if (!prefix.empty() && prefix.back() != '/') prefix += '/';
        ASSIGN_OR_RETURN(auto keys, tokens.CubbyholeList(*req.token, prefix));
        if (keys.empty()) return absl::NotFoundError("");
        core::json::object d;
        d["keys"] = core::ToArray(keys);
        return Response::Data(std::move(d));
      }
      case Operation::kRead: {
        if (key.empty()) return core::UnsupportedOperation();
        ASSIGN_OR_RETURN(auto raw, tokens.CubbyholeGet(*req.token, key));
        if (!raw) return absl::NotFoundError("");
        ASSIGN_OR_RETURN(auto data, core::ParseObject(*raw));
        return Response::Data(std::move(data));
      }
      case Operation::kCreate:
      case Operation::kUpdate: {
        if (key.empty()) return absl::InvalidArgumentError("missing path");
        if (req.data.empty()) return absl::InvalidArgumentError("missing data fields");
        RETURN_IF_ERROR(tokens.CubbyholePut(*req.token, key, core::Serialize(req.data)));
        return Response::Empty();
      }
      case Operation::kDelete:
        if (key.empty()) return absl::InvalidArgumentError("missing path");
        RETURN_IF_ERROR(tokens.CubbyholeDelete(*req.token, key));
        return Response::Empty();
      default:
        return core::UnsupportedOperation();
    }
  }

 private:
  core::Core* core_;
};

}  // namespace

std::unique_ptr<core::Backend> MakeCubbyholeBackend(core::Core* core) {
  return std::make_unique<CubbyholeBackend>(core);
}

}  // namespace strongroom::engines
