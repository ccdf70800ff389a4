"""A Raft cluster of real strongroomd nodes for the fault suite, each in its own network
namespace on a private bridge: cluster certificates, init on one node, the others join through
sys/storage/raft/join (each with a join credential minted for it), and the checks that say whether the cluster serves again."""

import os
import subprocess
import time

from network import Network
from node import Node


CERTS_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                            "packaging", "cluster-certs.sh")


def make_ca(directory):
    """A cluster CA (packaging/cluster-certs.sh, as tests/support/cluster_support.cc makes it);
    returns issue(name, ip), which makes node `name`'s own certificate for its address."""
    subprocess.run([CERTS_SCRIPT, "ca", directory], check=True, stdout=subprocess.DEVNULL)

    def issue(name, ip):
        subprocess.run([CERTS_SCRIPT, "node", directory, name, ip], check=True,
                       stdout=subprocess.DEVNULL)
        return {"ca": os.path.join(directory, "ca.pem"),
                "cert": os.path.join(directory, name + ".pem"),
                "key": os.path.join(directory, name + ".key")}
    return issue


class ClusterError(Exception):
    pass


class Cluster:
    def __init__(self, size, spares, bin_dir, work_dir, tag, faketime=False, data_mb=512,
                 say=print):
        self.size = size
        self.bin_dir = bin_dir
        self.dir = work_dir
        self.say = say
        self.network = Network(tag)
        issue = make_ca(os.path.join(work_dir, "certs"))
        self.nodes = {}
        # Members that exited by themselves while wait_recovered polled, restarted there.
        self.exits_while_waiting = []
        for i in range(1, size + spares + 1):
            name = "n%d" % i
            self.nodes[name] = Node(name, i, self.network, bin_dir, work_dir, issue,
                                    data_mb=data_mb, faketime=faketime)
        self.members = ["n%d" % i for i in range(1, size + 1)]
        # The nodes clients send requests to (members, and a removed node until it is gone).
        self.targets = list(self.members)
        self.root = None
        self.recovery_keys = []

    # --- bring-up ---------------------------------------------------------------------------

    def create(self):
        first = self.nodes[self.members[0]]
        if not first.start():
            raise ClusterError("n1 did not start:\n" + first.log_tail())
        r = first.call("PUT", "/v1/sys/init", {"recovery_shares": 1, "recovery_threshold": 1},
                       timeout=60)
        if r.status != 200:
            raise ClusterError("sys/init: %r\n%s" % (r, first.log_tail()))
        self.root = r.json()["root_token"]
        self.recovery_keys = r.json().get("recovery_keys") or []
        for method, path, body in (
                ("POST", "/v1/sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}),
                # Every version stays readable, for the final version tables.
                ("POST", "/v1/secret/config", {"max_versions": 100000})):
            r = first.call(method, path, body, token=self.root, timeout=30)
            if r.status not in (200, 204):
                raise ClusterError("%s %s: %r" % (method, path, r))
        for name in self.members[1:]:
            self.add(name)
        if not self.wait_recovered(120)[0]:
            raise ClusterError("the new cluster did not become healthy")

    def add(self, name, deadline_s=120):
        """Starts `name` (an empty node) and has it join through the members' API."""
        node = self.nodes[name]
        if not node.alive() and not node.start():
            raise ClusterError("%s did not start:\n%s" % (name, node.log_tail()))
        deadline = time.monotonic() + deadline_s
        last = None
        tried = []  # every answer, for the report when the join fails
        while time.monotonic() < deadline:
            for other in self.members:
                if other == name or not self.nodes[other].alive():
                    continue
                # The operator's consent: a one-time join credential for this node id,
                # minted through a member (forwarded to the active node).
                minted = self.nodes[other].call("POST", "/v1/sys/storage/raft/join-token",
                                                {"node_id": name}, token=self.root, timeout=30)
                if minted.status != 200:
                    last = minted
                    continue
                last = node.call("POST", "/v1/sys/storage/raft/join",
                                 {"leader_api_addr": self.nodes[other].api,
                                  "join_token": minted.json()["data"]["join_token"]},
                                 timeout=150)
                tried.append("through %s: %r" % (other, last))
                if last.status == 200:
                    if name not in self.members:
                        self.members.append(name)
                    if name not in self.targets:
                        self.targets.append(name)
                    return
                if last.status == 400 and "already" in last.body:
                    raise ClusterError("%s cannot join: %s" % (name, "; ".join(tried[-3:])))
            time.sleep(1)
        raise ClusterError("%s could not join: %r\n%s" % (name, last, node.log_tail()))

    # --- state ------------------------------------------------------------------------------

    def health(self):
        """{name: sys/health status} for the members (None: no answer)."""
        return {n: self.nodes[n].health() if self.nodes[n].alive() else None
                for n in self.members}

    def leader(self):
        """The member that answers as the active node (None: none, or more than one)."""
        active = [n for n, s in self.health().items() if s == 200]
        return active[0] if len(active) == 1 else None

    def configuration(self, via):
        r = self.nodes[via].call("GET", "/v1/sys/storage/raft/configuration", token=self.root)
        if r.status != 200:
            return None
        servers = ((r.json().get("data") or {}).get("config") or {}).get("servers") or []
        return sorted(s.get("node_id") for s in servers if s.get("voter"))

    def remove_peer(self, name, via):
        return self.nodes[via].call("POST", "/v1/sys/storage/raft/remove-peer",
                                    {"server_id": name}, token=self.root, timeout=30)

    def restart_exited(self):
        """Starts again every member whose process exited by itself (as systemd's
        Restart=on-failure or a StatefulSet would); returns [(name, exit status)]."""
        exited = []
        for name in self.members:
            node = self.nodes[name]
            status = node.reap()
            if status is not None:
                exited.append((name, status))
                node.log("=== exited by itself with status %d; restarting" % status)
                node.start()
        return exited

    def probe(self, name, seq):
        """A write through `name` and a read of it back through `name` (forwarded when a
        standby)."""
        node = self.nodes[name]
        value = "probe-%d" % seq
        w = node.call("POST", "/v1/secret/data/probe-" + name, {"data": {"v": value}},
                      token=self.root, timeout=10)
        if w.status != 200:
            return False, "write %r" % w
        r = node.call("GET", "/v1/secret/data/probe-" + name, token=self.root, timeout=10)
        got = ((r.json().get("data") or {}).get("data") or {}).get("v") if r.status == 200 \
            else None
        if got != value:
            return False, "read %r" % r
        return True, ""

    def wait_recovered(self, deadline_s):
        """Polls until every member runs and answers as active or standby, exactly one is
        active, the active node's configuration has exactly the members as voters, and a write
        and a read through every member succeed. Returns (ok, seconds, last reason)."""
        start = time.monotonic()
        reason = ""
        seq = 0
        while time.monotonic() - start < deadline_s:
            # As systemd (Restart=on-failure) or a StatefulSet would: a member that exits while
            # the cluster recovers (a full disk it hits late) is started again at once.
            self.exits_while_waiting += self.restart_exited()
            reason = self._recovered_reason(seq)
            seq += 1
            if not reason:
                return True, time.monotonic() - start, ""
            time.sleep(0.5)
        return False, time.monotonic() - start, reason

    def _recovered_reason(self, seq):
        for name in self.members:
            if not self.nodes[name].alive():
                return "%s is not running" % name
        health = self.health()
        bad = {n: s for n, s in health.items() if s not in (200, 429)}
        if bad:
            return "health " + ", ".join("%s=%s" % kv for kv in sorted(bad.items()))
        active = [n for n, s in health.items() if s == 200]
        if len(active) != 1:
            return "active nodes: %s" % (active or "none")
        config = self.configuration(active[0])
        if config != sorted(self.members):
            return "configuration %s, members %s" % (config, sorted(self.members))
        for name in self.members:
            ok, why = self.probe(name, seq)
            if not ok:
                return "probe through %s: %s" % (name, why)
        return ""

    def destroy(self):
        for node in self.nodes.values():
            node.destroy()
        self.network.destroy()
