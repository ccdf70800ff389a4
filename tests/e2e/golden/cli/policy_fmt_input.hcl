path "secret/data/app/*" { capabilities = ["create", "read","update",
  "delete", "list"] }
path   "identity/entity"   {
    capabilities=["create"]
  allowed_parameters = { "name" = [] "metadata" = [] }
        min_wrapping_ttl = "1h"
}



path "sys/auth" {capabilities = ["read"]}
path "transit/encrypt/app" {
  capabilities = ["update"]
  required_parameters = ["plaintext"]
  max_wrapping_ttl = 3600
}
