#!/usr/bin/env python3
"""Checks the Kubernetes manifests in deploy/kubernetes/ without a cluster.

Parses every YAML document (PyYAML), checks kinds and apiVersions against the ones these
manifests may use, the StatefulSet's shape (replicas, volume claims, anti-affinity, security
context, probes, mounts), that the Services and the PodDisruptionBudget select the server pods,
that references (service account, ConfigMap, Secrets, ports, the ConfigMap's file paths) resolve,
and runs yamllint (relaxed rules, the repository's 100-column lines). Also the process users of
every shipped deployment (check_process_users: the systemd unit, the packages' users, the pods). Prints one line per check;
exits 1 if any fails. kubectl cannot help offline: even `apply --dry-run=client` asks an API
server for its resource list.

The CSI provider (deploy/kubernetes/csi/, check_csi): its DaemonSet runs `/usr/bin/strongroom
csi-provider` non-root without capabilities, mounts only its own directory of the host's
providers directory (an init container, root with CHOWN alone, makes it and the symlink the
driver dials), probes the socket with -check, reads the version key and strongroom's CA from
Secrets that have templates; its NetworkPolicy lets nothing in and only strongroom's API and DNS
out; the example SecretProviderClass names the socket's provider, a role and policy that
deploy/kubernetes/init/strongroom-init.sh writes (audience and namespace included), the CA
mounted in the provider, and objects whose YAML parses and whose secretObjects resolve.

The injector (deploy/kubernetes/injector/, check_injector): its Deployment runs
`/usr/bin/strongroom injector` hardened like the servers, the Service and the
MutatingWebhookConfiguration resolve to it (service, namespace, port, path /mutate, the
container port of -listen), the webhook is v1-only, sideEffects None, with a failurePolicy and a
namespaceSelector that leaves its own namespace out, and make-tls.sh makes its Secret. Its
NetworkPolicy (check_injector_network_policy) selects exactly the injector pods and lets in
only TCP to the webhook's container port.

Usage: tests/deploy/check_manifests.py [DIR]   (default: deploy/kubernetes next to this tree)
"""

import glob
import os
import re
import shutil
import subprocess
import sys

import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
NAMESPACE = "strongroom"
SERVER_LABELS = {"app.kubernetes.io/name": "strongroom", "app.kubernetes.io/component": "server"}
KNOWN = {
    ("v1", "Namespace"): False,  # namespaced?
    ("v1", "ServiceAccount"): True,
    ("v1", "ConfigMap"): True,
    ("v1", "Secret"): True,
    ("v1", "Service"): True,
    ("apps/v1", "StatefulSet"): True,
    ("apps/v1", "Deployment"): True,
    ("policy/v1", "PodDisruptionBudget"): True,
    ("batch/v1", "Job"): True,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): False,
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"): False,
    ("networking.k8s.io/v1", "NetworkPolicy"): True,
    ("apps/v1", "DaemonSet"): True,
    ("secrets-store.csi.x-k8s.io/v1", "SecretProviderClass"): True,
}
INJECTOR_DIR = "injector"  # deploy/kubernetes/injector: the admission webhook (its own checks)
CSI_DIR = "csi"  # deploy/kubernetes/csi: the Secrets Store CSI provider (its own checks)
CSI_NAMESPACE = "strongroom-csi"
CSI_LABELS = {"app.kubernetes.io/name": "strongroom", "app.kubernetes.io/component": "csi-provider"}
PROVIDERS_DIR = "/var/run/secrets-store-csi-providers"  # the driver's --provider-volume
INJECTOR_LABELS = {"app.kubernetes.io/name": "strongroom", "app.kubernetes.io/component": "injector"}
YAMLLINT_CONFIG = "{extends: relaxed, rules: {line-length: {max: 100}}}"


class Checker:
    def __init__(self):
        self.failures = 0
        self.passes = 0

    def check(self, ok, what):
        if ok:
            self.passes += 1
            print(f"ok - {what}")
        else:
            self.failures += 1
            print(f"FAIL - {what}")
        return ok


def get(obj, *path, default=None):
    for key in path:
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
        elif isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj):
            obj = obj[key]
        else:
            return default
    return obj


def selects(selector, labels):
    """A label selector (a plain map or matchLabels) selects pods carrying these labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def load(directory, c):
    objects = []
    files = sorted(glob.glob(os.path.join(directory, "**", "*.yaml"), recursive=True))
    c.check(files, f"YAML files found under {directory}")
    for path in files:
        rel = os.path.relpath(path, ROOT)
        try:
            with open(path, encoding="utf-8") as f:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            c.check(False, f"{rel}: parses ({e})")
            continue
        c.check(docs, f"{rel}: parses ({len(docs)} documents)")
        for doc in docs:
            doc["__in_dir"] = os.path.relpath(path, directory)
            objects.append((rel, doc))
    return objects


def check_objects(objects, c):
    for rel, o in objects:
        key = (o.get("apiVersion"), o.get("kind"))
        name = get(o, "metadata", "name")
        c.check(key in KNOWN, f"{rel}: {key[1]} {name}: known kind and apiVersion {key[0]}")
        c.check(isinstance(name, str) and re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name or ""),
                f"{rel}: {key[1]} {name}: valid metadata.name")
        if KNOWN.get(key):
            parts = o["__in_dir"].split(os.sep)
            if parts[0] == CSI_DIR and len(parts) > 1 and parts[1] == "examples":
                # Examples live in the application's namespace.
                ns = get(o, "metadata", "namespace") or ""
                c.check(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", ns) and not ns.startswith("strongroom"),
                        f"{rel}: {key[1]} {name}: in an application namespace ({ns})")
            else:
                expected = CSI_NAMESPACE if parts[0] == CSI_DIR else NAMESPACE
                c.check(get(o, "metadata", "namespace") == expected,
                        f"{rel}: {key[1]} {name}: in namespace {expected}")
        if key[1] == "Secret":
            values = {**(o.get("stringData") or {}), **(o.get("data") or {})}
            c.check("secret-templates" in os.path.dirname(o["__in_dir"]).split(os.sep),
                    f"{rel}: Secret {name} is a template, not applied with the folder")
            c.check(all(v in ("", None) for v in values.values()),
                    f"{rel}: Secret {name} holds no value")


def find(objects, kind, name=None):
    found = [o for _, o in objects if o.get("kind") == kind and
             (name is None or get(o, "metadata", "name") == name)]
    return found


def check_pod_security(spec, what, c):
    psc = spec.get("securityContext") or {}
    c.check(psc.get("runAsNonRoot") is True, f"{what}: pod runAsNonRoot")
    c.check(psc.get("runAsUser") == 10001 and psc.get("runAsGroup") == 10001,
            f"{what}: pod runAsUser/runAsGroup 10001")
    c.check(get(psc, "seccompProfile", "type") == "RuntimeDefault", f"{what}: seccompProfile RuntimeDefault")
    for ctr in spec.get("containers") or []:
        sc = ctr.get("securityContext") or {}
        cw = f"{what}: container {ctr.get('name')}"
        c.check(sc.get("allowPrivilegeEscalation") is False, f"{cw}: allowPrivilegeEscalation false")
        c.check(sc.get("readOnlyRootFilesystem") is True, f"{cw}: readOnlyRootFilesystem")
        c.check(get(sc, "capabilities", "drop") == ["ALL"], f"{cw}: capabilities drop ALL")
        c.check(not sc.get("privileged") and not get(sc, "capabilities", "add"), f"{cw}: no privileges added")
        c.check(get(ctr, "resources", "requests") and get(ctr, "resources", "limits", "memory"),
                f"{cw}: resource requests and a memory limit")
        mounts = {m["mountPath"]: m["name"] for m in ctr.get("volumeMounts") or []}
        c.check("/tmp" in mounts, f"{cw}: writable /tmp (read-only root)")


def check_volumes(spec, claim_names, objects, what, c):
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for ctr in spec.get("containers") or []:
        for m in ctr.get("volumeMounts") or []:
            c.check(m["name"] in volumes or m["name"] in claim_names,
                    f"{what}: mount {m['mountPath']} uses a defined volume ({m['name']})")
    for v in volumes.values():
        if "configMap" in v:
            c.check(find(objects, "ConfigMap", v["configMap"]["name"]),
                    f"{what}: ConfigMap {v['configMap']['name']} exists")
        if "secret" in v:
            c.check(find(objects, "Secret", v["secret"]["secretName"]),
                    f"{what}: Secret {v['secret']['secretName']} has a template")
    return volumes


def check_statefulset(objects, c):
    sets = find(objects, "StatefulSet")
    if not c.check(len(sets) == 1, "one StatefulSet"):
        return None
    s = sets[0]
    spec = s["spec"]
    pod = get(spec, "template", "spec") or {}
    labels = get(spec, "template", "metadata", "labels") or {}
    # The reference layout: a Raft cluster of 3 (5 in production).
    c.check(spec.get("replicas") == 3, "StatefulSet: replicas 3")
    c.check(selects(get(spec, "selector", "matchLabels"), labels), "StatefulSet: selector matches its pod labels")
    c.check(selects(SERVER_LABELS, labels), "StatefulSet: pods carry the server labels")
    headless = find(objects, "Service", spec.get("serviceName"))
    c.check(headless and get(headless[0], "spec", "clusterIP") == "None",
            f"StatefulSet: serviceName {spec.get('serviceName')} is a headless Service")
    claims = {get(t, "metadata", "name"): t for t in spec.get("volumeClaimTemplates") or []}
    for name, size in (("data", "20Gi"), ("audit", "10Gi")):
        c.check(get(claims.get(name), "spec", "resources", "requests", "storage") == size,
                f"StatefulSet: volumeClaimTemplate {name} {size}")
        c.check(get(claims.get(name), "spec", "accessModes") == ["ReadWriteOnce"],
                f"StatefulSet: volumeClaimTemplate {name} ReadWriteOnce")
    terms = get(pod, "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution") or []
    c.check(any(t.get("topologyKey") == "kubernetes.io/hostname" and
                selects(get(t, "labelSelector", "matchLabels"), labels) for t in terms),
            "StatefulSet: required pod anti-affinity per host on its own pods")
    c.check(get(pod, "securityContext", "fsGroup") == 10001, "StatefulSet: fsGroup 10001")
    check_pod_security(pod, "StatefulSet", c)
    c.check(pod.get("serviceAccountName") == "strongroom" and find(objects, "ServiceAccount", "strongroom"),
            "StatefulSet: service account strongroom exists")

    ctr = get(pod, "containers", 0) or {}
    ports = {p.get("name"): p.get("containerPort") for p in ctr.get("ports") or []}
    c.check(ports.get("api") == 8200 and ports.get("cluster") == 8201, "StatefulSet: ports api 8200, cluster 8201")
    probes = {
        "readinessProbe": "/v1/sys/health?standbyok=true",
        "livenessProbe": "/v1/sys/health?standbyok=true&sealedcode=200&uninitcode=200",
    }
    for probe, path in probes.items():
        c.check(get(ctr, probe, "httpGet", "path") == path, f"StatefulSet: {probe} on {path}")
        c.check(get(ctr, probe, "httpGet", "port") in ("api", 8200), f"StatefulSet: {probe} on the API port")
        c.check(get(ctr, probe, "httpGet", "scheme") == "HTTPS", f"StatefulSet: {probe} over HTTPS")
    volumes = check_volumes(pod, set(claims), objects, "StatefulSet", c)
    mounts = {m["mountPath"]: m["name"] for m in ctr.get("volumeMounts") or []}
    c.check(mounts.get("/var/lib/strongroom") == "data", "StatefulSet: data volume at /var/lib/strongroom")
    c.check(mounts.get("/var/log/strongroom/audit") == "audit", "StatefulSet: audit volume at /var/log/strongroom/audit")

    # The entrypoint's environment and the ConfigMap's paths agree with the mounts.
    env = {e["name"]: e.get("value") for e in ctr.get("env") or []}
    config_path = env.get("STRONGROOM_CONFIG", "")
    config_mount = mounts and next((p for p in mounts if config_path.startswith(p + "/")), None)
    c.check(config_mount and "configMap" in volumes.get(mounts[config_mount], {}),
            f"StatefulSet: STRONGROOM_CONFIG {config_path} is in the ConfigMap volume")
    pin_path = env.get("STRONGROOM_PIN_FILE", "")
    pin_mount = next((p for p in mounts if pin_path.startswith(p + "/")), None)
    c.check(pin_mount and get(volumes.get(mounts[pin_mount]), "secret", "secretName") == "strongroom-hsm-pin",
            f"StatefulSet: STRONGROOM_PIN_FILE {pin_path} is in the PIN Secret volume")
    cms = find(objects, "ConfigMap", "strongroom-config")
    hcl = get(cms[0], "data", "strongroom.hcl", default="") if cms else ""
    c.check(f'pin         = "file://{pin_path}"' in hcl, "ConfigMap: the seal reads the mounted PIN file")
    c.check(re.search(r'\bpath\s*=\s*"/var/lib/strongroom/data"', hcl), "ConfigMap: storage in the data volume")
    # The API's TLS key stays in each pod's token (issue 15, item 15g): a tls_key_label, no key
    # file, no Secret with a server key; the certificate the entrypoint makes for that key lives
    # in the pod's own data volume, and names the client Service and the pod's peer name.
    c.check(re.search(r'^\s*tls_key_label\s*=\s*"[^"]+"', hcl, re.M), "ConfigMap: the listener's key is in the token (tls_key_label)")
    c.check(not re.search(r'^\s*tls_key_file\s*=', hcl, re.M), "ConfigMap: no tls_key_file")
    m = re.search(r'tls_cert_file\s*=\s*"([^"]+)"', hcl)
    cert_mount = m and next((p for p in mounts if m.group(1).startswith(p + "/")), None)
    c.check(cert_mount and mounts[cert_mount] == "data", "ConfigMap: tls_cert_file is in the pod's data volume")
    c.check(not any(get(v, "secret", "secretName") == "strongroom-tls" for v in volumes.values()),
            "StatefulSet: mounts no TLS key Secret")
    hosts = (env.get("STRONGROOM_TLS_CERT_HOSTS") or "").split(",")
    for host in (f"strongroom.{NAMESPACE}.svc", f"$(POD_NAME).{spec.get('serviceName')}.{NAMESPACE}.svc", "127.0.0.1"):
        c.check(host in hosts, f"StatefulSet: STRONGROOM_TLS_CERT_HOSTS names {host}")
    c.check(re.search(r'address\s*=\s*"0\.0\.0\.0:8200"', hcl) and env.get("STRONGROOM_LISTEN") == "0.0.0.0:8200",
            "ConfigMap: listener on 0.0.0.0:8200, as the entrypoint expects")

    # Raft: storage "raft", the cluster port's TLS files in their Secret volume, a retry_join for
    # every pod of the StatefulSet, and the per-pod addresses and name from the environment.
    c.check('storage "raft"' in hcl, 'ConfigMap: storage "raft"')
    # The CA comes from the Secret (with every pod's certificate); each pod's certificate lives
    # in its own data volume and its key in its own token (the entrypoint makes it there): no
    # shared key, and no key file.
    c.check(re.search(r'cluster_key_label\s*=\s*"[^"]+"', hcl) and "cluster_key_file" not in hcl,
            "ConfigMap: the cluster key is in each pod's token (cluster_key_label, no cluster_key_file)")
    for key, where in (("cluster_ca_file", "secret"), ("cluster_cert_file", "data")):
        m = re.search(key + r'\s*=\s*"([^"]+)"', hcl)
        tls_mount = m and next((p for p in mounts if m.group(1).startswith(p + "/")), None)
        if where == "secret":
            c.check(tls_mount and get(volumes.get(mounts[tls_mount]), "secret", "secretName") == "strongroom-cluster-tls",
                    f"ConfigMap: {key} is in the cluster TLS Secret volume")
        else:
            c.check(tls_mount and mounts[tls_mount] == "data", f"ConfigMap: {key} is in the pod's data volume")
    c.check(env.get("STRONGROOM_CLUSTER_CERTS") and
            any(env.get("STRONGROOM_CLUSTER_CERTS") == p and get(volumes.get(v), "secret", "secretName") == "strongroom-cluster-tls"
                for p, v in mounts.items()),
            "StatefulSet: STRONGROOM_CLUSTER_CERTS is the cluster TLS Secret's mount (each pod's certificate)")
    service = spec.get("serviceName")
    namespace = get(s, "metadata", "namespace")
    joins = re.findall(r'leader_api_addr\s*=\s*"([^"]+)"', hcl)
    expected = [f"https://strongroom-{i}.{service}.{namespace}.svc:8200" for i in range(spec.get("replicas") or 0)]
    c.check(sorted(joins) == sorted(expected), f"ConfigMap: retry_join names every pod ({len(expected)})")
    env_from = {e["name"]: get(e, "valueFrom", "fieldRef", "fieldPath") for e in ctr.get("env") or []}
    c.check(env_from.get("POD_NAME") == "metadata.name", "StatefulSet: POD_NAME from the pod's name")
    c.check(env.get("STRONGROOM_RAFT_NODE_ID") == "$(POD_NAME)", "StatefulSet: node_id is the pod name")
    for var, port in (("STRONGROOM_API_ADDR", 8200), ("STRONGROOM_CLUSTER_ADDR", 8201)):
        c.check(env.get(var) == f"https://$(POD_NAME).{service}.{namespace}.svc:{port}",
                f"StatefulSet: {var} is the pod's own name on port {port}")
    c.check(env.get("STRONGROOM_AUTO_INIT_HOST") == f"{get(s, 'metadata', 'name')}-0",
            "StatefulSet: only the first pod initialises")
    # A join needs a one-time credential minted for the pod's node id: read from the key named
    # after the pod in the (optional) strongroom-join-tokens Secret.
    token_file = env.get("STRONGROOM_RAFT_JOIN_TOKEN_FILE") or ""
    token_mount = next((p for p in mounts if token_file == p + "/$(POD_NAME)"), None)
    token_volume = volumes.get(mounts[token_mount]) if token_mount else None
    c.check(token_volume is not None and get(token_volume, "secret", "secretName") == "strongroom-join-tokens",
            "StatefulSet: retry_join's join token is the pod's key in the strongroom-join-tokens Secret")
    c.check(token_volume is not None and get(token_volume, "secret", "optional") is True,
            "StatefulSet: the join-token Secret is optional (it exists only once the first pod is initialised)")
    return labels, ports


def check_services_and_pdb(objects, labels, ports, c):
    for svc in find(objects, "Service"):
        name = get(svc, "metadata", "name")
        c.check(selects(get(svc, "spec", "selector"), labels), f"Service {name}: selects the server pods")
        for p in get(svc, "spec", "ports") or []:
            target = p.get("targetPort", p.get("port"))
            c.check(target in ports or target in ports.values(),
                    f"Service {name}: port {p.get('port')} targets a container port ({target})")
    peers = find(objects, "Service", "strongroom-peers")
    c.check(peers and sorted(p["port"] for p in get(peers[0], "spec", "ports")) == [8200, 8201],
            "Service strongroom-peers: ports 8200 and 8201")
    client = find(objects, "Service", "strongroom")
    c.check(client and get(client[0], "spec", "clusterIP") != "None", "Service strongroom: a client (ClusterIP) service")
    pdbs = find(objects, "PodDisruptionBudget")
    c.check(len(pdbs) == 1 and get(pdbs[0], "spec", "maxUnavailable") == 1, "PodDisruptionBudget: maxUnavailable 1")
    c.check(pdbs and selects(get(pdbs[0], "spec", "selector", "matchLabels"), labels),
            "PodDisruptionBudget: selects the server pods")


def check_rbac_and_job(objects, c):
    crbs = find(objects, "ClusterRoleBinding")
    c.check(any(get(b, "roleRef", "name") == "system:auth-delegator" and
                {"kind": "ServiceAccount", "name": "strongroom", "namespace": NAMESPACE} in (b.get("subjects") or [])
                for b in crbs),
            "ClusterRoleBinding: strongroom/strongroom may create TokenReviews (system:auth-delegator)")
    c.check(find(objects, "Namespace", NAMESPACE), f"Namespace {NAMESPACE}")
    jobs = find(objects, "Job", "strongroom-init")
    if not c.check(len(jobs) == 1, "Job strongroom-init"):
        return
    pod = get(jobs[0], "spec", "template", "spec") or {}
    ctr = get(pod, "containers", 0) or {}
    c.check(ctr.get("command") == ["/usr/local/bin/strongroom-init"], "Job: runs strongroom-init from the image")
    c.check(find(objects, "ServiceAccount", pod.get("serviceAccountName")), "Job: its service account exists")
    env = {e["name"]: e.get("value") for e in ctr.get("env") or []}
    c.check(env.get("VAULT_ADDR") == f"https://strongroom.{NAMESPACE}.svc:8200", "Job: VAULT_ADDR is the client Service")
    c.check(env.get("AUDIT_FILE_PATH", "").startswith("/var/log/strongroom/audit/"),
            "Job: the audit file is in the servers' audit volume")
    check_pod_security(pod, "Job", c)
    check_volumes(pod, set(), objects, "Job", c)
    mounts = {m["mountPath"] for m in ctr.get("volumeMounts") or []}
    for var in ("VAULT_CACERT", "VAULT_TOKEN_FILE"):
        c.check(any(env.get(var, "").startswith(m + "/") for m in mounts), f"Job: {var} is in a mounted volume")


def check_dockerfile(objects, c):
    """The image provides what the manifests expect of it."""
    with open(os.path.join(ROOT, "packaging", "container", "Dockerfile"), encoding="utf-8") as f:
        dockerfile = f.read()
    c.check(re.search(r"^USER 10001:10001$", dockerfile, re.M), "Dockerfile: runs as 10001:10001 (runAsUser)")
    # The image's files are laid out by stage-binaries.sh, which the Dockerfile's build stage runs.
    with open(os.path.join(ROOT, "packaging", "container", "stage-binaries.sh"), encoding="utf-8") as f:
        staging = f.read()
    c.check("packaging/container/stage-binaries.sh /build /out" in dockerfile and
            'deploy/kubernetes/init/strongroom-init.sh "$out/usr/local/bin/strongroom-init"' in staging,
            "Dockerfile: installs strongroom-init (the Job's command)")
    c.check(re.search(r"ninja -C /build [^\n]*\bstrongroom\b(?!-)", dockerfile) and
            '"$build/cli/strongroom" "$out/usr/bin/strongroom"' in staging,
            "Dockerfile: builds and installs /usr/bin/strongroom (the injector's and agents' command)")
    c.check('VOLUME ["/var/lib/strongroom"]' in dockerfile and "EXPOSE 8200" in dockerfile,
            "Dockerfile: volume /var/lib/strongroom, port 8200")
    c.check(re.search(r'^ENTRYPOINT \["/usr/bin/tini", "--", "/usr/local/bin/strongroom-entrypoint"\]$',
                      dockerfile, re.M), "Dockerfile: tini runs the entrypoint")


def unit_values(text, key):
    """Every value of `key=` in a systemd unit, in order."""
    return [m.group(1).strip() for m in re.finditer(rf"^{re.escape(key)}=(.*)$", text, re.M)]


def check_process_users(objects, c):
    """Issue 15, items 12 and 14: who runs the workers, and who restarts a daemon that stopped.

    systemd: the broker runs as `strongroom` with CAP_SETUID and CAP_SETGID only, so that the
    workers run as `strongroom-worker` (created by the packages; the default worker_user), never
    as the broker's uid; the three @privileged calls the change of user needs are allowed again;
    Restart=on-failure restarts the daemon when it stops with status 1 after its spawner died.
    Container and Kubernetes: one non-root uid and no capability at all (Pod Security
    `restricted`), so the workers share the broker's uid there and only their seccomp filter
    keeps them from signalling it (docs/threat-model.md); the pod restarts the container when
    strongroomd exits."""
    with open(os.path.join(ROOT, "systemd", "strongroom.service"), encoding="utf-8") as f:
        unit = f.read()
    c.check(unit_values(unit, "User") == ["strongroom"], "unit: User=strongroom")
    for key in ("AmbientCapabilities", "CapabilityBoundingSet"):
        c.check(unit_values(unit, key) == ["CAP_SETUID CAP_SETGID"],
                f"unit: {key}=CAP_SETUID CAP_SETGID (the workers' change of user, nothing more)")
    c.check(unit_values(unit, "NoNewPrivileges") == ["yes"], "unit: NoNewPrivileges=yes")
    filters = unit_values(unit, "SystemCallFilter")
    denied = next((f[1:] for f in filters if f.startswith("~")), "")
    c.check("@privileged" in denied.split() and filters[-1].split() == ["setgroups", "setresuid", "capset"],
            "unit: @privileged denied except setgroups, setresuid and capset, allowed after the deny line")
    c.check(unit_values(unit, "Restart") == ["on-failure"] and not unit_values(unit, "RestartPreventExitStatus"),
            "unit: Restart=on-failure (a dead spawner makes strongroomd exit 1)")
    with open(os.path.join(ROOT, "appliance", "broker", "config.h"), encoding="utf-8") as f:
        config_h = f.read()
    c.check('std::string worker_user = "strongroom-worker";' in config_h,
            "config: worker_user defaults to strongroom-worker")
    for script in (("packaging", "deb", "postinst"), ("packaging", "rpm", "pre")):
        with open(os.path.join(ROOT, *script), encoding="utf-8") as f:
            text = f.read()
        c.check(re.search(r"(adduser|useradd) [^\n]*strongroom-worker", text.replace("\\\n", " ")),
                f"{'/'.join(script)}: creates the strongroom-worker user")
    # The pods: one uid and no capability (so no worker uid of their own, see the docstring).
    for sts in find(objects, "StatefulSet", "strongroom"):
        pod = get(sts, "spec", "template", "spec") or {}
        for ctr in pod.get("containers") or []:
            c.check(not get(ctr, "securityContext", "capabilities", "add"),
                    f"StatefulSet: container {ctr.get('name')} adds no capability (workers share uid 10001)")
        c.check(get(pod, "restartPolicy", default="Always") == "Always",
                "StatefulSet: restartPolicy Always (strongroomd exits when its spawner dies)")


def flag_values(command):
    """-name=value arguments of a command line, as a dict."""
    out = {}
    for arg in command or []:
        m = re.fullmatch(r"--?([a-z][a-z0-9-]*)=(.*)", str(arg))
        if m:
            out[m.group(1)] = m.group(2)
    return out


def check_injector(objects, all_objects, c):
    """deploy/kubernetes/injector: the admission webhook and what it resolves to."""
    deployments = find(objects, "Deployment", "strongroom-injector")
    if not c.check(len(deployments) == 1, "injector: Deployment strongroom-injector"):
        return
    d = deployments[0]
    spec = d["spec"]
    pod = get(spec, "template", "spec") or {}
    labels = get(spec, "template", "metadata", "labels") or {}
    what = "injector Deployment"
    c.check(selects(get(spec, "selector", "matchLabels"), labels), f"{what}: selector matches its pod labels")
    c.check(selects(INJECTOR_LABELS, labels), f"{what}: pods carry the injector labels")
    c.check((spec.get("replicas") or 1) >= 2, f"{what}: at least 2 replicas (the apiserver calls it for every pod)")
    check_pod_security(pod, what, c)
    sa = pod.get("serviceAccountName")
    c.check(find(objects, "ServiceAccount", sa), f"{what}: service account {sa} exists")
    c.check(pod.get("automountServiceAccountToken") is False,
            f"{what}: no service-account token (the injector calls no Kubernetes API)")
    volumes = check_volumes(pod, set(), all_objects, what, c)
    ctr = get(pod, "containers", 0) or {}
    command = ctr.get("command") or []
    c.check(command[:2] == ["/usr/bin/strongroom", "injector"], f"{what}: runs /usr/bin/strongroom injector")
    flags = flag_values(command[2:])
    known = {"listen", "tls-cert-file", "tls-key-file", "vault-address", "agent-image", "vault-image",
             "vault-auth-path", "default-template", "run-as-user", "run-as-group", "cpu-request",
             "cpu-limit", "mem-request", "mem-limit", "static-secret-render-interval",
             "exit-on-retry-failure", "max-connections", "max-connections-per-peer",
             "max-body-bytes-in-flight", "log-level"}
    c.check(all(flag_values([a]) for a in command[2:]) and set(flags) <= known,
            f"{what}: every argument is a known -name=value flag")
    ports = {p.get("name"): p.get("containerPort") for p in ctr.get("ports") or []}
    listen = flags.get("listen", ":8080")
    c.check(ports.get("https") is not None and listen.rsplit(":", 1)[-1] == str(ports.get("https")),
            f"{what}: -listen {listen} is the container port https ({ports.get('https')})")
    mounts = {m["mountPath"]: m["name"] for m in ctr.get("volumeMounts") or []}
    for flag in ("tls-cert-file", "tls-key-file"):
        path = flags.get(flag, "")
        mount = next((p for p in mounts if path.startswith(p + "/")), None)
        secret = get(volumes.get(mounts[mount]) if mount else None, "secret", "secretName")
        c.check(secret == "strongroom-injector-tls", f"{what}: -{flag} is in the strongroom-injector-tls Secret volume")
    c.check(flags.get("vault-address") == f"https://strongroom.{NAMESPACE}.svc:8200",
            f"{what}: -vault-address is the client Service")
    c.check(bool(flags.get("agent-image")) and flags.get("agent-image") == ctr.get("image"),
            f"{what}: -agent-image is the injector's own image (it ships /usr/bin/strongroom)")
    for probe in ("readinessProbe", "livenessProbe"):
        c.check(get(ctr, probe, "httpGet", "path") == "/health/ready" and
                get(ctr, probe, "httpGet", "port") in ("https", ports.get("https")) and
                get(ctr, probe, "httpGet", "scheme") == "HTTPS",
                f"{what}: {probe} on GET /health/ready over HTTPS")

    services = find(objects, "Service", "strongroom-injector")
    if c.check(len(services) == 1, "injector: Service strongroom-injector"):
        svc = services[0]
        c.check(selects(get(svc, "spec", "selector"), labels), "injector Service: selects the injector pods")
        c.check(not selects(get(svc, "spec", "selector"), SERVER_LABELS), "injector Service: not the server pods")
    pdbs = find(objects, "PodDisruptionBudget")
    c.check(any(selects(get(p, "spec", "selector", "matchLabels"), labels) for p in pdbs),
            "injector: a PodDisruptionBudget keeps one injector up")

    hooks = find(objects, "MutatingWebhookConfiguration")
    if not c.check(len(hooks) == 1, "injector: one MutatingWebhookConfiguration"):
        return
    for w in get(hooks[0], "webhooks") or []:
        wn = f"webhook {w.get('name')}"
        c.check(w.get("admissionReviewVersions") == ["v1"], f"{wn}: admissionReviewVersions [v1]")
        c.check(w.get("sideEffects") == "None", f"{wn}: sideEffects None")
        c.check(w.get("failurePolicy") in ("Ignore", "Fail"), f"{wn}: failurePolicy set ({w.get('failurePolicy')})")
        c.check(isinstance(w.get("timeoutSeconds"), int) and 1 <= w["timeoutSeconds"] <= 30,
                f"{wn}: timeoutSeconds within 1..30")
        c.check("caBundle" not in (w.get("clientConfig") or {}),
                f"{wn}: no caBundle in the manifest (make-tls.sh sets it; apply keeps it)")
        ref = get(w, "clientConfig", "service") or {}
        target = [s for s in find(all_objects, "Service", ref.get("name"))
                  if get(s, "metadata", "namespace") == ref.get("namespace")]
        if not c.check(len(target) == 1, f"{wn}: service {ref.get('namespace')}/{ref.get('name')} exists"):
            continue
        svc_ports = get(target[0], "spec", "ports") or []
        port = next((p for p in svc_ports if p.get("port") == ref.get("port", 443)), None)
        c.check(port is not None, f"{wn}: port {ref.get('port', 443)} is a port of the Service")
        target_port = (port or {}).get("targetPort")
        c.check(target_port in ports or target_port in ports.values(),
                f"{wn}: the Service port targets the injector's container port ({target_port})")
        c.check(selects(get(target[0], "spec", "selector"), labels), f"{wn}: the Service selects the injector pods")
        c.check(ref.get("path") == "/mutate", f"{wn}: path /mutate")
        rules = w.get("rules") or []
        c.check(any("CREATE" in (r.get("operations") or []) and "pods" in (r.get("resources") or []) and
                    "" in (r.get("apiGroups") or []) for r in rules), f"{wn}: intercepts pod CREATE")
        exprs = get(w, "namespaceSelector", "matchExpressions") or []
        c.check(any(e.get("key") == "kubernetes.io/metadata.name" and e.get("operator") == "NotIn" and
                    NAMESPACE in (e.get("values") or []) for e in exprs),
                f"{wn}: namespaceSelector leaves out {NAMESPACE} (the injector's own pods)")

    check_injector_network_policy(objects, labels, ports.get("https"), c)

    script = os.path.join(ROOT, "deploy", "kubernetes", INJECTOR_DIR, "make-tls.sh")
    ok = os.path.isfile(script) and os.access(script, os.X_OK)
    if c.check(ok, "injector: make-tls.sh exists and is executable"):
        with open(script, encoding="utf-8") as f:
            text = f.read()
        c.check("secret=strongroom-injector-tls" in text and f"webhook={get(hooks[0], 'metadata', 'name')}" in text,
                "injector: make-tls.sh writes the Secret the Deployment mounts and patches this webhook")


def check_injector_network_policy(objects, labels, https_port, c):
    """Security review, finding 3: only the webhook port of the injector pods is reachable.

    `from` may be absent (any address: the apiserver's cannot be selected portably) or narrowed
    by the operator to ipBlocks; every rule must name ports, all of them TCP to the container
    port (by number or by its name), or the rule would open every port."""
    policies = find(objects, "NetworkPolicy")
    if not c.check(len(policies) == 1, "injector: one NetworkPolicy"):
        return
    p = policies[0]
    what = f"injector NetworkPolicy {get(p, 'metadata', 'name')}"
    spec = p.get("spec") or {}
    selector = spec.get("podSelector") or {}
    c.check(set(selector) == {"matchLabels"} and selects(selector.get("matchLabels"), labels) and
            selector.get("matchLabels") == INJECTOR_LABELS,
            f"{what}: podSelector is the injector Deployment's labels (matchLabels only)")
    c.check(not selects(selector.get("matchLabels"), SERVER_LABELS), f"{what}: does not select the server pods")
    c.check(spec.get("policyTypes") == ["Ingress"], f"{what}: policyTypes [Ingress]")
    rules = spec.get("ingress")
    c.check(isinstance(rules, list) and rules, f"{what}: at least one ingress rule")
    for i, rule in enumerate(rules or []):
        rw = f"{what}: ingress rule {i}"
        ports = rule.get("ports") if isinstance(rule, dict) else None
        c.check(isinstance(ports, list) and ports, f"{rw}: names its ports (none would open every port)")
        for port in ports or []:
            c.check(port.get("protocol", "TCP") == "TCP", f"{rw}: protocol TCP")
            c.check(https_port is not None and port.get("port") in (https_port, "https") and "endPort" not in port,
                    f"{rw}: port {port.get('port')} is the webhook's container port ({https_port})")
        peers = rule.get("from") if isinstance(rule, dict) else None
        c.check(peers is None or (isinstance(peers, list) and peers and
                                  all(set(peer) == {"ipBlock"} for peer in peers)),
                f"{rw}: from any address, or from ipBlocks (the control plane)")


def init_script_role(role):
    """The `write auth/kubernetes/role/<role> k=v ...` of strongroom-init.sh, as a dict."""
    with open(os.path.join(ROOT, "deploy", "kubernetes", "init", "strongroom-init.sh"), encoding="utf-8") as f:
        text = f.read().replace("\\\n", " ")
    m = re.search(rf"write auth/kubernetes/role/{re.escape(role)} ([^\n]*)", text)
    if not m:
        return None
    return dict(kv.strip("'").split("=", 1) for kv in m.group(1).split() if "=" in kv)


def init_script_policy(name):
    """The policy text strongroom-init.sh writes for `name`."""
    with open(os.path.join(ROOT, "deploy", "kubernetes", "init", "strongroom-init.sh"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(rf"put_policy {re.escape(name)} <<'EOF'\n(.*?)\nEOF", text, re.S)
    return m.group(1) if m else None


def check_csi(objects, all_objects, c):
    """deploy/kubernetes/csi: the CSI provider's DaemonSet, its NetworkPolicy, the example class."""
    namespaces = find(objects, "Namespace", CSI_NAMESPACE)
    if c.check(len(namespaces) == 1, f"csi: Namespace {CSI_NAMESPACE}"):
        labels = get(namespaces[0], "metadata", "labels") or {}
        # hostPath (the providers' socket directory) is beyond baseline and restricted.
        c.check(labels.get("pod-security.kubernetes.io/enforce") == "privileged",
                f"csi: Namespace {CSI_NAMESPACE} states its Pod Security level (privileged, for hostPath)")
    sets = find(objects, "DaemonSet", "strongroom-csi-provider")
    if not c.check(len(sets) == 1, "csi: DaemonSet strongroom-csi-provider"):
        return
    ds = sets[0]
    spec = ds["spec"]
    pod = get(spec, "template", "spec") or {}
    labels = get(spec, "template", "metadata", "labels") or {}
    what = "csi DaemonSet"
    c.check(selects(get(spec, "selector", "matchLabels"), labels), f"{what}: selector matches its pod labels")
    c.check(selects(CSI_LABELS, labels) and not selects(SERVER_LABELS, labels), f"{what}: pods carry the csi-provider labels")
    sa = pod.get("serviceAccountName")
    sas = find(objects, "ServiceAccount", sa)
    c.check(sas and sas[0].get("automountServiceAccountToken") is False and pod.get("automountServiceAccountToken") is False,
            f"{what}: service account {sa} exists, no token mounted (the driver passes the pods' tokens)")
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        c.check(pod.get(host) in (None, False), f"{what}: no {host}")
    psc = pod.get("securityContext") or {}
    c.check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 10001 and psc.get("runAsGroup") == 10001,
            f"{what}: pod runs as 10001:10001, non-root")
    c.check(psc.get("fsGroup") == 10001, f"{what}: fsGroup 10001 (reads its Secret volumes)")
    c.check(get(psc, "seccompProfile", "type") == "RuntimeDefault", f"{what}: seccompProfile RuntimeDefault")
    volumes = check_volumes(pod, set(), all_objects, what, c)
    hostpaths = {n: get(v, "hostPath", "path") for n, v in volumes.items() if "hostPath" in v}
    c.check(all(p == PROVIDERS_DIR or p.startswith(PROVIDERS_DIR + "/") for p in hostpaths.values()),
            f"{what}: hostPath only within {PROVIDERS_DIR}")

    containers = pod.get("containers") or []
    if not c.check(len(containers) == 1, f"{what}: one container"):
        return
    ctr = containers[0]
    cw = f"{what}: container {ctr.get('name')}"
    sc = ctr.get("securityContext") or {}
    c.check(sc.get("allowPrivilegeEscalation") is False, f"{cw}: allowPrivilegeEscalation false")
    c.check(sc.get("readOnlyRootFilesystem") is True, f"{cw}: readOnlyRootFilesystem")
    c.check(get(sc, "capabilities", "drop") == ["ALL"] and not get(sc, "capabilities", "add"),
            f"{cw}: capabilities drop ALL, none added")
    c.check(not sc.get("privileged") and sc.get("runAsUser") in (None, 10001), f"{cw}: not privileged, not root")
    c.check(get(ctr, "resources", "requests") and get(ctr, "resources", "limits", "memory"),
            f"{cw}: resource requests and a memory limit")
    c.check(not ctr.get("ports"), f"{cw}: no ports (the socket is its only interface)")
    mounts = {m["mountPath"]: m["name"] for m in ctr.get("volumeMounts") or []}
    c.check("/tmp" in mounts, f"{cw}: writable /tmp (read-only root)")
    command = ctr.get("command") or []
    c.check(command[:2] == ["/usr/bin/strongroom", "csi-provider"], f"{cw}: runs /usr/bin/strongroom csi-provider")
    flags = flag_values(command[2:])
    known = {"endpoint", "socket-group", "socket-mode", "vault-addr", "vault-mount", "vault-namespace",
             "vault-tls-ca-cert", "vault-tls-ca-directory", "vault-tls-server-name", "vault-tls-client-cert",
             "vault-tls-client-key", "vault-tls-skip-verify", "cache-size", "hmac-key-file",
             "kubernetes-token-requests", "kubernetes-host", "kubernetes-ca-cert", "kubernetes-token-file",
             "max-concurrent-mounts", "log-level"}
    c.check(all(flag_values([a]) for a in command[2:]) and set(flags) <= known,
            f"{cw}: every argument is a known -name=value flag")
    c.check(flags.get("vault-addr") == f"https://strongroom.{NAMESPACE}.svc:8200", f"{cw}: -vault-addr is the client Service")
    c.check(flags.get("kubernetes-token-requests") == "false",
            f"{cw}: -kubernetes-token-requests=false (no Kubernetes API credentials in the pod)")
    c.check(flags.get("vault-tls-skip-verify") in (None, "false"), f"{cw}: verifies strongroom's certificate")

    def mount_of(path):
        mount = next((m for m in mounts if path.startswith(m + "/")), None)
        return (mount, volumes.get(mounts[mount])) if mount else (None, None)

    endpoint = re.sub(r"^unix://", "", flags.get("endpoint", ""))
    socket_mount, socket_volume = mount_of(endpoint)
    socket_dir = get(socket_volume, "hostPath", "path") or ""
    c.check(socket_dir.startswith(PROVIDERS_DIR + "/") and socket_dir.count("/") == PROVIDERS_DIR.count("/") + 1,
            f"{cw}: -endpoint {endpoint} is in its own directory of {PROVIDERS_DIR} ({socket_dir})")
    c.check(not any(p == PROVIDERS_DIR for p in (get(volumes.get(n), "hostPath", "path") for n in mounts.values())),
            f"{cw}: does not mount the whole providers directory")
    socket_name = os.path.basename(endpoint)
    c.check(socket_name.endswith(".sock"), f"{cw}: the socket is <provider>.sock ({socket_name})")
    for flag, secret in (("hmac-key-file", "strongroom-csi-hmac-key"), ("vault-tls-ca-cert", "strongroom-csi-vault-ca")):
        _, vol = mount_of(flags.get(flag, ""))
        c.check(get(vol, "secret", "secretName") == secret, f"{cw}: -{flag} is in the {secret} Secret volume")
    for probe in ("readinessProbe", "livenessProbe"):
        cmd = get(ctr, probe, "exec", "command") or []
        c.check(cmd[:3] == ["/usr/bin/strongroom", "csi-provider", "-check"] and
                flag_values(cmd[3:]).get("endpoint") == flags.get("endpoint"),
                f"{cw}: {probe} runs csi-provider -check on the same endpoint")

    # The init container: root for chown alone; it makes the provider's directory and the
    # symlink the driver dials (<providers>/<socket> -> <dir>/<socket>).
    inits = pod.get("initContainers") or []
    if c.check(len(inits) == 1, f"{what}: one init container (the socket directory)"):
        init = inits[0]
        iw = f"{what}: init container {init.get('name')}"
        isc = init.get("securityContext") or {}
        c.check(get(isc, "capabilities", "drop") == ["ALL"] and get(isc, "capabilities", "add") == ["CHOWN"],
                f"{iw}: capabilities drop ALL, add CHOWN only")
        c.check(isc.get("allowPrivilegeEscalation") is False and isc.get("readOnlyRootFilesystem") is True and
                not isc.get("privileged"), f"{iw}: no privilege escalation, read-only root, not privileged")
        c.check(get(init, "resources", "limits", "memory"), f"{iw}: a memory limit")
        imounts = {m["mountPath"]: m["name"] for m in init.get("volumeMounts") or []}
        providers_mount = next((m for m, n in imounts.items() if get(volumes.get(n), "hostPath", "path") == PROVIDERS_DIR), None)
        script = " ".join(init.get("command") or [])
        sub = os.path.basename(socket_dir)
        c.check(providers_mount and f"install -d -o 10001 -g 10001 -m 0750 {providers_mount}/{sub}" in script,
                f"{iw}: makes {PROVIDERS_DIR}/{sub} for uid 10001")
        c.check(providers_mount and f"ln -sfn {sub}/{socket_name} {providers_mount}/{socket_name}" in script,
                f"{iw}: links {socket_name} -> {sub}/{socket_name} (relative)")

    policies = find(objects, "NetworkPolicy", "strongroom-csi-provider")
    if c.check(len(policies) == 1, "csi: NetworkPolicy strongroom-csi-provider"):
        np = policies[0]["spec"]
        nw = "csi NetworkPolicy"
        c.check(get(np, "podSelector", "matchLabels") == CSI_LABELS, f"{nw}: selects the provider pods")
        c.check(sorted(np.get("policyTypes") or []) == ["Egress", "Ingress"] and not np.get("ingress"),
                f"{nw}: no ingress at all, egress restricted")
        egress = np.get("egress") or []
        ports = sorted((p.get("protocol", "TCP"), p.get("port")) for rule in egress for p in rule.get("ports") or [])
        c.check(ports == [("TCP", 53), ("TCP", 8200), ("UDP", 53)], f"{nw}: egress only to 8200 and DNS")
        api_rule = next((r for r in egress if any(p.get("port") == 8200 for p in r.get("ports") or [])), {})
        c.check(any(selects(get(t, "podSelector", "matchLabels"), SERVER_LABELS) and
                    get(t, "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name") == NAMESPACE
                    for t in api_rule.get("to") or []),
                f"{nw}: port 8200 only to the strongroom server pods")

    classes = find(objects, "SecretProviderClass")
    if not c.check(len(classes) >= 1, "csi: an example SecretProviderClass"):
        return
    for spc in classes:
        sw = f"SecretProviderClass {get(spc, 'metadata', 'name')}"
        spec = spc.get("spec") or {}
        params = spec.get("parameters") or {}
        c.check(all(isinstance(v, str) for v in params.values()), f"{sw}: every parameter is a string")
        c.check(f"{spec.get('provider')}.sock" == socket_name,
                f"{sw}: provider {spec.get('provider')} is the socket the DaemonSet serves ({socket_name})")
        c.check(params.get("vaultAddress") == f"https://strongroom.{NAMESPACE}.svc:8200", f"{sw}: vaultAddress is the client Service")
        ca_mount, ca_vol = mount_of(params.get("vaultCACertPath", ""))
        c.check(get(ca_vol, "secret", "secretName") == "strongroom-csi-vault-ca",
                f"{sw}: vaultCACertPath is in the provider's CA volume")
        c.check(params.get("vaultSkipTLSVerify", "false") == "false", f"{sw}: verifies strongroom's certificate")
        role = init_script_role(params.get("roleName", ""))
        if c.check(role is not None, f"{sw}: strongroom-init.sh writes role {params.get('roleName')}"):
            c.check(role.get("audience") == params.get("audience", "vault"),
                    f"{sw}: the role's audience is the class's ({params.get('audience', 'vault')})")
            c.check(get(spc, "metadata", "namespace") in role.get("bound_service_account_namespaces", "").split(","),
                    f"{sw}: the role is bound to the class's namespace")
            policy_text = "\n".join(init_script_policy(p) or "" for p in role.get("policies", "").split(","))
        else:
            policy_text = ""
        try:
            objs = yaml.safe_load(params.get("objects", ""))
        except yaml.YAMLError:
            objs = None
        if not c.check(isinstance(objs, list) and objs, f"{sw}: objects is a YAML list"):
            continue
        names = [o.get("objectName") for o in objs if isinstance(o, dict)]
        c.check(len(names) == len(objs) and len(set(names)) == len(names) and all(names),
                f"{sw}: every object has a unique objectName")
        for o in objs:
            ow = f"{sw}: object {o.get('objectName')}"
            c.check(isinstance(o.get("secretPath"), str) and o.get("secretPath"), f"{ow}: secretPath")
            c.check(isinstance(o.get("filePermission", 0), int) and 0 <= o.get("filePermission", 0) <= 0o777,
                    f"{ow}: filePermission within 0777 (unquoted)")
            c.check(f'path "{o.get("secretPath")}" {{ capabilities = ["read"] }}' in policy_text,
                    f"{ow}: the role's policy reads {o.get('secretPath')}")
        for so in spec.get("secretObjects") or []:
            for d in so.get("data") or []:
                c.check(d.get("objectName") in names,
                        f"{sw}: secretObjects {so.get('secretName')} key {d.get('key')} is an object")


def run_yamllint(directory, c):
    if not shutil.which("yamllint"):
        c.check(False, "yamllint is installed (packaging/install-deps.sh installs it)")
        return
    res = subprocess.run(["yamllint", "-s", "-f", "parsable", "-d", YAMLLINT_CONFIG, directory],
                         capture_output=True, text=True, check=False)
    if res.stdout.strip():
        print(res.stdout.rstrip())
    c.check(res.returncode == 0, "yamllint (relaxed, 100 columns, warnings are errors)")


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "deploy", "kubernetes")
    c = Checker()
    objects = load(directory, c)
    check_objects(objects, c)
    in_injector = lambda o: o["__in_dir"].split(os.sep)[0] == INJECTOR_DIR
    in_csi = lambda o: o["__in_dir"].split(os.sep)[0] == CSI_DIR
    servers = [(rel, o) for rel, o in objects if not in_injector(o) and not in_csi(o)]
    injector = [(rel, o) for rel, o in objects if in_injector(o)]
    csi = [(rel, o) for rel, o in objects if in_csi(o)]
    found = check_statefulset(objects, c)
    if found:
        check_services_and_pdb(servers, *found, c)
    check_rbac_and_job(objects, c)
    check_injector(injector, objects, c)
    check_csi(csi, objects, c)
    check_dockerfile(objects, c)
    check_process_users(objects, c)
    run_yamllint(directory, c)
    print(f"manifests: {c.passes} checks passed, {c.failures} failed")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
