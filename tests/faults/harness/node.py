"""One strongroomd node of the fault suite: its own SoftHSM2 token, its own data directory (a small
tmpfs, so that one node's disk can be filled), its configuration, and its process (with its
spawner and workers, one process group) running in its own network namespace.
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import time

from http_api import call

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
API_PORT = 8200  # and the cluster port 8201 (Vault's convention)


def run(args, env=None):
    r = subprocess.run(args, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(args), r.returncode,
                                                   (r.stderr or r.stdout).strip()))
    return r


class Node:
    def __init__(self, name, index, network, bin_dir, base_dir, issue_certs, data_mb=512,
                 faketime=False):
        self.name = name
        self.index = index
        self.network = network
        self.bin_dir = bin_dir
        self.dir = os.path.join(base_dir, name)
        self.data_mb = data_mb
        self.faketime = faketime
        self.ip = network.add(name, index)
        self.certs = issue_certs(name, self.ip)  # its own: naming it and its address
        self.api = "http://%s:%d" % (self.ip, API_PORT)
        self.proc = None
        self.paused = False
        self.generation = 0  # how many times the node was wiped and made anew
        self.starts = 0
        os.makedirs(self.dir)
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir)
        run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0700" % data_mb, "tmpfs",
             self.data_dir])
        self.mounted = True
        # The Raft path inside the tmpfs; the disk-full fault's filler file sits next to it.
        self.raft_dir = os.path.join(self.data_dir, "raft")
        os.makedirs(self.raft_dir)
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.faketime_path = os.path.join(self.dir, "faketime")
        self.set_clock_offset(0)
        self._make_token()

    # --- set-up ---------------------------------------------------------------------------

    def _make_token(self):
        """A fresh SoftHSM2 token (a new one also when the node is replaced)."""
        self.token_dir = os.path.join(self.dir, "token%d" % self.generation)
        os.makedirs(os.path.join(self.token_dir, "tokens"))
        self.softhsm_conf = os.path.join(self.token_dir, "softhsm2.conf")
        with open(self.softhsm_conf, "w") as f:
            f.write("directories.tokendir = %s/tokens/\nobjectstore.backend = file\n"
                    "log.level = ERROR\n" % self.token_dir)
        env = dict(os.environ, SOFTHSM2_CONF=self.softhsm_conf)
        run(["softhsm2-util", "--init-token", "--free", "--label", "strongroom-" + self.name,
             "--pin", "1234", "--so-pin", "5678"], env=env)
        with open(os.path.join(self.dir, "pin"), "w") as f:
            f.write("1234\n")
        self._write_config()

    def _write_config(self):
        self.config_path = os.path.join(self.dir, "strongroom.hcl")
        with open(self.config_path, "w") as f:
            f.write(
                'listener "tcp" {\n  address = "%s:%d"\n  tls_disable = true\n}\n'
                'storage "raft" {\n  path = "%s"\n  node_id = "%s"\n'
                '  cluster_ca_file = "%s"\n  cluster_cert_file = "%s"\n'
                '  cluster_key_file = "%s"\n}\n'
                'seal "pkcs11" {\n  lib = "/usr/lib/softhsm/libsofthsm2.so"\n'
                '  token_label = "strongroom-%s"\n  pin = "file://%s/pin"\n'
                '  key_label = "strongroom-kek"\n}\n'
                'workers = 1\n'
                'api_addr = "%s"\ncluster_addr = "https://%s:%d"\n'
                % (self.ip, API_PORT, self.raft_dir, self.name, self.certs["ca"],
                   self.certs["cert"], self.certs["key"], self.name, self.dir, self.api,
                   self.ip, API_PORT + 1))

    def wipe(self):
        """The node replaced by a new machine under the same name and address: empty data
        directory, new token (it joins afresh and receives the KEKs again)."""
        assert self.proc is None
        for entry in os.listdir(self.data_dir):
            p = os.path.join(self.data_dir, entry)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
        os.makedirs(self.raft_dir)
        self.generation += 1
        self._make_token()

    # --- the process ----------------------------------------------------------------------

    def start(self, timeout=60):
        """Starts strongroomd in the node's namespace; waits until it logs that it serves."""
        assert self.proc is None
        self.log(("=== start %d " % (self.starts + 1)) + "=" * 40)
        before = os.path.getsize(self.log_path)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SOFTHSM2_CONF": self.softhsm_conf}
        if self.faketime:
            # The broker only (the spawner gives workers an empty environment). Real time
            # moves; the wall clock the broker sees is offset by the control file's contents.
            env.update(LD_PRELOAD=FAKETIME_LIB, FAKETIME_TIMESTAMP_FILE=self.faketime_path,
                       FAKETIME_DONT_FAKE_MONOTONIC="1", FAKETIME_CACHE_DURATION="1")
        out = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["nsenter", "--net=" + self.network.netns_path(self.name), "--",
             os.path.join(self.bin_dir, "strongroomd"), "-config=" + self.config_path],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=self.dir, start_new_session=True)
        out.close()
        self.starts += 1
        self.paused = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(before)
                text = f.read().decode("utf-8", "replace")
            if "API on http" in text and "]: serving" in text:
                return True
            if self.proc.poll() is not None:
                self.proc = None
                return False
            time.sleep(0.05)
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def exit_status(self):
        """None while running (or never started); the status once it exited by itself."""
        return None if self.proc is None else self.proc.poll()

    def reap(self):
        """Forgets a process that exited; returns its status (None when it still runs)."""
        if self.proc is not None and self.proc.poll() is not None:
            status = self.proc.returncode
            self.proc = None
            return status
        return None

    def signal_group(self, sig):
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self):
        """kill -9 of the node: the broker, its spawner and its workers at once."""
        if self.proc is None:
            return
        self.signal_group(signal.SIGKILL)
        self.signal_group(signal.SIGCONT)
        self.proc.wait()
        self.proc = None
        self.paused = False
        self.log("=== killed (SIGKILL)")

    def stop(self, timeout=30):
        """SIGTERM and wait (SIGKILL after `timeout`)."""
        if self.proc is None:
            return None
        if self.paused:
            self.resume()
        self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            status = self.proc.wait()
        self.signal_group(signal.SIGKILL)  # a worker left behind
        self.proc = None
        return status

    def pause(self):
        self.signal_group(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.signal_group(signal.SIGCONT)
        self.paused = False

    def log(self, line):
        with open(self.log_path, "a") as f:
            f.write(line + "\n")

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # --- faults on the node's resources -------------------------------------------------------

    def set_clock_offset(self, seconds):
        """The wall-clock offset libfaketime gives the broker (when started with faketime)."""
        tmp = self.faketime_path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%+d\n" % seconds)
        os.rename(tmp, self.faketime_path)

    def fill_disk(self):
        """Fills the node's data tmpfs; returns the bytes written."""
        path = os.path.join(self.data_dir, "filler")
        chunk = b"\0" * (1 << 20)
        written = 0
        with open(path, "wb", buffering=0) as f:
            while True:
                try:
                    n = f.write(chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    # The last few pages: byte by byte would be slow; 4 KiB steps will do.
                    try:
                        while f.write(b"\0" * 4096):
                            written += 4096
                    except OSError:
                        pass
                    return written
                written += n

    def free_disk(self):
        path = os.path.join(self.data_dir, "filler")
        if os.path.exists(path):
            os.unlink(path)

    def disk_usage(self):
        st = os.statvfs(self.data_dir)
        return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_blocks * st.f_frsize

    def destroy(self):
        if self.proc is not None:
            self.signal_group(signal.SIGKILL)
            self.signal_group(signal.SIGCONT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None
        if self.mounted:
            subprocess.run(["umount", "-l", self.data_dir], capture_output=True)
            self.mounted = False

    # --- the API ----------------------------------------------------------------------------

    def call(self, method, path, body=None, token=None, timeout=5.0):
        return call(self.ip, API_PORT, method, path, body, token, timeout)

    def health(self, timeout=2.0):
        """sys/health's status code (200 active, 429 standby, 501 not initialised, 503 sealed)
        or None when the node does not answer."""
        r = self.call("GET", "/v1/sys/health", timeout=timeout)
        return r.status

    def health_body(self, timeout=2.0):
        r = self.call("GET", "/v1/sys/health", timeout=timeout)
        try:
            return r.status, json.loads(r.body) if r.body else {}
        except ValueError:
            return r.status, {}
