#include "cli/csi/server.h"

#include <grpcpp/grpcpp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/log.h"
#include "base/strings.h"
#include "cli/csi/params.h"
#include "cli/csi/proto/v1alpha1/service.grpc.pb.h"

namespace strongroom::csi {
namespace {

grpc::Status ToGrpc(const absl::Status& s) {
  // absl::StatusCode and grpc::StatusCode share their numbers (both are Google's canonical
  // codes).
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

std::string PodLabel(const MountParams& p) {
  if (p.pod.namespace_.empty() && p.pod.name.empty()) return "(no pod information)";
  return absl::StrCat(p.pod.namespace_, "/", p.pod.name, " (service account ",
                      p.pod.service_account_name, ")");
}

class ProviderService final : public v1alpha1::CSIDriverProvider::Service {
 public:
  explicit ProviderService(Provider* provider) : provider_(provider) {}

  grpc::Status Version(grpc::ServerContext*, const v1alpha1::VersionRequest*,
                       v1alpha1::VersionResponse* response) override {
    response->set_version(kApiVersion);
    response->set_runtime_name(kRuntimeName);
    response->set_runtime_version(STRONGROOM_VERSION);
    return grpc::Status::OK;
  }

  grpc::Status Mount(grpc::ServerContext* context, const v1alpha1::MountRequest* request,
                     v1alpha1::MountResponse* response) override {
    auto params =
        ParseMountRequest(request->attributes(), request->target_path(), request->permission());
    if (!params.ok()) {
      LogWarn("mount refused: %s", params.status().message());
      return ToGrpc(params.status());
    }
    auto result = provider_->Mount(*params, [context] { return context->IsCancelled(); });
    if (!result.ok()) {
      LogWarn("mount for pod %s failed: %s", PodLabel(*params), result.status().message());
      return ToGrpc(result.status());
    }
    std::map<std::string, std::string> current;
    for (const auto& v : request->current_object_version()) current[v.id()] = v.version();
    std::vector<std::string> changed;
    for (const MountedObject& o : result->versions) {
      auto it = current.find(o.id);
      if (it != current.end() && it->second != o.version) changed.push_back(o.id);
      v1alpha1::ObjectVersion* v = response->add_object_version();
      v->set_id(o.id);
      v->set_version(o.version);
    }
    for (MountedFile& f : result->files) {
      v1alpha1::File* file = response->add_files();
      file->set_path(f.path);
      file->set_mode(static_cast<int32_t>(f.mode));
      file->set_contents(std::move(f.contents));
    }
    std::vector<std::string> names;
    for (const ObjectSpec& o : params->objects) names.push_back(o.object_name);
    LogInfo("mount for pod %s: %d objects [%s]%s%s%s", PodLabel(*params),
            static_cast<int>(names.size()), absl::StrJoin(names, ", "),
            result->logged_in ? ", logged in" : ", cached token",
            current.empty() ? "" : (changed.empty() ? ", unchanged" : ", changed: "),
            absl::StrJoin(changed, ", "));
    return grpc::Status::OK;
  }

 private:
  Provider* const provider_;
};

class CsiServerImpl final : public CsiServer {
 public:
  CsiServerImpl(std::string path, Provider* provider)
      : path_(std::move(path)), service_(provider) {}
  ~CsiServerImpl() override { Shutdown(absl::ZeroDuration()); }

  absl::Status Start(const ServerOptions& options) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::StrCat("unix:", path_), grpc::InsecureServerCredentials());
    builder.RegisterService(&service_);
    builder.SetMaxReceiveMessageSize(options.max_receive_bytes);
    grpc::ResourceQuota quota("strongroom-csi-provider");
    quota.SetMaxThreads(options.max_threads);
    builder.SetResourceQuota(quota);
    server_ = builder.BuildAndStart();
    if (server_ == nullptr) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", path_));
    }
    if (options.socket_group &&
        chown(path_.c_str(), static_cast<uid_t>(-1), *options.socket_group) != 0) {
      return absl::PermissionDeniedError(absl::StrCat(
          "cannot give ", path_, " the group ", *options.socket_group, ": ", std::strerror(errno)));
    }
    if (chmod(path_.c_str(), options.socket_mode) != 0) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot chmod ", path_, ": ", std::strerror(errno)));
    }
    return absl::OkStatus();
  }

  void Shutdown(absl::Duration grace) override {
    if (server_ == nullptr) return;
    server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    server_->Wait();
    server_.reset();
    struct stat st {};
    if (lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path_.c_str());
  }

 private:
  const std::string path_;
  ProviderService service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace

absl::StatusOr<std::string> SocketPathFromEndpoint(std::string_view endpoint) {
  std::string_view p = endpoint;
  if (absl::StartsWith(Av(p), "unix://")) {
    p.remove_prefix(7);
  } else if (absl::StartsWith(Av(p), "unix:")) {
    p.remove_prefix(5);
  }
  if (p.empty() || p.front() != '/') {
    return absl::InvalidArgumentError(
        "-endpoint must be unix:///absolute/path or an absolute path");
  }
  if (p.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return absl::InvalidArgumentError("-endpoint: the socket path is too long for a Unix socket");
  }
  for (char c : p) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("-endpoint holds a control character");
    }
  }
  return std::string(p);
}

absl::StatusOr<std::unique_ptr<CsiServer>> CsiServer::Start(const ServerOptions& options,
                                                            Provider* provider) {
  if (options.socket_mode != 0600 && options.socket_mode != 0660) {
    return absl::InvalidArgumentError("the socket mode must be 0600 or 0660");
  }
  struct stat st {};
  if (lstat(options.socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat("refusing to replace ", options.socket_path,
                                                        ": it exists and is not a socket"));
    }
    if (unlink(options.socket_path.c_str()) != 0) {
      return absl::PermissionDeniedError(absl::StrCat(
          "cannot remove the old socket ", options.socket_path, ": ", std::strerror(errno)));
    }
  } else if (errno != ENOENT) {
    return absl::UnavailableError(
        absl::StrCat("cannot use ", options.socket_path, ": ", std::strerror(errno)));
  }
  const std::string dir = options.socket_path.substr(0, options.socket_path.rfind('/'));
  if (!dir.empty() && (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))) {
    return absl::FailedPreconditionError(
        absl::StrCat("the socket's directory ", dir, " does not exist"));
  }
  auto server = std::make_unique<CsiServerImpl>(options.socket_path, provider);
  if (absl::Status s = server->Start(options); !s.ok()) return s;
  return std::unique_ptr<CsiServer>(std::move(server));
}

absl::StatusOr<std::string> CheckVersion(const std::string& socket_path, absl::Duration timeout) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  auto channel = grpc::CreateCustomChannel(absl::StrCat("unix:", socket_path),
                                           grpc::InsecureChannelCredentials(), args);
  auto stub = v1alpha1::CSIDriverProvider::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  v1alpha1::VersionRequest request;
  request.set_version(kApiVersion);
  v1alpha1::VersionResponse response;
  grpc::Status s = stub->Version(&ctx, request, &response);
  if (!s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("Version on ", socket_path, " failed: ", s.error_message()));
  }
  return absl::StrCat(response.runtime_name(), " ", response.runtime_version(), " (API ",
                      response.version(), ")");
}

}  // namespace strongroom::csi
