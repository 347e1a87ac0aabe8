# syntax=docker/dockerfile:1
# The qoelab image: one binary, used by both compose services (`qoelab serve` as user qoelab,
# `qoelab agent` as root with only NET_ADMIN and NET_RAW). Build: `docker compose build`, or
# `docker build -t qoelab .`.
#
# Stages: `chef` (Rust toolchain + cargo-chef), `planner` (the dependency recipe of the
# workspace), `builder` (dependencies first, in a layer that stays cached while only our code
# changes; then the binary), `runtime` (slim Debian, the binary, a user; nothing else: the
# binary speaks netlink itself and needs neither iproute2 nor libpcap, and SQLite is built in).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Dependencies only: this layer is rebuilt only when Cargo.toml or Cargo.lock change.
RUN cargo chef cook --release --locked --bin qoelab --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin qoelab \
    && install -m 0755 target/release/qoelab /usr/local/bin/qoelab

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# The group qoelab (gid 10001) may use the agent's socket; the user qoelab runs the server.
# Both services use this image, so the agent's --group qoelab and the server's group agree.
# /run/qoelab is where the agent's socket lives: a named volume shared by both services takes
# this directory's owner and mode when it is first created.
RUN groupadd --system --gid 10001 qoelab \
    && useradd --system --uid 10001 --gid qoelab --home-dir /var/lib/qoelab \
       --shell /usr/sbin/nologin qoelab \
    && install -d -m 0750 -o root -g qoelab /run/qoelab \
    && install -d -m 0700 -o root -g root /var/lib/qoelab-agent \
    && install -d -m 0750 -o qoelab -g qoelab /var/lib/qoelab
COPY --from=builder /usr/local/bin/qoelab /usr/local/bin/qoelab
# Numeric, so that Kubernetes' runAsNonRoot can check it: qoelab:qoelab.
USER 10001:10001
WORKDIR /var/lib/qoelab
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/qoelab"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--agent", "/run/qoelab/agent.sock"]
