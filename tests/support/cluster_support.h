// Helpers for tests of Raft nodes and clusters: a cluster CA and certificate, free loopback
// ports, and waiting for a condition.
#pragma once

#include <functional>
#include <string>

namespace strongroom::testing {

// A cluster CA and one certificate it issued (P-256) for node `name` at 127.0.0.1, ::1 and
// localhost, made in `dir` (created) by packaging/cluster-certs.sh (the openssl CLI), for the
// Raft cluster port. Paths of the PEM files; empty when the script failed.
struct ClusterCerts {
  std::string ca, cert, key;
};
ClusterCerts MakeClusterCerts(const std::string& dir, const std::string& name);
// A certificate of the same CA as `ca_of` (made by MakeClusterCerts) for node `node_id` at
// `hosts` (default: 127.0.0.1, ::1 and localhost), in the CA's directory. Made once per node id
// (later calls return the same files); empty when the script failed.
ClusterCerts NodeCerts(const ClusterCerts& ca_of, const std::string& node_id,
                       const std::string& hosts = "127.0.0.1 ::1 localhost");

// Signs the certificate request `csr` for node `node_id` at `hosts` with the CA of `ca_of`
// (packaging/cluster-certs.sh sign) into `out`. False when the script failed.
bool SignNodeRequest(const ClusterCerts& ca_of, const std::string& node_id, const std::string& csr,
                     const std::string& out, const std::string& hosts = "127.0.0.1");

// A free loopback TCP port, chosen at random below the kernel's ephemeral range (so no outgoing
// connection takes it before the caller binds it; another test choosing the same one remains a
// small race); or, given one, `port` itself when it is free (0 when it is not).
// A new, empty directory under the system's temporary directory, named `prefix`, the process id
// and a serial number; "" if it cannot be made.
std::string NewTempDir(const std::string& prefix);

int FreeLoopbackPort(int port = 0);
// Two adjacent free ports: an API port and the cluster port after it (Vault's convention).
int FreeLoopbackPortPair();

// Polls `ok` every 50 ms until it holds or `seconds` pass (a liveness deadline, not a timing
// assertion). Returns the last answer.
bool Eventually(const std::function<bool()>& ok, int seconds = 60);

}  // namespace strongroom::testing
