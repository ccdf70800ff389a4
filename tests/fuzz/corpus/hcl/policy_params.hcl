# section 7.1 sample
path "secret/data/app/*" {
  capabilities = ["create", "read", "update", "patch", "delete", "list"]
  allowed_parameters  = { "ttl" = ["1h","2h"], "*" = [] }
  denied_parameters   = { "force" = [] }
  required_parameters = ["role"]
  min_wrapping_ttl = "1m"
  max_wrapping_ttl = "90m"
}
path "sys/legacy" { policy = "read" }
