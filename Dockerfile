# syntax=docker/dockerfile:1
#
# The Forge image: the `forge` binary, the default policy bundle and the shipped detector
# plugins on a minimal runtime (distroless cc: glibc and libgcc, no shell, no package manager).
# It runs as the non-root uid/gid 65532 and writes only under /var/lib/forge, so it works with
# readOnlyRootFilesystem once a volume is mounted there (the webhook injects one).
#
#   docker build -t forge:0.1.0 .
#   docker run --read-only -v forge-state:/var/lib/forge forge:0.1.0 run --upstream http://mcp:3000/mcp
#
# The Helm chart's default image (helm/forge/values.yaml, image.*) is this one, pushed to your
# registry. No container engine runs on the project's build machines, so this file is tested
# statically there (tests/deploy/test_dockerfile.py: structure and checkov's Dockerfile checks).

ARG RUST_VERSION=1.95

# ---- build: the gateway
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin forge \
 && install -D -m 0755 target/release/forge /out/usr/local/bin/forge
# The shipped detector plugins, when the tree has them: wasm-plugins/build.sh builds them
# (wasm32-wasip2) into wasm-plugins/dist/<name>/{<name>.wasm,manifest.yaml}. They go to
# /etc/forge/plugins (FORGE_PLUGINS_DIR below), where injected sidecars mount plugin
# ConfigMaps instead when the webhook is given some.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    mkdir -p /out/etc/forge/plugins \
 && if [ -x wasm-plugins/build.sh ]; then \
        wasm-plugins/build.sh && cp -a wasm-plugins/dist/. /out/etc/forge/plugins/; \
    fi
# The default bundle, with its own tests (a bundle that fails them is refused at load).
RUN mkdir -p /out/etc/forge/policies /out/var/lib/forge \
 && cp policies/*.rego policies/*.yaml policies/*.json /out/etc/forge/policies/

# ---- runtime
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/usr/local/bin/forge /usr/local/bin/forge
COPY --from=build /out/etc/forge /etc/forge
COPY --from=build --chown=65532:65532 /out/var/lib/forge /var/lib/forge
# The relative default policy.bundle (policies) resolves against /etc/forge; the environment
# names the bundle and the shipped detectors absolutely (plugins.directory has no default).
WORKDIR /etc/forge
ENV FORGE_STATE_DIR=/var/lib/forge \
    FORGE_POLICY_BUNDLE=/etc/forge/policies \
    FORGE_PLUGINS_DIR=/etc/forge/plugins \
    FORGE_LOG_FORMAT=json
USER 65532:65532
# MCP (TLS) and the admin endpoints (/healthz, /readyz, /metrics).
EXPOSE 8443 9090
# No HEALTHCHECK: the image has no shell or HTTP client; Kubernetes probes /healthz and
# /readyz on the admin port (the injected sidecar and the chart's injector both do).
# checkov:skip=CKV_DOCKER_2: Kubernetes probes the admin port; there is no shell to run a HEALTHCHECK in.
ENTRYPOINT ["/usr/local/bin/forge"]
CMD ["run", "--help"]
