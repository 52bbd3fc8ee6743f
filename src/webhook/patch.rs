//! The JSON Patch (RFC 6902) that adds the Forge sidecar to a pod.
//!
//! Transparent traffic without privileges: the sidecar takes over the MCP server's *named*
//! container port. The server's port is renamed (`forge-upstream`) and the sidecar declares
//! a port with the original name but its own number — two containers of a pod share one
//! network namespace, so they cannot both listen on one number. A Service whose
//! `targetPort` is that name resolves it per pod to the number of the port now carrying the
//! name: the sidecar's. The sidecar forwards to the server on 127.0.0.1. docs/injection.md
//! explains it, and what to do for Services with numeric target ports.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::annotations::{self, Overrides, PortRef, Problem, UpstreamOverride};
use super::config::WebhookConfig;

pub const CONTAINER_NAME: &str = "forge";
/// The server's port after the sidecar took over its name.
pub const UPSTREAM_PORT_NAME: &str = "forge-upstream";
pub const ADMIN_PORT_NAME: &str = "forge-admin";
pub const BINARY: &str = "/usr/local/bin/forge";
pub const TLS_DIR: &str = "/etc/forge/tls";
pub const POLICY_DIR: &str = "/etc/forge/policies";
pub const PLUGINS_DIR: &str = "/etc/forge/plugins";
pub const KEYS_DIR: &str = "/etc/forge/keys";
pub const STATE_DIR: &str = "/var/lib/forge";
/// The non-root user the sidecar runs as (the image's user).
pub const SIDECAR_UID: u64 = 65532;

/// What the webhook adds to one pod.
#[derive(Debug)]
pub struct Injection {
    /// JSON Patch operations, in order.
    pub patch: Vec<Value>,
    /// Things the operator should know (sent as AdmissionResponse warnings).
    pub warnings: Vec<String>,
}

/// A container port of the pod: which container, which entry, its name and number.
#[derive(Clone)]
struct DeclaredPort {
    /// Init containers' ports only count as taken; they are never taken over.
    init: bool,
    container: usize,
    index: usize,
    name: Option<String>,
    number: u16,
    host_port: bool,
}

/// How the sidecar reaches the server, and which port it serves on.
struct Upstream {
    /// The sidecar's `--upstream`.
    url: String,
    /// The server port whose name the sidecar takes over.
    takeover: Option<DeclaredPort>,
    /// The port number the server listens on (none for stdio).
    number: Option<u16>,
}

/// Plans the sidecar for `pod`; a pod it cannot serve safely gets the problems instead.
pub fn inject(config: &WebhookConfig, overrides: &Overrides, pod: &Value) -> Result<Injection, Vec<Problem>> {
    let spec = &pod["spec"];
    if spec["hostNetwork"].as_bool() == Some(true) {
        return Err(vec![Problem::new(
            "spec.hostNetwork",
            "pods on the host network cannot be injected: the sidecar's ports would be the node's",
        )]);
    }
    let ports = declared_ports(spec);
    let upstream = upstream(config, overrides, &ports).map_err(|p| vec![p])?;
    let mut warnings = Vec::new();
    let mcp_port_name = match &upstream.takeover {
        Some(port) => port.name.clone().expect("a taken-over port has a name"),
        None => {
            let name = config.port_name.clone();
            warnings.push(format!(
                "forge: no named server port to take over; clients must reach the sidecar's port `{name}` \
                 (a Service targetPort of `{name}`), see docs/injection.md"
            ));
            name
        }
    };
    let mut used: BTreeSet<u16> = ports.iter().map(|p| p.number).chain(upstream.number).collect();
    let listen = free_port(config.listen_port, &used).ok_or_else(|| vec![no_free_port("listenPort")])?;
    used.insert(listen);
    let admin = free_port(config.admin_port, &used).ok_or_else(|| vec![no_free_port("adminPort")])?;

    let volumes = volumes(config, overrides);
    let problems = name_clashes(spec, &ports, &upstream, &mcp_port_name, overrides, &volumes);
    if !problems.is_empty() {
        return Err(problems);
    }

    let mut patch = Vec::new();
    if let Some(port) = &upstream.takeover {
        rename_port(spec, port, &mut patch);
    }
    append(&mut patch, spec, "/spec/volumes", volumes.clone());
    let sidecar = sidecar(config, overrides, &upstream.url, &mcp_port_name, listen, admin, &volumes);
    append(&mut patch, spec, "/spec/containers", vec![sidecar]);
    // The annotation makes injection idempotent; the label lets a NetworkPolicy select the
    // injected pods (the chart's admits ingress only on the sidecar's ports).
    let injected = Value::String(env!("CARGO_PKG_VERSION").to_string());
    for field in ["annotations", "labels"] {
        if pod["metadata"][field].is_object() {
            let path = format!("/metadata/{field}/forge.dev~1injected");
            patch.push(json!({"op": "add", "path": path, "value": injected}));
        } else {
            let path = format!("/metadata/{field}");
            patch.push(json!({"op": "add", "path": path, "value": {annotations::INJECTED: injected}}));
        }
    }
    Ok(Injection { patch, warnings })
}

/// Names the sidecar needs that the pod already uses.
fn name_clashes(
    spec: &Value,
    ports: &[DeclaredPort],
    upstream: &Upstream,
    mcp_port_name: &str,
    overrides: &Overrides,
    volumes: &[Value],
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let port_named = |name: &str| ports.iter().any(|p| p.name.as_deref() == Some(name));
    for taken in [UPSTREAM_PORT_NAME, ADMIN_PORT_NAME] {
        if port_named(taken) {
            let reason = format!("a container already declares a port named `{taken}`");
            problems.push(Problem::new("spec.containers", reason));
        }
    }
    if upstream.takeover.is_none() && port_named(mcp_port_name) {
        let key = match overrides.upstream {
            Some(UpstreamOverride::Stdio(_)) => annotations::UPSTREAM_STDIO,
            _ => annotations::UPSTREAM_PORT,
        };
        let reason = format!("the pod also declares a port named `{mcp_port_name}`, which the sidecar needs");
        problems.push(Problem::new(key, reason));
    }
    let existing: Vec<&str> =
        spec["volumes"].as_array().into_iter().flatten().filter_map(|v| v["name"].as_str()).collect();
    for name in volumes.iter().filter_map(|v| v["name"].as_str()) {
        if existing.contains(&name) {
            problems.push(Problem::new("spec.volumes", format!("the pod already has a volume named `{name}`")));
        }
    }
    problems
}

fn declared_ports(spec: &Value) -> Vec<DeclaredPort> {
    let mut ports = Vec::new();
    for (list, init) in [("containers", false), ("initContainers", true)] {
        for (ci, container) in spec[list].as_array().into_iter().flatten().enumerate() {
            for (pi, port) in container["ports"].as_array().into_iter().flatten().enumerate() {
                let Some(number) = port["containerPort"].as_u64().and_then(|n| u16::try_from(n).ok()) else {
                    continue;
                };
                ports.push(DeclaredPort {
                    init,
                    container: ci,
                    index: pi,
                    name: port["name"].as_str().map(str::to_owned),
                    number,
                    host_port: port.get("hostPort").is_some_and(|h| !h.is_null()),
                });
            }
        }
    }
    ports
}

fn upstream(config: &WebhookConfig, overrides: &Overrides, ports: &[DeclaredPort]) -> Result<Upstream, Problem> {
    let wanted = match &overrides.upstream {
        Some(UpstreamOverride::Stdio(command)) => {
            return Ok(Upstream { url: format!("stdio:{command}"), takeover: None, number: None })
        }
        Some(UpstreamOverride::Port(port)) => port.clone(),
        None => PortRef::Name(config.port_name.clone()),
    };
    let matching: Vec<&DeclaredPort> = ports
        .iter()
        .filter(|p| !p.init)
        .filter(|p| match &wanted {
            PortRef::Name(name) => p.name.as_deref() == Some(name.as_str()),
            PortRef::Number(n) => p.number == *n,
        })
        .collect();
    let found = match (matching.as_slice(), &wanted) {
        ([one], _) => *one,
        ([], PortRef::Number(n)) => {
            // Not declared: the server listens there anyway; nothing to take over.
            return Ok(Upstream { url: local_url(*n), takeover: None, number: Some(*n) });
        }
        ([], PortRef::Name(name)) if overrides.upstream.is_none() => {
            return Err(Problem::new(
                annotations::UPSTREAM_PORT,
                format!(
                    "not set, and no container declares a port named `{name}`; name the MCP server's port `{name}` \
                     or set {} to its name or number",
                    annotations::UPSTREAM_PORT
                ),
            ))
        }
        ([], _) => {
            return Err(Problem::new(annotations::UPSTREAM_PORT, format!("no container declares port {wanted}")))
        }
        (_, _) => {
            return Err(Problem::new(
                annotations::UPSTREAM_PORT,
                format!("port {wanted} is declared by more than one container; name the server's port"),
            ))
        }
    };
    if found.host_port {
        return Err(Problem::new(
            "spec.containers.ports.hostPort",
            format!("port {wanted} has a hostPort, which would reach the server around the gateway"),
        ));
    }
    let takeover = found.name.is_some().then(|| found.clone());
    Ok(Upstream { url: local_url(found.number), takeover, number: Some(found.number) })
}

fn local_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/mcp")
}

fn free_port(from: u16, used: &BTreeSet<u16>) -> Option<u16> {
    (from..=u16::MAX).find(|p| !used.contains(p))
}

fn no_free_port(field: &str) -> Problem {
    Problem::new(field, "no free port number at or above the configured one")
}

/// Renames the server's port, and every probe or lifecycle hook of that container that
/// names it (Kubernetes refuses a pod whose probe names a port the container lacks).
fn rename_port(spec: &Value, port: &DeclaredPort, patch: &mut Vec<Value>) {
    let base = format!("/spec/containers/{}", port.container);
    patch.push(
        json!({"op": "replace", "path": format!("{base}/ports/{}/name", port.index), "value": UPSTREAM_PORT_NAME}),
    );
    let container = &spec["containers"][port.container];
    let old = port.name.as_deref();
    let handlers = ["livenessProbe", "readinessProbe", "startupProbe"]
        .iter()
        .map(|p| (format!("{base}/{p}"), &container[*p]))
        .chain(["postStart", "preStop"].iter().map(|h| (format!("{base}/lifecycle/{h}"), &container["lifecycle"][*h])));
    for (path, handler) in handlers {
        for action in ["httpGet", "tcpSocket"] {
            if handler[action]["port"].as_str() == old {
                let path = format!("{path}/{action}/port");
                patch.push(json!({"op": "replace", "path": path, "value": UPSTREAM_PORT_NAME}));
            }
        }
    }
}

/// Adds `items` to the array at `path`, creating it when the pod has none.
fn append(patch: &mut Vec<Value>, spec: &Value, path: &str, items: Vec<Value>) {
    let field = path.rsplit('/').next().unwrap_or_default();
    if spec[field].is_array() {
        for item in items {
            patch.push(json!({"op": "add", "path": format!("{path}/-"), "value": item}));
        }
    } else {
        patch.push(json!({"op": "add", "path": path, "value": items}));
    }
}

/// The sidecar's volumes; their mounts are derived from the same list.
fn volumes(config: &WebhookConfig, overrides: &Overrides) -> Vec<Value> {
    let mut volumes = Vec::new();
    let tls = match (&config.tls.secret_name, &config.tls.cert_manager) {
        (Some(secret), _) => json!({"secret": {"secretName": secret}}),
        (None, Some(cm)) => {
            // cert-manager's CSI driver issues each pod its own certificate; it fills in the
            // ${…} variables per pod.
            json!({"csi": {"driver": "csi.cert-manager.io", "readOnly": true, "volumeAttributes": {
                "csi.cert-manager.io/issuer-name": cm.issuer,
                "csi.cert-manager.io/issuer-kind": cm.issuer_kind,
                "csi.cert-manager.io/dns-names": "${POD_NAME}.${POD_NAMESPACE}.pod,${SERVICE_ACCOUNT_NAME}.${POD_NAMESPACE}.svc",
                "csi.cert-manager.io/fs-group": SIDECAR_UID.to_string(),
            }}})
        }
        (None, None) => unreachable!("validated: one TLS source"),
    };
    volumes.push(named("forge-tls", tls));
    let policy = overrides.policy_configmap.as_ref().or(config.policy.config_map.as_ref());
    if let Some(name) = policy {
        volumes.push(named("forge-policy", json!({"configMap": {"name": name}})));
    }
    let plugins = overrides.plugins.as_ref().unwrap_or(&config.plugins.config_maps);
    if !plugins.is_empty() {
        volumes.push(named("forge-plugins", plugins_volume(plugins)));
    }
    if let Some(secret) = &config.signing_key.secret_name {
        volumes.push(named("forge-keys", json!({"secret": {"secretName": secret}})));
    }
    volumes.push(named("forge-state", Value::Object(config.state_volume.clone())));
    volumes
}

/// The plugins directory from one ConfigMap per plugin: `items` put each flat ConfigMap
/// key where the loader looks for it (`<name>/manifest.yaml`, `<name>/<name>.wasm`). The
/// volume replaces the image's shipped detectors at the same path.
fn plugins_volume(plugins: &BTreeMap<String, String>) -> Value {
    let sources: Vec<Value> = plugins
        .iter()
        .map(|(plugin, config_map)| {
            json!({"configMap": {"name": config_map, "items": [
                {"key": "manifest.yaml", "path": format!("{plugin}/manifest.yaml")},
                {"key": format!("{plugin}.wasm"), "path": format!("{plugin}/{plugin}.wasm")},
            ]}})
        })
        .collect();
    json!({"projected": {"sources": sources}})
}

fn named(name: &str, mut source: Value) -> Value {
    source["name"] = Value::String(name.to_string());
    source
}

fn mount_path(volume: &str) -> &'static str {
    match volume {
        "forge-tls" => TLS_DIR,
        "forge-policy" => POLICY_DIR,
        "forge-plugins" => PLUGINS_DIR,
        "forge-keys" => KEYS_DIR,
        _ => STATE_DIR,
    }
}

fn sidecar(
    config: &WebhookConfig,
    overrides: &Overrides,
    upstream: &str,
    port_name: &str,
    listen: u16,
    admin: u16,
    volumes: &[Value],
) -> Value {
    let args = [
        "run",
        "--upstream",
        upstream,
        "--listen",
        &format!("0.0.0.0:{listen}"),
        // Kubelet probes and Prometheus reach the admin port on the pod IP.
        "--admin-listen",
        &format!("0.0.0.0:{admin}"),
        "--state-dir",
        STATE_DIR,
        "--tls-cert",
        &format!("{TLS_DIR}/tls.crt"),
        "--tls-key",
        &format!("{TLS_DIR}/tls.key"),
        "--log-format",
        "json",
    ]
    .map(str::to_owned);
    // The plugins directory is set even without a plugins volume: the image ships the
    // detectors there.
    let mut env = vec![
        json!({"name": "FORGE_POLICY_BUNDLE", "value": POLICY_DIR}),
        json!({"name": "FORGE_PLUGINS_DIR", "value": PLUGINS_DIR}),
    ];
    if config.signing_key.secret_name.is_some() {
        env.push(json!({"name": "FORGE_EVIDENCE_KEY", "value": format!("{KEYS_DIR}/{}", config.signing_key.key)}));
    }
    if let Some(mode) = overrides.mode {
        env.push(json!({"name": "FORGE_POLICY_MODE", "value": mode.as_str()}));
    }
    if let Some(level) = &overrides.log_level {
        env.push(json!({"name": "RUST_LOG", "value": level}));
    }
    let mounts: Vec<Value> = volumes
        .iter()
        .map(|v| {
            let name = v["name"].as_str().unwrap_or_default();
            json!({"name": name, "mountPath": mount_path(name), "readOnly": name != "forge-state"})
        })
        .collect();
    let probe = |path: &str, period: u64| json!({"httpGet": {"path": path, "port": ADMIN_PORT_NAME}, "periodSeconds": period, "timeoutSeconds": 2, "failureThreshold": 3});
    json!({
        "name": CONTAINER_NAME,
        "image": config.image,
        "imagePullPolicy": config.image_pull_policy,
        "command": [BINARY],
        "args": args,
        "env": env,
        "ports": [
            {"name": port_name, "containerPort": listen, "protocol": "TCP"},
            {"name": ADMIN_PORT_NAME, "containerPort": admin, "protocol": "TCP"},
        ],
        "readinessProbe": probe("/readyz", 5),
        "livenessProbe": probe("/healthz", 10),
        "resources": config.resources,
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": SIDECAR_UID,
            "runAsGroup": SIDECAR_UID,
            "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false,
            "privileged": false,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    })
}
