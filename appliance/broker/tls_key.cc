#include "appliance/broker/tls_key.h"

#include "absl/strings/str_cat.h"
#include "audit/keys.h"
#include "base/status_macros.h"
#include "base/strings.h"

namespace strongroom::broker {

absl::StatusOr<TokenTlsKey> TokenTlsKey::Generate(hsm::Token* token, std::string_view label) {
  auto key = token->GenerateSigningKey(label);
  if (!key.ok()) {
    if (absl::IsAlreadyExists(key.status())) {
      return absl::AlreadyExistsError(absl::StrCat("a key labelled \"", Av(label),
                                                   "\" already exists in token \"", token->label(),
                                                   "\"; not replacing it"));
    }
    return key.status();
  }
  return Find(token, label);
}

absl::StatusOr<TokenTlsKey> TokenTlsKey::Find(hsm::Token* token, std::string_view label) {
  auto key = token->FindSigningKey(label);
  if (!key.ok()) {
    if (absl::IsNotFound(key.status())) {
      return absl::NotFoundError(
          absl::StrCat("no TLS key labelled \"", Av(label), "\" in token \"", token->label(),
                       "\" (create it with: strongroomd -config=FILE -tls-generate-key)"));
    }
    return key.status();
  }
  ASSIGN_OR_RETURN(hsm::KeyAttributes attrs, token->GetKeyAttributes(key->private_key));
  if (attrs.key_type != CKK_EC || !attrs.sensitive || attrs.extractable || !attrs.sign ||
      attrs.decrypt || attrs.unwrap) {
    return absl::FailedPreconditionError(
        absl::StrCat("the TLS key \"", Av(label),
                     "\" must be an EC key that is sensitive, not extractable and sign-only; "
                     "refusing to use it"));
  }
  ASSIGN_OR_RETURN(std::string spki, token->EcPublicKeySpki(key->public_key));
  return TokenTlsKey(token, *key, std::string(label), std::move(spki));
}

absl::StatusOr<std::string> TokenTlsKey::SignDigest(std::span<const uint8_t> digest) const {
  if (!tls::IsAllowedDigestLength(digest.size())) {
    return absl::InvalidArgumentError("only a message digest may be signed with the TLS key");
  }
  ASSIGN_OR_RETURN(std::string raw, token_->SignEcdsa(key_.private_key, digest));
  auto der = audit::EcdsaRawToDer(raw);
  if (!der.ok()) return absl::InternalError(der.message());
  return *std::move(der);
}

absl::StatusOr<tls::PkeyPtr> TokenTlsKey::Pkey() const {
  TokenTlsKey self = *this;
  return tls::MakeRemoteEcKey(
      spki_der_, [self](std::span<const uint8_t> digest) { return self.SignDigest(digest); });
}

}  // namespace strongroom::broker
