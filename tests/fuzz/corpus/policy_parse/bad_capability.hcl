path "secret/foo" {
  capabilities = [
    "reed",
  ]
}
