path "secret/+*" { capabilities = ["read"] }
path "secret/*/x" { capabilities = ["read"] }
path "secret/{{identity.entity.id" {}
