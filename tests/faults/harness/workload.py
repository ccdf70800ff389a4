"""The workload: several clients, each a thread, sending KV v2 writes, check-and-set writes
(options.cas) and reads to random nodes of the cluster, and recording every operation with its
invocation time, completion time and result in the history format of tests/faults/history.h.

What an answer means (the harness must never call "did not happen" what may have happened):
  ok       200 (a write's answer names its version; a read's names the value and version), or a
           404 with an empty error list (a read of a key with no version yet)
  fail     a CAS refused with "check-and-set parameter did not match" (the write did not happen,
           and the version was not the expected one at some point)
  unknown  no answer after the request was sent (timeout, reset), a 5xx, or any other answer
           to a write: it may have taken effect at any time after its invocation, or never
  dropped  (not in the history) the request never left (connection refused), or the node said
           it did not serve it at all (sealed, not initialised, no leader, becoming active);
           reads that got no ok answer constrain nothing and are dropped too
A 307 is followed once to the Location it names, as Vault's Go client does.
"""

import json
import random
import threading
import time
import urllib.parse

from http_api import call

NOT_SERVED = ("Vault is sealed", "not initialized", "no active Vault instance",
              "becoming the active node", "standby mode")
CAS_MISMATCH = "check-and-set parameter did not match"


class History:
    """The round's history file; thread-safe."""

    def __init__(self, path, t0):
        self.path = path
        self.t0 = t0
        self.lock = threading.Lock()
        self.f = open(path, "w")
        self.counts = {"ok": 0, "fail": 0, "unknown": 0, "dropped": 0}
        self.ok_times = []  # completion times of ok operations (for availability gaps)
        self.errors = {}  # sample answers that were dropped or unknown, by text

    def now(self):
        return time.monotonic_ns() - self.t0

    def record(self, op):
        with self.lock:
            self.counts[op["outcome"]] += 1
            if op["outcome"] == "ok":
                self.ok_times.append(op["complete"])
            self.f.write(json.dumps(op, separators=(",", ":")) + "\n")

    def drop(self, why):
        with self.lock:
            self.counts["dropped"] += 1
            self.errors[why] = self.errors.get(why, 0) + 1

    def note(self, why):
        with self.lock:
            self.errors[why] = self.errors.get(why, 0) + 1

    def final(self, key, current, versions):
        with self.lock:
            self.f.write(json.dumps({"final": key, "current": current,
                                     "versions": {str(k): v for k, v in versions.items()}},
                                    separators=(",", ":")) + "\n")

    def close(self):
        with self.lock:
            self.f.close()

    def max_gap(self, start, end):
        """The longest time (seconds) in [start, end] with no ok operation completing."""
        with self.lock:
            times = sorted(t for t in self.ok_times if start <= t <= end)
        points = [start] + times + [end]
        return max(b - a for a, b in zip(points, points[1:])) / 1e9


class KeySpace:
    """A few keys in use at once; a key is retired after `max_ops` operations or `max_unknown`
    unknown outcomes (so each key's history stays small enough to search), and a new one takes
    its slot (as Jepsen's independent keys)."""

    def __init__(self, prefix, slots=3, max_ops=150, max_unknown=8):
        self.prefix = prefix
        self.max_ops = max_ops
        self.max_unknown = max_unknown
        self.lock = threading.Lock()
        self.next = 0
        self.slots = [self._new() for _ in range(slots)]
        self.used = []
        self.ops = {}
        self.unknown = {}

    def _new(self):
        self.next += 1
        return "%s-k%d" % (self.prefix, self.next)

    def pick(self, rng):
        with self.lock:
            i = rng.randrange(len(self.slots))
            key = self.slots[i]
            n = self.ops.get(key, 0)
            if n == 0:
                self.used.append(key)
            self.ops[key] = n + 1
            if n + 1 >= self.max_ops:
                self.slots[i] = self._new()
            return key

    def note_unknown(self, key):
        with self.lock:
            self.unknown[key] = self.unknown.get(key, 0) + 1
            if self.unknown[key] >= self.max_unknown and key in self.slots:
                self.slots[self.slots.index(key)] = self._new()

    def all_used(self):
        with self.lock:
            return list(self.used)


def _host_port(location):
    u = urllib.parse.urlsplit(location)
    return u.hostname, u.port or 8200, (u.path + ("?" + u.query if u.query else ""))


def send(node_ip, port, method, path, body, token, timeout):
    """One request, following one 307 (as Vault's client does). Returns (response, redirected)."""
    r = call(node_ip, port, method, path, body, token, timeout)
    if r.status == 307 and r.headers.get("location"):
        host, p, where = _host_port(r.headers["location"])
        if host:
            return call(host, p, method, where or path, body, token, timeout), True
    return r, False


def _refused(r):
    """The node said it did not serve the request at all."""
    errs = r.errors() or []
    return r.status in (429, 501, 503) and any(s in e for e in errs if isinstance(e, str)
                                               for s in NOT_SERVED)


def _describe(r):
    if r.status is None:
        return r.error.split(":")[0] + (" (sent)" if r.sent else " (not sent)")
    errs = r.errors()
    text = errs[0] if errs else ""
    return ("%d %s" % (r.status, text))[:120]


class Client(threading.Thread):
    def __init__(self, cid, targets, keys, history, stop, token, seed, timeout=5.0,
                 think=0.01, mix=(0.4, 0.3, 0.3)):
        super().__init__(name="client-%d" % cid, daemon=True)
        self.cid = cid
        self.targets = targets  # a callable: the nodes (ip, name) to spread requests over
        self.keys = keys
        self.history = history
        self.stop = stop
        self.token = token
        self.rng = random.Random(seed)
        self.timeout = timeout
        self.think = think
        self.mix = mix
        self.seq = 0
        self.seen = {}  # key -> the last version this client saw (for its CAS)

    def run(self):
        while not self.stop.is_set():
            targets = self.targets()
            if not targets:
                time.sleep(0.1)
                continue
            ip, name = self.rng.choice(targets)
            key = self.keys.pick(self.rng)
            x = self.rng.random()
            if x < self.mix[0]:
                served = self.read(ip, name, key)
            elif x < self.mix[0] + self.mix[1]:
                served = self.write(ip, name, key, None)
            else:
                served = self.write(ip, name, key, self.seen.get(key, 0))
            # A node that refuses at once (down, sealed, no leader) is not hammered.
            pause = self.think if served else max(self.think, 0.1)
            if pause:
                time.sleep(self.rng.uniform(0, 2 * pause))

    def read(self, ip, name, key):
        op = {"op": "read", "key": key, "client": self.cid, "node": name,
              "invoke": self.history.now()}
        r, redirected = send(ip, 8200, "GET", "/v1/secret/data/" + key, None, self.token,
                             self.timeout)
        op["complete"] = self.history.now()
        if redirected:
            op["detail"] = "after 307"
        if r.status == 200:
            d = r.json().get("data") or {}
            meta = d.get("metadata") or {}
            data = d.get("data")
            version = meta.get("version")
            if isinstance(data, dict) and isinstance(data.get("v"), str) and \
                    isinstance(version, int) and version > 0:
                op.update(outcome="ok", found=True, value=data["v"], version=version)
                self.seen[key] = max(self.seen.get(key, 0), version)
                self.history.record(op)
                return True
            self.history.drop("read 200 with an unexpected body: " + r.body[:80])
            return False
        if r.status == 404 and r.errors() == []:
            op.update(outcome="ok", found=False, version=0)
            self.history.record(op)
            return True
        self.history.drop("read: " + ("after 307: " if redirected else "") + _describe(r))
        return False

    def write(self, ip, name, key, cas):
        self.seq += 1
        value = "c%d-%d" % (self.cid, self.seq)
        body = {"data": {"v": value}}
        op = {"op": "write" if cas is None else "cas", "key": key, "value": value,
              "client": self.cid, "node": name}
        if cas is not None:
            body["options"] = {"cas": cas}
            op["cas"] = cas
        op["invoke"] = self.history.now()
        r, redirected = send(ip, 8200, "POST", "/v1/secret/data/" + key, body, self.token,
                             self.timeout)
        op["complete"] = self.history.now()
        detail = "after 307; " if redirected else ""
        if r.status == 200:
            version = (r.json().get("data") or {}).get("version")
            if isinstance(version, int) and version > 0:
                op.update(outcome="ok", version=version)
                self.seen[key] = max(self.seen.get(key, 0), version)
                if redirected:
                    op["detail"] = "after 307"
                self.history.record(op)
                return True
            detail += "200 without a version"
        elif cas is not None and r.status == 400 and any(
                CAS_MISMATCH in e for e in (r.errors() or []) if isinstance(e, str)):
            op.update(outcome="fail", detail=detail + "cas mismatch")
            self.history.record(op)
            return True
        elif not redirected and r.status is None and not r.sent:
            self.history.drop("write: " + _describe(r))
            return False
        elif not redirected and _refused(r):
            self.history.drop("write: " + _describe(r))
            return False
        # Anything else may have taken effect.
        op["outcome"] = "unknown"
        op["detail"] = detail + _describe(r)
        del op["complete"]
        self.history.note("write unknown: " + op["detail"])
        self.keys.note_unknown(key)
        self.history.record(op)
        return False


def run_clients(n, targets, keys, history, token, seed, timeout, think):
    stop = threading.Event()
    clients = [Client(i + 1, targets, keys, history, stop, token, seed * 1000 + i, timeout,
                      think) for i in range(n)]
    for c in clients:
        c.start()
    return stop, clients
