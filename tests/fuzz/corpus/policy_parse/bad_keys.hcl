path "a" { mfa_methods = ["x"] max_wrapping_ttl = "1.5s" allowed_parameters { "A" = [] "a" = [] } }
vault = 1
