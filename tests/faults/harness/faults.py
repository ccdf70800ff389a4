"""The faults. Each has a name, says whether it applies to a cluster (a 3/2 split needs five
nodes, a clock jump needs libfaketime preloaded, growing needs a spare node), and injects then
heals. inject() returns a short description (which node, which side); heal() puts things back
(restarts what it killed, resumes what it paused, removes the nftables rules, frees the disk,
sets the clock back, re-adds what it removed). A member whose process exited by itself is
restarted after every heal by the runner (as systemd or Kubernetes would)."""

import threading
import time


def _leader_or_any(cluster, rng):
    leader = cluster.leader()
    return leader if leader is not None else rng.choice(cluster.members)


def _follower(cluster, rng):
    leader = cluster.leader()
    others = [n for n in cluster.members if n != leader]
    return rng.choice(others)


class Fault:
    name = ""
    needs_faketime = False
    # Set by inject or heal when the cluster answered the fault's own requests other than a Vault
    # operator may expect (sys/seal not answered 204, say): the round fails.
    problem = None

    def applies(self, cluster):
        return True

    def inject(self, cluster, rng):
        raise NotImplementedError

    def heal(self, cluster, rng):
        raise NotImplementedError


class Kill(Fault):
    """kill -9 of the leader (or a follower): broker, spawner and workers at once; restarted
    from its own data directory and token at heal."""

    def __init__(self, leader):
        self.leader = leader
        self.name = "kill-leader" if leader else "kill-follower"

    def inject(self, cluster, rng):
        self.victim = _leader_or_any(cluster, rng) if self.leader else _follower(cluster, rng)
        cluster.nodes[self.victim].kill()
        return "kill -9 " + self.victim

    def heal(self, cluster, rng):
        node = cluster.nodes[self.victim]
        if not node.alive():
            node.start()


class Pause(Fault):
    """SIGSTOP of the node's processes (a VM stall, a long GC), SIGCONT at heal."""

    def __init__(self, leader):
        self.leader = leader
        self.name = "pause-leader" if leader else "pause-follower"

    def inject(self, cluster, rng):
        self.victim = _leader_or_any(cluster, rng) if self.leader else _follower(cluster, rng)
        cluster.nodes[self.victim].pause()
        return "SIGSTOP " + self.victim

    def heal(self, cluster, rng):
        cluster.nodes[self.victim].resume()


class IsolateLeader(Fault):
    """The leader cut off from every other node (both directions); clients still reach it."""

    name = "partition-leader"

    def inject(self, cluster, rng):
        leader = _leader_or_any(cluster, rng)
        others = [n for n in cluster.members if n != leader]
        cluster.network.cut([leader], others)
        return "%s | %s" % (leader, " ".join(others))

    def heal(self, cluster, rng):
        cluster.network.heal()


class Split(Fault):
    """A random majority/minority split: 2/1 of three nodes, 3/2 of five (the leader lands on
    either side)."""

    name = "partition-split"

    def inject(self, cluster, rng):
        nodes = list(cluster.members)
        rng.shuffle(nodes)
        minority = nodes[:len(nodes) // 2]
        majority = nodes[len(nodes) // 2:]
        cluster.network.cut(majority, minority)
        leader = cluster.leader()
        return "%s | %s (leader %s)" % (" ".join(sorted(majority)), " ".join(sorted(minority)),
                                        leader)

    def heal(self, cluster, rng):
        cluster.network.heal()


class Asymmetric(Fault):
    """One-way loss: the leader hears nobody (inbound dropped) while the others still receive
    what it sends, or the reverse (outbound dropped)."""

    name = "partition-asymmetric"

    def inject(self, cluster, rng):
        leader = _leader_or_any(cluster, rng)
        others = [n for n in cluster.members if n != leader]
        if rng.random() < 0.5:
            cluster.network.drop(leader, frm=others)
            return "%s hears nobody" % leader
        cluster.network.drop(leader, to=others)
        return "nobody hears %s" % leader

    def heal(self, cluster, rng):
        cluster.network.heal()


class RestartAll(Fault):
    """Every node killed (-9) or stopped (SIGTERM) at once, then started again in a random
    order with random gaps."""

    name = "restart-all"

    def inject(self, cluster, rng):
        self.how = rng.choice(["kill -9", "SIGTERM"])
        for name in cluster.members:
            node = cluster.nodes[name]
            if self.how == "kill -9":
                node.kill()
            else:
                node.stop()
        return self.how + " all"

    def heal(self, cluster, rng):
        order = list(cluster.members)
        rng.shuffle(order)
        for name in order:
            node = cluster.nodes[name]
            if not node.alive():
                node.start()
            time.sleep(rng.uniform(0, 2))
        self.order = order


class DiskFull(Fault):
    """The node's data tmpfs (its Raft directory) filled to the last page; freed at heal. So
    that the full disk bites within the hold (the Raft log's segments are preallocated), a
    ballast writer meanwhile appends up to 80 MiB in 512 KiB values to a key of its own (not in
    the history): past the three 8 MiB segments libraft preallocates, and past RocksDB's 64 MiB
    memtable."""

    name = "disk-full"
    BALLAST = 512 * 1024
    BALLAST_WRITES = 160

    def inject(self, cluster, rng):
        leader = cluster.leader()
        self.victim = rng.choice(cluster.members)
        written = cluster.nodes[self.victim].fill_disk()
        self.stop = threading.Event()
        self.ballast = {"ok": 0, "failed": 0}
        self.thread = threading.Thread(target=self._ballast, args=(cluster,), daemon=True)
        self.thread.start()
        return "%s%s full (+%d MiB)" % (self.victim, " (leader)" if self.victim == leader
                                        else "", written >> 20)

    def _ballast(self, cluster):
        blob = "b" * self.BALLAST
        i = 0
        while not self.stop.is_set() and i < self.BALLAST_WRITES:
            name = cluster.members[i % len(cluster.members)]
            i += 1
            r = cluster.nodes[name].call("POST", "/v1/secret/data/ballast", {"data": {"v": blob}},
                                         token=cluster.root, timeout=5)
            self.ballast["ok" if r.status == 200 else "failed"] += 1
            self.stop.wait(0.02)

    def heal(self, cluster, rng):
        self.stop.set()
        self.thread.join(15)
        cluster.nodes[self.victim].free_disk()
        leader = cluster.leader() or cluster.members[0]
        # Every ballast version goes (the mount keeps 100000 versions of a key).
        cluster.nodes[leader].call("DELETE", "/v1/secret/metadata/ballast", token=cluster.root)
        self.after = "ballast writes ok %d, failed %d" % (self.ballast["ok"],
                                                           self.ballast["failed"])


class ClockJump(Fault):
    """The wall clock of one node's broker jumps (libfaketime) by hours, across the TTL of a
    token made just before; set back at heal. The token's lookups through each node are
    reported (information: a node whose clock is ahead may rightly see it expired)."""

    name = "clock-jump"
    needs_faketime = True

    def applies(self, cluster):
        return all(n.faketime for n in cluster.nodes.values())

    def inject(self, cluster, rng):
        leader = cluster.leader()
        self.victim = rng.choice(cluster.members)
        self.offset = rng.choice([2 * 3600, 25 * 3600, -3600])
        self.token = None
        via = leader or self.victim
        r = cluster.nodes[via].call("POST", "/v1/auth/token/create",
                                    {"ttl": "1h", "policies": ["default"]}, token=cluster.root)
        if r.status == 200:
            self.token = (r.json().get("auth") or {}).get("client_token")
        cluster.nodes[self.victim].set_clock_offset(self.offset)
        seen = self.wait_clock(cluster, self.offset)
        return "%s%s clock %+dh (%s); token ttl 1h: %s" % (
            self.victim, " (leader)" if self.victim == leader else "", self.offset // 3600,
            seen, self.lookups(cluster))

    def wait_clock(self, cluster, offset, deadline_s=15):
        """Waits until the victim's sys/health shows the shifted clock (server_time_utc):
        libfaketime re-reads its file only once its cached copy is over a second old, and the
        broker may cache time readings too (measured: 2 to 3 s under load)."""
        start = time.monotonic()
        while time.monotonic() - start < deadline_s:
            status, body = cluster.nodes[self.victim].health_body()
            t = body.get("server_time_utc") if isinstance(body, dict) else None
            if isinstance(t, int) and abs(t - time.time() - offset) < 60:
                return "seen after %.1fs" % (time.monotonic() - start)
            time.sleep(0.2)
        return "NOT seen in %ds" % deadline_s

    def lookups(self, cluster):
        if not self.token:
            return "no token"
        out = []
        for name in cluster.members:
            r = cluster.nodes[name].call("GET", "/v1/auth/token/lookup-self", token=self.token)
            out.append("%s=%s" % (name, r.status))
        return " ".join(out)

    def heal(self, cluster, rng):
        cluster.nodes[self.victim].set_clock_offset(0)
        seen = self.wait_clock(cluster, 0)
        self.after = "clock back (%s); token: %s" % (seen, self.lookups(cluster))


class SealLeader(Fault):
    """sys/seal on the active node (an operator's emergency seal, or the seal Kubernetes'
    preStop hook sends); unsealed again with the recovery key share at heal. The others should
    take over meanwhile (Vault: the sealed node steps down)."""

    name = "seal-leader"

    def inject(self, cluster, rng):
        self.victim = cluster.leader()
        if self.victim is None:
            return "no active node to seal"
        r = cluster.nodes[self.victim].call("PUT", "/v1/sys/seal", token=cluster.root,
                                            timeout=30)
        if r.status != 204:
            self.problem = "sys/seal answered %s, not 204" % r.status
        return "sys/seal on %s: %s" % (self.victim, r.status)

    def heal(self, cluster, rng):
        if self.victim is None:
            return
        node = cluster.nodes[self.victim]
        statuses = []
        for key in cluster.recovery_keys:
            r = node.call("PUT", "/v1/sys/unseal", {"key": key}, timeout=30)
            statuses.append(str(r.status))
            if r.status == 200 and r.json().get("sealed") is False:
                break
        self.after = "sys/unseal on %s: %s" % (self.victim, " ".join(statuses) or "no key")
        if not statuses or statuses[-1] != "200":
            self.problem = "sys/unseal did not unseal " + self.victim


class RemoveMember(Fault):
    """sys/storage/raft/remove-peer of a follower (or of the leader itself) under load; the
    removed node keeps running (and keeps getting client requests) until heal, which stops
    it, wipes it (new data directory, new token) and has it join again under its old name."""

    def __init__(self, leader):
        self.leader = leader
        self.name = "remove-leader" if leader else "remove-follower"

    def inject(self, cluster, rng):
        leader = cluster.leader()
        if leader is None:
            self.victim = None
            return "no leader to ask; nothing removed"
        self.victim = leader if self.leader else _follower(cluster, rng)
        r = cluster.remove_peer(self.victim, via=leader)
        self.answer = r.status
        if r.status not in (200, 204):
            victim, self.victim = self.victim, None
            return "remove-peer %s refused: %r" % (victim, r)
        cluster.members.remove(self.victim)
        return "removed %s (remove-peer through %s: %d)" % (self.victim, leader, r.status)

    def heal(self, cluster, rng):
        if self.victim is None:
            return
        node = cluster.nodes[self.victim]
        if self.victim in cluster.targets:
            cluster.targets.remove(self.victim)
        node.stop()
        node.wipe()
        cluster.add(self.victim)


class GrowShrink(Fault):
    """A spare node joins under load (and becomes a voter), then is removed again."""

    name = "add-remove"

    def applies(self, cluster):
        return any(n not in cluster.members for n in cluster.nodes)

    def inject(self, cluster, rng):
        self.spare = next(n for n in cluster.nodes if n not in cluster.members)
        node = cluster.nodes[self.spare]
        if node.alive():
            node.stop()
        node.wipe()
        t = time.monotonic()
        cluster.add(self.spare)
        return "%s joined in %.1fs" % (self.spare, time.monotonic() - t)

    def heal(self, cluster, rng):
        leader = cluster.leader() or cluster.members[0]
        r = cluster.remove_peer(self.spare, via=leader)
        self.answer = r.status
        cluster.members.remove(self.spare)
        if self.spare in cluster.targets:
            cluster.targets.remove(self.spare)
        cluster.nodes[self.spare].stop()


def all_faults():
    return [Kill(True), Kill(False), Pause(True), Pause(False), IsolateLeader(), Split(),
            Asymmetric(), RestartAll(), DiskFull(), ClockJump(), SealLeader(), RemoveMember(False),
            RemoveMember(True), GrowShrink()]


def by_name(names):
    table = {f.name: f for f in all_faults()}
    out = []
    for n in names:
        if n not in table:
            raise ValueError("unknown fault %r (known: %s)" % (n, ", ".join(table)))
        out.append(table[n])
    return out

