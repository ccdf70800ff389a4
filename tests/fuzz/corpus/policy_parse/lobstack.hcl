path "secret/data/lobstack/api-keys" { capabilities = ["read"] }
path "secret/data/lobstack/agent/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "transit/encrypt/lobstack" { capabilities = ["update"] }
path "transit/decrypt/lobstack" { capabilities = ["update"] }
