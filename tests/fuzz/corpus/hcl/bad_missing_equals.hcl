path "x" {
  capabilities ["read"]
}
