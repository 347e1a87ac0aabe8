#!/usr/bin/env python3
"""Cross-file checks of the deployment files that no schema validator makes.

The agent's required capabilities (agent/src/caps.rs KEPT[..REQUIRED]) must be exactly those
granted by the systemd unit, the compose file and the Kubernetes DaemonSet; every variable of
docker-compose.yml must be documented in .env.example; every Kubernetes manifest needs
apiVersion, kind, metadata.name and the qoelab namespace; kustomization.yaml must list every
manifest; every ConfigMap key, Secret key, `$(VAR)`, volume and port name a manifest uses must
exist; token files must not be readable by others; Services must select a workload; the
server's --gateways file must be a key of a mounted ConfigMap whose gateways have unique names,
agents at the DaemonSet's TCP port and token files in a mounted Secret.

Usage: python3 deploy/check_consistency.py [REPOSITORY_ROOT]. Prints every problem and exits 1
if there is any.
"""

import configparser
import re
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
K8S = ROOT / "deploy" / "k8s"
NAMESPACE = "qoelab"
problems = []


def problem(where, what):
    problems.append(f"{where}: {what}")


def kept_capabilities():
    """The CAP_* names the agent requires: the first REQUIRED of KEPT in agent/src/caps.rs
    (the rest, CAP_SYS_ADMIN, is optional and not granted by default)."""
    source = (ROOT / "agent" / "src" / "caps.rs").read_text()
    block = re.search(r"pub const KEPT[^=]*=\s*\[(.*?)\n\];", source, re.S)
    required = re.search(r"pub const REQUIRED: usize = (\d+);", source)
    names = re.findall(r'"(CAP_[A-Z_]+)"', block.group(1)) if block else []
    if not names or not required:
        problem("agent/src/caps.rs", "no KEPT or REQUIRED capabilities found")
        return set()
    return set(names[: int(required.group(1))])


def check_systemd(kept):
    path = ROOT / "deploy" / "qoelab-agent.service"
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(path)
    service = unit["Service"]
    for key in ("AmbientCapabilities", "CapabilityBoundingSet"):
        granted = set(service.get(key, "").split())
        if granted != kept:
            problem(path.name, f"{key} is {sorted(granted)}, the agent keeps {sorted(kept)}")
    if service.get("NoNewPrivileges") != "yes":
        problem(path.name, "NoNewPrivileges=yes is missing")


def check_compose(kept):
    path = ROOT / "docker-compose.yml"
    text = path.read_text()
    compose = yaml.safe_load(text)
    agent = compose["services"]["agent"]
    added = {"CAP_" + c for c in agent.get("cap_add", [])}
    if added != kept or agent.get("cap_drop") != ["ALL"]:
        problem(path.name, f"agent: cap_drop [ALL] and cap_add {sorted(kept)} expected")
    if agent.get("network_mode") != "host":
        problem(path.name, "agent: network_mode must be host")
    web = compose["services"]["web"]
    if str(web.get("user", "")).split(":")[0] in ("", "0", "root"):
        problem(path.name, "web: must run as a non-root user")
    if web.get("depends_on", {}).get("postgres", {}).get("condition") != "service_healthy":
        problem(path.name, "web: must depend on a healthy postgres")
    if any(not str(p).startswith("127.0.0.1:") for p in web.get("ports", [])):
        problem(path.name, "web: ports must be bound to 127.0.0.1")
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    env = ROOT / ".env.example"
    documented = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", env.read_text(), re.M))
    for name in sorted(used - documented):
        problem(env.name, f"{name} is used by docker-compose.yml but not documented")
    for name in sorted(documented - used):
        problem(env.name, f"{name} is documented but docker-compose.yml does not use it")


def load_manifests():
    """(file name, document) of every YAML document under deploy/k8s but the kustomization."""
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


def check_kustomization():
    path = K8S / "kustomization.yaml"
    listed = set(yaml.safe_load(path.read_text()).get("resources", []))
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secrets.example.yaml"}
    for name in sorted(present - listed):
        problem(path.name, f"{name} is not listed in resources")
    for name in sorted(listed - present):
        problem(path.name, f"lists {name}, which does not exist")


def pod_specs(docs):
    """(file, workload name, pod template) of every Deployment and DaemonSet."""
    for file, doc in docs:
        if doc.get("kind") in ("Deployment", "DaemonSet"):
            yield file, doc["metadata"]["name"], doc["spec"]["template"]


def check_manifests(docs, kept):
    by_kind = {}
    for file, doc in docs:
        for field in ("apiVersion", "kind", "metadata"):
            if field not in doc:
                problem(file, f"a document has no {field}")
        meta = doc.get("metadata", {})
        if not meta.get("name"):
            problem(file, f"a {doc.get('kind')} has no metadata.name")
        if doc.get("kind") != "Namespace" and meta.get("namespace") != NAMESPACE:
            problem(file, f"{doc.get('kind')} {meta.get('name')} is not in namespace {NAMESPACE}")
        by_kind.setdefault(doc.get("kind"), {})[meta.get("name")] = doc
    config_keys = {n: set(d.get("data", {})) for n, d in by_kind.get("ConfigMap", {}).items()}
    secret_keys = {
        n: set(d.get("stringData", {})) | set(d.get("data", {}))
        for n, d in by_kind.get("Secret", {}).items()
    }
    for file, name, template in pod_specs(docs):
        where = f"{file} {name}"
        spec = template["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in spec["containers"]:
            env = {e["name"]: e for e in container.get("env", [])}
            for arg in container.get("args", []):
                for var in re.findall(r"\$\((\w+)\)", str(arg)):
                    if var not in env:
                        problem(where, f"args use $({var}), which env does not define")
            for e in env.values():
                ref = e.get("valueFrom", {})
                if "configMapKeyRef" in ref:
                    r = ref["configMapKeyRef"]
                    if r["key"] not in config_keys.get(r["name"], set()):
                        problem(where, f"ConfigMap {r['name']} has no key {r['key']}")
                if "secretKeyRef" in ref:
                    r = ref["secretKeyRef"]
                    if r["key"] not in secret_keys.get(r["name"], set()):
                        problem(where, f"Secret {r['name']} has no key {r['key']}")
            for mount in container.get("volumeMounts", []):
                if mount["name"] not in volumes:
                    problem(where, f"mounts volume {mount['name']}, which is not defined")
            args = [str(a) for a in container.get("args", [])]
            if "--token-file" in args:
                token = args[args.index("--token-file") + 1]
                check_token_mount(where, token, container, volumes, secret_keys)
            if "--gateways" in args:
                path = args[args.index("--gateways") + 1]
                check_gateways(where, path, container, volumes, by_kind, secret_keys)
        for volume in volumes.values():
            secret = volume.get("secret")
            if secret and secret["secretName"] not in secret_keys:
                problem(where, f"volume {volume['name']}: no Secret {secret['secretName']}")
            config = volume.get("configMap")
            if config:
                keys = config_keys.get(config["name"])
                if keys is None:
                    problem(where, f"volume {volume['name']}: no ConfigMap {config['name']}")
                for item in config.get("items", []):
                    if keys is not None and item["key"] not in keys:
                        problem(where, f"volume {volume['name']}: ConfigMap {config['name']} has no key {item['key']}")
    agent = by_kind.get("DaemonSet", {}).get("qoelab-agent")
    if agent is None:
        problem("agent.yaml", "no DaemonSet qoelab-agent")
    else:
        check_agent(agent, kept)
    web = by_kind.get("Deployment", {}).get("qoelab-web")
    if web is None:
        problem("server.yaml", "no Deployment qoelab-web")
    else:
        check_web(web)
    for name, service in by_kind.get("Service", {}).items():
        check_service(name, service, list(pod_specs(docs)))


def mounted(path, container, volumes):
    """(volume, path inside it) of the file at `path` in `container`, or (None, None)."""
    for mount in container.get("volumeMounts", []):
        prefix = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(prefix):
            return volumes.get(mount["name"], {}), path[len(prefix):]
    return None, None


def check_token_mount(where, token, container, volumes, secret_keys):
    volume, name = mounted(token, container, volumes)
    if volume is None:
        problem(where, f"token file {token} is in no mounted volume")
        return
    secret = volume.get("secret")
    if not secret:
        problem(where, f"token file {token} is not in a Secret volume")
        return
    if secret.get("defaultMode", 0o644) & 0o007:
        problem(where, f"token file {token}: defaultMode lets others read it")
    if name not in secret_keys.get(secret["secretName"], set()):
        problem(where, f"token file {token}: Secret {secret['secretName']} lacks that key")


def check_gateways(where, path, container, volumes, by_kind, secret_keys):
    """The --gateways file: a key of a mounted ConfigMap, one [[gateway]] per gateway node with
    a unique name, an agent at tcp://HOST:PORT on the DaemonSet's port, and its token file in
    a mounted Secret that others may not read."""
    volume, name = mounted(path, container, volumes)
    config = (volume or {}).get("configMap")
    if not config:
        problem(where, f"--gateways {path} is not in a mounted ConfigMap volume")
        return
    key = next((i["key"] for i in config.get("items", []) if i["path"] == name), name)
    text = by_kind.get("ConfigMap", {}).get(config["name"], {}).get("data", {}).get(key)
    if text is None:
        problem(where, f"--gateways {path}: ConfigMap {config['name']} has no key {key}")
        return
    try:
        gateways = tomllib.loads(text).get("gateway", [])
    except tomllib.TOMLDecodeError as e:
        problem(where, f"--gateways {path}: ConfigMap key {key} is not TOML: {e}")
        return
    if not gateways:
        problem(where, f"--gateways {path}: no [[gateway]] entry")
    port = agent_port(by_kind.get("DaemonSet", {}).get("qoelab-agent"))
    names = set()
    for i, gateway in enumerate(gateways, 1):
        at = f"{where} gateways.toml gateway {i}"
        name = gateway.get("name", "")
        if not re.fullmatch(r"[a-z0-9-]{1,32}", name) or name in names:
            problem(at, f"name {name!r} is not a unique name of 1 to 32 of a-z, 0-9, -")
        names.add(name)
        agent = re.fullmatch(r"tcp://(.+):(\d+)", gateway.get("agent", ""))
        if not agent:
            problem(at, f"agent {gateway.get('agent')!r} is not tcp://HOST:PORT")
        elif port is not None and int(agent.group(2)) != port:
            problem(at, f"agent {gateway['agent']}: the agents listen on port {port}")
        token = gateway.get("agent_token_file")
        if token is None:
            problem(at, "an agent over TCP needs agent_token_file")
        else:
            check_token_mount(at, token, container, volumes, secret_keys)


def agent_port(agent):
    """The TCP port of the agent DaemonSet's --listen-tcp, if any."""
    if agent is None:
        return None
    args = [str(a) for a in agent["spec"]["template"]["spec"]["containers"][0].get("args", [])]
    if "--listen-tcp" not in args:
        return None
    return int(args[args.index("--listen-tcp") + 1].rsplit(":", 1)[1])


def check_agent(agent, kept):
    spec = agent["spec"]["template"]["spec"]
    if spec.get("hostNetwork") is not True:
        problem("agent.yaml", "the agent needs hostNetwork: true")
    container = spec["containers"][0]
    caps = container.get("securityContext", {}).get("capabilities", {})
    if {"CAP_" + c for c in caps.get("add", [])} != kept or caps.get("drop") != ["ALL"]:
        problem("agent.yaml", f"capabilities: drop [ALL], add {sorted(kept)} expected")
    port = agent_port(agent)
    if port is None:
        problem("agent.yaml", "the agent must listen on TCP (--listen-tcp)")
        return
    if port not in [p["containerPort"] for p in container.get("ports", [])]:
        problem("agent.yaml", f"--listen-tcp port {port} is not a containerPort")


def check_web(web):
    spec = web["spec"]["template"]["spec"]
    context = spec.get("securityContext", {})
    if context.get("runAsNonRoot") is not True or context.get("runAsUser", 0) == 0:
        problem("server.yaml", "the server must run as a non-root user")
    env = {e["name"]: e for e in spec["containers"][0].get("env", [])}
    if "secretKeyRef" not in env.get("DATABASE_URL", {}).get("valueFrom", {}):
        problem("server.yaml", "DATABASE_URL must come from a Secret")
    if "--gateways" not in [str(a) for a in spec["containers"][0].get("args", [])]:
        problem("server.yaml", "the server must list its gateways (--gateways FILE)")


def check_service(name, service, workloads):
    selector = service["spec"].get("selector", {})
    for _, _, template in workloads:
        labels = template["metadata"].get("labels", {})
        if selector and all(labels.get(k) == v for k, v in selector.items()):
            names = {p.get("name") for c in template["spec"]["containers"] for p in c.get("ports", [])}
            for port in service["spec"].get("ports", []):
                target = port.get("targetPort")
                if isinstance(target, str) and target not in names:
                    problem(f"Service {name}", f"targetPort {target} is no container port")
            return
    problem(f"Service {name}", f"selector {selector} matches no workload")


def main():
    kept = kept_capabilities()
    check_systemd(kept)
    check_compose(kept)
    check_kustomization()
    docs = load_manifests()
    check_manifests(docs, kept)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"consistent: {len(docs)} Kubernetes documents, compose, systemd, {sorted(kept)}")


if __name__ == "__main__":
    main()
