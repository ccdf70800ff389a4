# strongroom server configuration (HCL, like Vault's). See
# /usr/share/doc/strongroom/operations.md for every key. Upgrades never overwrite this file.

# Loopback and plain HTTP until you configure TLS: set tls_cert_file plus tls_key_file, remove
# tls_disable, then listen on a public address.
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}

storage "rocksdb" {
  path = "/var/lib/strongroom/data"
}

# The KEK, the audit signing key and the Transit keys live in this token. The PIN comes from the
# systemd credential (LoadCredential=hsm-pin:/etc/strongroom/hsm-pin in strongroom.service).
seal "pkcs11" {
  lib         = "/usr/lib/softhsm/libsofthsm2.so"
  token_label = "strongroom"
  pin         = "file:///run/credentials/strongroom.service/hsm-pin"
}
