# The policy of the token Prometheus scrapes sys/metrics with (deploy/prometheus/prometheus.yml):
#   strongroom policy write metrics metrics-policy.hcl
#   strongroom token create -policy=metrics -orphan -period=768h -display-name=prometheus
# A periodic token must be renewed within its period (strongroom token renew, or the agent).
path "sys/metrics" {
  capabilities = ["read"]
}
