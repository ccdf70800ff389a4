// Identity: entities and their aliases (vault-api.md section 6), kept in barrier storage.
//
// An entity is the one identity behind tokens from any number of logins; each alias ties it to
// one auth mount (mount accessor + alias name, e.g. the Kubernetes service-account UID or the
// AppRole role ID). Logins find the entity through their alias or create both; operators edit
// entities and aliases through the identity/ endpoints. A token carries only the entity ID: its
// entity's policies, metadata and aliases are read at each request, so a change (metadata set by
// a provisioner, an entity disabled) takes effect on the next request of every token.
//
// Storage (barrier): identity/entity/<id> -> entity JSON with its aliases,
// identity/entity-name/<name> -> id, identity/alias/<alias id> -> entity id,
// identity/alias-key/<mount accessor>/<hex(alias name)> -> alias id.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "appliance/core/json.h"
#include "appliance/storage/storage.h"
#include "policy/template.h"

namespace strongroom::core {

struct EntityAlias {
  std::string id;
  std::string canonical_id;  // the entity
  std::string mount_accessor;
  std::string mount_path;  // "auth/kubernetes/"
  std::string mount_type;  // "kubernetes"
  std::string name;
  policy::StringMap metadata;         // set by the auth method at login
  policy::StringMap custom_metadata;  // set by operators
  int64_t creation_unix = 0;
  int64_t update_unix = 0;

  json::object ToJson() const;  // Vault's alias object
};

struct Entity {
  std::string id;
  std::string name;
  policy::StringMap metadata;
  std::vector<std::string> policies;
  bool disabled = false;
  int64_t creation_unix = 0;
  int64_t update_unix = 0;
  std::vector<EntityAlias> aliases;

  json::object ToJson() const;  // Vault's entity object
  // What ACL templates see: `identity.entity.*`, aliases keyed by mount accessor.
  policy::IdentityContext Context() const;
};

// The alias a login presents: which mount, which name, the metadata the method sets.
struct LoginAlias {
  std::string mount_accessor;
  std::string mount_path;
  std::string mount_type;
  std::string name;
  policy::StringMap metadata;
};

// Fields an operator writes (identity/entity, identity/entity/name/:name); unset ones stay.
struct EntityUpdate {
  std::optional<std::string> name;
  std::optional<policy::StringMap> metadata;
  std::optional<std::vector<std::string>> policies;
  std::optional<bool> disabled;
};

struct AliasUpdate {
  std::optional<std::string> name;
  std::optional<std::string> canonical_id;
  std::optional<LoginAlias> mount;  // accessor, path, type (name/metadata unused)
  std::optional<policy::StringMap> custom_metadata;
};

class IdentityStore {
 public:
  IdentityStore(storage::Storage* barrier, std::function<absl::Time()> clock)
      : storage_(barrier), clock_(std::move(clock)) {}

  // Drops the cache (seal).
  void Clear();

  // nullopt when there is no such entity.
  absl::StatusOr<std::shared_ptr<const Entity>> Get(const std::string& id);
  absl::StatusOr<std::shared_ptr<const Entity>> GetByName(const std::string& name);
  absl::StatusOr<std::shared_ptr<const Entity>> GetByAlias(const std::string& mount_accessor,
                                                           const std::string& alias_name);
  // The entity holding alias `alias_id`.
  absl::StatusOr<std::shared_ptr<const Entity>> GetByAliasId(const std::string& alias_id);

  // Creates an entity (`id` empty) or updates entity `id` (NotFound when absent). A name already
  // used by another entity is InvalidArgument.
  absl::StatusOr<Entity> Write(const std::string& id, const EntityUpdate& update);
  absl::Status Delete(const std::string& id);  // with its aliases; absent: no-op
  absl::StatusOr<std::vector<std::shared_ptr<const Entity>>> List();

  // Creates (`alias_id` empty) or updates an alias. One alias per (mount, name) and one alias per
  // mount on an entity, as in Vault.
  absl::StatusOr<EntityAlias> WriteAlias(const std::string& alias_id, const AliasUpdate& update);
  absl::Status DeleteAlias(const std::string& alias_id);

  // A login: the entity behind the alias, created with the alias when new; the alias metadata is
  // refreshed when it changed. `created` tells whether the entity is new.
  absl::StatusOr<std::shared_ptr<const Entity>> Login(const LoginAlias& alias, bool* created);

 private:
  absl::StatusOr<std::shared_ptr<const Entity>> LoadLocked(const std::string& id);
  absl::Status StoreLocked(const Entity& e, std::vector<storage::BatchOp> extra = {});
  absl::StatusOr<std::optional<std::string>> AliasIdLocked(const std::string& accessor,
                                                           const std::string& name);

  storage::Storage* storage_;
  std::function<absl::Time()> clock_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const Entity>> cache_;
};

}  // namespace strongroom::core
