// Transit: the operations that use a key — encrypt, decrypt, rewrap, datakey, hmac, sign and
// verify — single or as a batch_input, each run inside the token (verification of signatures
// uses the public key alone).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "appliance/core/request.h"
#include "appliance/engines/transit_crypto.h"
#include "appliance/engines/transit_keys.h"
#include "appliance/engines/transit_store.h"

namespace strongroom::core {
class Core;
}

namespace strongroom::engines::transit {

class Operations {
 public:
  enum class Op { kEncrypt, kDecrypt, kRewrap, kHmac, kVerify, kSign };
  // Encrypt's upsert: creates the missing key `name` from the request's parameters.
  using CreateFn = std::function<absl::StatusOr<std::shared_ptr<Key>>(core::Request& req,
                                                                      const std::string& name)>;

  Operations(core::Core* core, KeyStore* store) : core_(core), store_(store) {}

  // <op>/:name[/:algorithm] with the request's fields or its batch_input.
  absl::StatusOr<core::Response> Batch(core::Request& req, const std::string& rest, Op op,
                                       const CreateFn& create);
  // datakey/plaintext|wrapped/:name
  absl::StatusOr<core::Response> Datakey(core::Request& req, const std::string& rest);

 private:
  absl::StatusOr<core::json::object> Item(core::Request& req, Key& k, Op op,
                                          const core::json::object& in, std::string_view url_alg);
  absl::StatusOr<std::pair<std::string, int64_t>> EncryptOne(core::Request& req, Key& k,
                                                             std::string_view plaintext,
                                                             std::string_view aad,
                                                             int64_t key_version);
  absl::StatusOr<std::string> DecryptOne(Key& k, std::string_view ciphertext, std::string_view aad);
  absl::StatusOr<std::string> HmacOne(Key& k, std::string_view input, std::string_view alg,
                                      int64_t key_version, bool verifying, int64_t* used_version);
  absl::StatusOr<std::pair<std::string, int64_t>> SignOne(Key& k, std::string_view input,
                                                          const SignOptions& opts,
                                                          int64_t key_version);
  absl::StatusOr<bool> VerifyOne(Key& k, std::string_view input, std::string_view signature,
                                 const SignOptions& opts);
  // The version an encryption or signature uses: 0 means the latest (k.mu held).
  absl::StatusOr<int64_t> PickVersion(const Key& k, int64_t key_version, std::string_view what);

  core::Core* core_;
  KeyStore* store_;
};

}  // namespace strongroom::engines::transit
