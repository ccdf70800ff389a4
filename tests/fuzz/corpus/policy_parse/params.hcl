# section 7.1 sample
path "/secret/data/app/*" {
  comment = "app"
  capabilities = ["create", "read", "update", "patch", "delete", "list"]
  allowed_parameters  = { "ttl" = ["1h","2h"], "*" = [], "N" = [1, true, ["x"], {"k" = "v"}] }
  denied_parameters   = { "force" = [] }
  required_parameters = ["role"]
  min_wrapping_ttl = "1m"
  max_wrapping_ttl = "1h30m"
}
path "sys/legacy" { policy = "read" }
path "sys/legacy/+/x*" { policy = "sudo" capabilities = ["subscribe"] subscribe_event_types = ["kv*"] }
