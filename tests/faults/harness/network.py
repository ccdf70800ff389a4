"""A private network for the fault suite: one Linux bridge, one network namespace per node joined
to it by a veth pair, and nftables rules inside each namespace for partitions.

The harness (and its clients) stay in the root namespace and reach every node over the bridge,
so a partition cuts nodes off from each other, never from the clients (as Jepsen partitions
do). Needs root, `ip` (iproute2) and `nft` (nftables). No traffic shaping (no tc netem).
"""

import glob
import ipaddress
import os
import random
import shutil
import signal
import subprocess


def run(*args, check=True, quiet=False):
    r = subprocess.run(list(args), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(args), r.returncode,
                                                   (r.stderr or r.stdout).strip()))
    return r


def _used_subnets():
    out = run("ip", "-4", "-o", "addr", "show").stdout
    used = set()
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            used.add(ipaddress.ip_interface(parts[parts.index("inet") + 1]).network)
    return used


def _run_alive(pid):
    """Whether process `pid` is a fault-suite runner."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"run.py" in f.read()
    except OSError:
        return False


def cleanup_stale():
    """Removes what runs that died without cleaning up left behind: namespaces, bridges and
    veths named srf<pid in hex>..., and tmpfs mounts under /tmp/srf-<pid>-..., for runner pids
    that no longer run. Returns what it removed."""
    removed = []
    for line in run("ip", "netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith("srf") and "-" in name:
            tag = name[3:name.index("-")]
            if all(c in "0123456789abcdef" for c in tag) and tag and not _run_alive(int(tag, 16)):
                # Its nodes (started in their own sessions) outlive a runner killed with -9.
                for pid in run("ip", "netns", "pids", name, check=False).stdout.split():
                    try:
                        os.killpg(int(pid), signal.SIGKILL)
                    except OSError:
                        pass
                    try:
                        os.kill(int(pid), signal.SIGCONT)
                        os.kill(int(pid), signal.SIGKILL)
                    except OSError:
                        pass
                run("ip", "netns", "del", name, check=False)
                removed.append(name)
    for line in run("ip", "-o", "link", "show", check=False).stdout.splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@")[0]
        if name.startswith("srf") and name.endswith("br"):
            tag = name[3:-2]
            if all(c in "0123456789abcdef" for c in tag) and tag and not _run_alive(int(tag, 16)):
                run("ip", "link", "del", name, check=False)
                removed.append(name)
    with open("/proc/mounts") as f:
        mounts = [line.split()[1] for line in f]
    for m in mounts:
        if m.startswith("/tmp/srf-"):
            pid = m[len("/tmp/srf-"):].split("-")[0]
            if pid.isdigit() and not _run_alive(int(pid)):
                run("umount", "-l", m, check=False)
                removed.append(m)
    for d in glob.glob("/tmp/srf-*-*"):
        pid = d[len("/tmp/srf-"):].split("-")[0]
        if pid.isdigit() and not _run_alive(int(pid)) and os.path.isdir(d):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


class Network:
    """The bridge and the namespaces. Node i (1-based) gets 10.X.Y.i; the bridge (the clients'
    side) gets .254."""

    def __init__(self, tag):
        self.tag = tag  # short (interface names are at most 15 characters)
        self.bridge = "srf%sbr" % tag
        used = _used_subnets()
        rng = random.Random(os.getpid())
        for _ in range(200):
            net = ipaddress.ip_network("10.%d.%d.0/24" % (rng.randint(100, 250),
                                                         rng.randint(0, 255)))
            if not any(net.overlaps(u) for u in used):
                break
        else:
            raise RuntimeError("no free 10.x.y.0/24 for the fault network")
        self.net = net
        self.namespaces = {}  # name -> ip
        run("ip", "link", "add", self.bridge, "type", "bridge")
        run("ip", "addr", "add", "%s/24" % self.host_ip(), "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")

    def host_ip(self):
        return str(self.net.network_address + 254)

    def ip(self, index):
        return str(self.net.network_address + index)

    def ns_name(self, node):
        return "srf%s-%s" % (self.tag, node)

    def add(self, node, index):
        """Makes the namespace of `node` with address .index on the bridge, and its (empty)
        partition table."""
        ns = self.ns_name(node)
        veth = "srf%s%s" % (self.tag, node)
        ip = self.ip(index)
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        run("ip", "link", "set", veth, "master", self.bridge)
        run("ip", "link", "set", veth, "up")
        run("ip", "-n", ns, "addr", "add", "%s/24" % ip, "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "eth0", "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        self._nft(ns, "add table inet faults\n"
                      "add chain inet faults input { type filter hook input priority 0; }\n"
                      "add chain inet faults output { type filter hook output priority 0; }\n")
        self.namespaces[node] = ip
        return ip

    def netns_path(self, node):
        return "/run/netns/" + self.ns_name(node)

    @staticmethod
    def _nft(ns, script):
        r = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=script,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("nft in %s failed: %s\n%s" % (ns, r.stderr.strip(), script))

    def drop(self, node, frm=(), to=()):
        """In `node`'s namespace: drop packets arriving from the nodes in `frm` and packets
        leaving for the nodes in `to` (one direction each, so both make an asymmetric cut)."""
        lines = []
        for other in frm:
            lines.append("add rule inet faults input ip saddr %s drop" % self.namespaces[other])
        for other in to:
            lines.append("add rule inet faults output ip daddr %s drop" % self.namespaces[other])
        if lines:
            self._nft(self.ns_name(node), "\n".join(lines) + "\n")

    def cut(self, side_a, side_b):
        """A symmetric partition: no packet between any node of side_a and any of side_b."""
        for a in side_a:
            self.drop(a, frm=side_b, to=side_b)
        for b in side_b:
            self.drop(b, frm=side_a, to=side_a)

    def heal(self):
        for node in self.namespaces:
            self._nft(self.ns_name(node), "flush chain inet faults input\n"
                                          "flush chain inet faults output\n")

    def rules(self):
        out = {}
        for node in self.namespaces:
            r = run("ip", "netns", "exec", self.ns_name(node), "nft", "list", "table", "inet",
                    "faults", check=False)
            out[node] = r.stdout
        return out

    def destroy(self):
        for node in list(self.namespaces):
            run("ip", "link", "del", "srf%s%s" % (self.tag, node), check=False)
            run("ip", "netns", "del", self.ns_name(node), check=False)
        self.namespaces.clear()
        run("ip", "link", "del", self.bridge, check=False)
