path "secret/data/lobstack/agent/{{identity.entity.metadata.agent_id}}" { capabilities = ["read"] }
path "transit/encrypt/agent-data" { capabilities = ["update"] }
path "transit/decrypt/agent-data" { capabilities = ["update"] }
