"""The fault suite's runner: rounds of (workload, fault, heal, recovery, check) against a cluster
of real strongroomd nodes in network namespaces. See tests/faults/README.md."""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from cluster import Cluster, ClusterError
from faults import all_faults, by_name
from network import cleanup_stale
from workload import History, KeySpace, run_clients, send

CI_FAULTS = ["kill-leader", "pause-leader", "partition-leader"]
COUNTS = ("lost_writes", "stale_reads", "duplicated_writes", "nonlinearizable_keys")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="tests/faults/run.sh", description=__doc__)
    p.add_argument("--rounds", type=int, default=None, help="rounds to run (default 10; --ci 3)")
    p.add_argument("--nodes", type=int, default=3, choices=(3, 5))
    p.add_argument("--faults", default="", help="comma-separated fault names, used in turn "
                   "(default: every fault that applies; --ci: %s)" % ",".join(CI_FAULTS))
    p.add_argument("--shuffle", action="store_true", help="pick faults at random, not in turn")
    p.add_argument("--ci", action="store_true", help="the short CI schedule")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--build", default=None, help="the build directory (default: build)")
    p.add_argument("--bin", default=None, help="the folder holding the strongroomd and "
                   "strongroom-worker to test (default: BUILD/appliance)")
    p.add_argument("--out", default=None, help="where histories and reports go")
    p.add_argument("--clients", type=int, default=5)
    p.add_argument("--think", type=float, default=0.01, help="mean pause between a client's "
                   "operations, seconds")
    p.add_argument("--timeout", type=float, default=5.0, help="client request timeout, seconds")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--hold", type=float, default=10.0, help="how long a fault lasts, seconds")
    p.add_argument("--cooldown", type=float, default=3.0)
    p.add_argument("--recover-deadline", type=float, default=120.0,
                   help="how long the cluster may take to serve again after a heal, seconds")
    p.add_argument("--faketime", choices=("auto", "yes", "no"), default="auto",
                   help="preload libfaketime into every broker (needed by clock-jump)")
    p.add_argument("--list", action="store_true", help="list the faults and exit")
    a = p.parse_args(argv)
    if a.ci:
        a.rounds = a.rounds or 3
        a.faults = a.faults or ",".join(CI_FAULTS)
        a.hold = min(a.hold, 8.0)
    a.rounds = a.rounds if a.rounds is not None else 10
    if a.rounds < 1:
        p.error("--rounds must be at least 1")
    return a


class Say:
    """Prints (flushed) and keeps a copy in the report."""

    def __init__(self, path):
        self.f = open(path, "a")

    def __call__(self, *parts):
        line = " ".join(str(p) for p in parts)
        print(line, flush=True)
        self.f.write(line + "\n")
        self.f.flush()


def status_text(status):
    if status < 0:
        try:
            return signal.Signals(-status).name
        except ValueError:
            return "signal %d" % -status
    return "status %d" % status


def final_reads(cluster, keys, history):
    """Each key read through every member, then its version table read through the active
    node (for the lost-write check)."""
    leader = cluster.leader()
    for key in keys.all_used():
        current = 0
        for name in cluster.members:
            node = cluster.nodes[name]
            op = {"op": "read", "key": key, "client": 0, "node": name, "invoke": history.now()}
            r, _ = send(node.ip, 8200, "GET", "/v1/secret/data/" + key, None, cluster.root, 10)
            op["complete"] = history.now()
            if r.status == 200:
                d = r.json().get("data") or {}
                v = (d.get("metadata") or {}).get("version")
                val = (d.get("data") or {}).get("v")
                if isinstance(v, int) and v > 0 and isinstance(val, str):
                    op.update(outcome="ok", found=True, value=val, version=v)
                    history.record(op)
                    current = max(current, v)
            elif r.status == 404 and r.errors() == []:
                op.update(outcome="ok", found=False, version=0)
                history.record(op)
        if leader is None or current == 0:
            continue
        versions = {}
        for n in range(1, current + 1):
            r = cluster.nodes[leader].call("GET", "/v1/secret/data/%s?version=%d" % (key, n),
                                           token=cluster.root, timeout=10)
            if r.status == 200:
                d = r.json().get("data") or {}
                val = (d.get("data") or {}).get("v")
                if isinstance(val, str) and (d.get("metadata") or {}).get("version") == n:
                    versions[n] = val
        history.final(key, current, versions)


def check(checker, path):
    r = subprocess.run([checker, path], capture_output=True, text=True)
    lines = r.stdout.strip().splitlines()
    if r.returncode not in (0, 1) or not lines:
        raise RuntimeError("%s %s failed (%d): %s" % (checker, path, r.returncode,
                                                        r.stderr.strip()))
    return json.loads(lines[-1]), lines[:-1]


class Runner:
    def __init__(self, args):
        self.args = args
        root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
        build = os.path.abspath(args.build or os.path.join(root, "build"))
        self.bin_dir = os.path.abspath(args.bin) if args.bin else os.path.join(build, "appliance")
        self.checker = os.path.join(build, "tests", "faults", "strongroom-fault-check")
        for f in (os.path.join(self.bin_dir, "strongroomd"),
                  os.path.join(self.bin_dir, "strongroom-worker"), self.checker):
            if not os.access(f, os.X_OK):
                raise SystemExit("faults: %s is missing (build strongroomd strongroom-worker "
                                 "strongroom-fault-check)" % f)
        if os.geteuid() != 0:
            raise SystemExit("faults: needs root (network namespaces, nftables, tmpfs mounts)")
        for tool in ("ip", "nft", "nsenter", "softhsm2-util", "openssl", "mount"):
            if shutil.which(tool) is None:
                raise SystemExit("faults: %s is missing (packaging/install-deps.sh)" % tool)
        self.seed = args.seed if args.seed is not None else random.randrange(1 << 30)
        self.rng = random.Random(self.seed)
        self.out = args.out or tempfile.mkdtemp(prefix="strongroom-faults-")
        os.makedirs(self.out, exist_ok=True)
        self.say = Say(os.path.join(self.out, "report.txt"))
        stale = cleanup_stale()
        if stale:
            print("faults: removed what earlier runs left behind: " + " ".join(stale))
        # The pid names this run's interfaces, namespaces and mounts (cleanup_stale).
        self.work = tempfile.mkdtemp(prefix="srf-%d-" % os.getpid())
        self.tag = "%x" % os.getpid()
        names = [n for n in args.faults.split(",") if n]
        faketime = args.faketime == "yes" or (
            args.faketime == "auto" and (not names or "clock-jump" in names))
        if faketime and not os.path.exists("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"):
            raise SystemExit("faults: libfaketime is missing (packaging/install-deps.sh)")
        self.faketime = faketime
        self.faults = by_name(names) if names else all_faults()
        self.cluster = None
        self.generation = 0
        self.totals = {k: 0 for k in COUNTS}
        self.totals.update(ops=0, rounds=0, unrecovered=0, undecided_keys=0, exits=0, crashes=0,
                           problems=0)
        self.per_fault = {}

    def new_cluster(self):
        if self.cluster is not None:
            self.cluster.destroy()
            self.cluster = None
        self.generation += 1
        work = os.path.join(self.work, "cluster%d" % self.generation)
        os.makedirs(work)
        self.cluster = Cluster(self.args.nodes, 1, self.bin_dir, work, self.tag,
                               faketime=self.faketime, say=self.say)
        t = time.monotonic()
        self.cluster.create()
        self.say("cluster %d: %d nodes on %s (bridge %s), leader %s, up in %.1fs" % (
            self.generation, self.args.nodes, self.cluster.network.net,
            self.cluster.network.bridge, self.cluster.leader(), time.monotonic() - t))

    def pick(self, i):
        usable = [f for f in self.faults if f.applies(self.cluster)]
        if not usable:
            raise SystemExit("faults: no fault in the schedule applies to this cluster")
        return self.rng.choice(usable) if self.args.shuffle else usable[i % len(usable)]

    def round(self, i):
        a = self.args
        c = self.cluster
        fault = self.pick(i)
        t0 = time.monotonic_ns()
        path = os.path.join(self.out, "round-%03d.jsonl" % (i + 1))
        history = History(path, t0)
        keys = KeySpace("r%d" % (i + 1))

        def targets():
            return [(c.nodes[n].ip, n) for n in list(c.targets)]

        stop, clients = run_clients(a.clients, targets, keys, history, c.root,
                                    self.seed + i, a.timeout, a.think)
        time.sleep(a.warmup)
        t_fault = history.now()
        fault.problem = None
        healed = True
        try:
            what = fault.inject(c, self.rng)
        except Exception as e:  # noqa: BLE001 - a fault that could not be injected is reported
            what = "inject failed: %s" % (str(e).splitlines() or [repr(e)])[0]
        time.sleep(a.hold)
        try:
            fault.heal(c, self.rng)
        except Exception as e:  # noqa: BLE001
            what += "; heal failed: %s" % (str(e).splitlines() or [repr(e)])[0]
            healed = False
        exits = c.restart_exited()
        recovered, took, reason = c.wait_recovered(a.recover_deadline)
        exits += c.exits_while_waiting
        c.exits_while_waiting = []
        if not healed:
            # The cluster may serve, but not as the schedule meant it to (a member missing).
            recovered, reason = False, "the heal failed"
        exits += c.restart_exited()
        if recovered:
            time.sleep(a.cooldown)
        stop.set()
        for cl in clients:
            cl.join(a.timeout * 3 + 10)
        t_end = history.now()
        if recovered:
            final_reads(c, keys, history)
        history.close()
        summary, details = check(self.checker, path)
        with open(os.path.join(self.out, "round-%03d.check.txt" % (i + 1)), "w") as f:
            f.write("\n".join(details) + "\n" + json.dumps(summary) + "\n")

        anomalies = sum(summary[k] for k in COUNTS)
        gap_fault = history.max_gap(t_fault, t_end)
        line = ("round %d/%d %s [%s] ops %d (ok %d, cas-fail %d, unknown %d; dropped %d) "
                "max-gap %.1fs %s | lost %d stale %d dup %d non-linearizable keys %d/%d" % (
                    i + 1, a.rounds, fault.name, what, summary["ops"], summary["ok"],
                    summary["fail"], summary["unknown"], history.counts["dropped"], gap_fault,
                    ("recovered in %.1fs" % took) if recovered else
                    ("NOT RECOVERED in %.0fs (%s)" % (took, reason)),
                    summary["lost_writes"], summary["stale_reads"],
                    summary["duplicated_writes"], summary["nonlinearizable_keys"],
                    summary["keys"]))
        if summary["undecided_keys"]:
            line += " undecided %d" % summary["undecided_keys"]
        if exits:
            line += " | exited: " + ", ".join("%s %s" % (n, status_text(s)) for n, s in exits)
        if isinstance(fault.__dict__.get("after"), str):
            line += " | after heal: " + fault.after
        # A node that exits with a status (a state machine that cannot apply exits 1) stops
        # loudly, as it should; one killed by a signal the harness did not send crashed.
        crashes = [n for n, s in exits if s < 0]
        if crashes:
            line += " | CRASHED: " + ", ".join(crashes)
        if fault.problem:
            line += " | PROBLEM: " + fault.problem
        self.say(line)
        if anomalies:
            for d in details[:12]:
                self.say("    " + d)
        top = sorted(history.errors.items(), key=lambda kv: -kv[1])[:4]
        if top:
            self.say("    errors: " + "; ".join("%dx %s" % (n, e) for e, n in top))

        self.totals["rounds"] += 1
        self.totals["ops"] += summary["ops"]
        self.totals["undecided_keys"] += summary["undecided_keys"]
        self.totals["exits"] += len(exits)
        self.totals["crashes"] += len(crashes)
        self.totals["problems"] += 1 if fault.problem else 0
        for k in COUNTS:
            self.totals[k] += summary[k]
        pf = self.per_fault.setdefault(fault.name, {k: 0 for k in COUNTS + (
            "rounds", "ops", "unrecovered", "exits", "crashes", "problems")})
        pf["rounds"] += 1
        pf["ops"] += summary["ops"]
        pf["exits"] += len(exits)
        pf["crashes"] += len(crashes)
        pf["problems"] += 1 if fault.problem else 0
        for k in COUNTS:
            pf[k] += summary[k]
        if anomalies or not recovered or exits or fault.problem:
            keep = os.path.join(self.out, "round-%03d-logs" % (i + 1))
            os.makedirs(keep, exist_ok=True)
            for n in c.nodes.values():
                if os.path.exists(n.log_path):
                    shutil.copy(n.log_path, os.path.join(keep, n.name + ".log"))
        if not recovered:
            self.totals["unrecovered"] += 1
            pf["unrecovered"] += 1
            for n in c.members:
                self.say("    %s: %s" % (n, c.nodes[n].log_tail(3).replace("\n", "\n        ")))
            self.new_cluster()  # the next round starts from a healthy cluster

    def run(self):
        a = self.args
        self.say("faults: seed %d, %d rounds, %d nodes, %d clients, faults %s, out %s" % (
            self.seed, a.rounds, a.nodes, a.clients, ",".join(f.name for f in self.faults),
            self.out))
        try:
            self.new_cluster()
            for i in range(a.rounds):
                self.round(i)
        except ClusterError as e:
            # A cluster that cannot even be made is a failure of the run, not of a round.
            self.say("faults: could not build a cluster: %s" % e)
            self.totals["unrecovered"] += 1
        finally:
            if self.cluster is not None:
                self.cluster.destroy()
            shutil.rmtree(self.work, ignore_errors=True)
        t = self.totals
        self.say("by fault:")
        for name, pf in sorted(self.per_fault.items()):
            self.say("  %-22s rounds %3d ops %6d lost %d stale %d dup %d non-linearizable %d "
                     "unrecovered %d exits %d crashes %d problems %d" % (
                         name, pf["rounds"], pf["ops"], pf["lost_writes"], pf["stale_reads"],
                         pf["duplicated_writes"], pf["nonlinearizable_keys"], pf["unrecovered"],
                         pf["exits"], pf["crashes"], pf["problems"]))
        self.say("faults: rounds %d, operations checked %d, lost acknowledged writes %d, stale "
                 "reads %d, duplicated writes %d, linearizability violations %d, unrecovered "
                 "rounds %d, undecided keys %d, node exits %d, crashes %d, fault problems %d "
                 "(seed %d, report %s)" % (
                     t["rounds"], t["ops"], t["lost_writes"], t["stale_reads"],
                     t["duplicated_writes"], t["nonlinearizable_keys"], t["unrecovered"],
                     t["undecided_keys"], t["exits"], t["crashes"], t["problems"], self.seed,
                     self.out))
        bad = (sum(t[k] for k in COUNTS) + t["unrecovered"] + t["undecided_keys"] + t["crashes"] +
               t["problems"])
        return 1 if bad else 0


def main(argv):
    args = parse_args(argv)
    if args.list:
        for f in all_faults():
            doc = " ".join((f.__doc__ or "").split())
            print("%-22s %s" % (f.name, doc.split(". ")[0].rstrip(".") + "."))
        return 0

    def terminate(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, terminate)
    return Runner(args).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
