ui = true
api_addr = "https://127.0.0.1:8200"
cluster_addr = "https://127.0.0.1:8201"
max_request_size = 33554432
listener "tcp" { address = "127.0.0.1:8200" tls_disable = true }
listener "tcp" {
  address = "0.0.0.0:8201"
  telemetry { unauthenticated_metrics_access = true }
}
storage "rocksdb" { path = "/var/lib/x" }
seal "pkcs11" {
  lib = "/usr/lib/softhsm/libsofthsm2.so"
  slot = 0
  pin = "env://PIN"
}
telemetry { sample_ratio = 0.25 }
