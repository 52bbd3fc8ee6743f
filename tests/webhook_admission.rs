//! The webhook's answers to AdmissionReview fixtures (tests/fixtures/webhook/): typical and
//! hostile pods in, a JSON Patch out. Every patch is applied to its pod with an independent
//! RFC 6902 implementation (the `json-patch` crate), and every resulting pod is validated
//! against the Kubernetes schemas with PyPI `kubernetes-validate` (installed into
//! tests/peers/.venv by tests/peers/install.sh).

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use forge::webhook::admission::{self, Outcome};
use forge::webhook::WebhookConfig;
use serde_json::{json, Value};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhook")
}

fn config(file: &str) -> WebhookConfig {
    WebhookConfig::from_file(&fixtures().join(file)).unwrap()
}

const DEFAULT: &str = "config.yaml";
const CERT_MANAGER_WARN: &str = "config-cert-manager-warn.yaml";

/// The webhook's answer to one fixture, and the pod as the API server would store it.
struct Answer {
    outcome: Outcome,
    response: Value,
    /// The submitted pod with the patch applied (unchanged when there is none).
    pod: Value,
    patch: Option<Value>,
}

impl Answer {
    fn container(&self, name: &str) -> &Value {
        let containers = self.pod["spec"]["containers"].as_array().unwrap();
        containers.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no container {name}: {containers:?}"))
    }

    fn sidecar(&self) -> &Value {
        self.container("forge")
    }

    fn message(&self) -> &str {
        self.response["status"]["message"].as_str().unwrap_or_default()
    }

    fn warnings(&self) -> String {
        self.response["warnings"].as_array().map(|w| format!("{w:?}")).unwrap_or_default()
    }

    fn arg_after(&self, flag: &str) -> String {
        let args = self.sidecar()["args"].as_array().unwrap();
        let i = args.iter().position(|a| a == flag).unwrap_or_else(|| panic!("no {flag} in {args:?}"));
        args[i + 1].as_str().unwrap().to_string()
    }

    fn env(&self, name: &str) -> Option<String> {
        let env = self.sidecar()["env"].as_array()?;
        env.iter().find(|e| e["name"] == name).map(|e| e["value"].as_str().unwrap().to_string())
    }

    fn port(&self, container: &str, name: &str) -> Option<u64> {
        let ports = self.container(container)["ports"].as_array()?;
        ports.iter().find(|p| p["name"] == name).map(|p| p["containerPort"].as_u64().unwrap())
    }

    fn volume(&self, name: &str) -> Option<&Value> {
        self.pod["spec"]["volumes"].as_array()?.iter().find(|v| v["name"] == name)
    }
}

fn review_fixture(case: &str) -> Value {
    let path = fixtures().join(format!("{case}.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn answer(config_file: &str, case: &str) -> Answer {
    let review = review_fixture(case);
    let reviewed = admission::review(&config(config_file), &serde_json::to_vec(&review).unwrap()).unwrap();
    let response = reviewed.body["response"].clone();
    assert_eq!(reviewed.body["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(reviewed.body["kind"], "AdmissionReview");
    assert_eq!(response["uid"], review["request"]["uid"], "the response answers this review");
    let mut pod = review["request"]["object"].clone();
    let patch = response["patch"].as_str().map(|encoded| {
        assert_eq!(response["patchType"], "JSONPatch");
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
        let patch: Value = serde_json::from_slice(&bytes).unwrap();
        let ops: json_patch::Patch = serde_json::from_value(patch.clone()).unwrap();
        json_patch::patch(&mut pod, &ops).unwrap_or_else(|e| panic!("{case}: the patch does not apply: {e}"));
        patch
    });
    Answer { outcome: reviewed.outcome, response, pod, patch }
}

#[test]
fn typical_pod_gets_the_sidecar_on_its_named_port() {
    let a = answer(DEFAULT, "typical");
    assert_eq!(a.outcome, Outcome::Injected);
    assert_eq!(a.response["allowed"], true);
    // The Service's `targetPort: mcp` now lands on the sidecar; the server keeps its number.
    assert_eq!(a.port("forge", "mcp"), Some(8443));
    assert_eq!(a.port("server", "forge-upstream"), Some(3000));
    assert_eq!(a.port("server", "mcp"), None);
    assert_eq!(a.arg_after("--upstream"), "http://127.0.0.1:3000/mcp");
    assert_eq!(a.arg_after("--listen"), "0.0.0.0:8443");
    assert_eq!(a.arg_after("--admin-listen"), "0.0.0.0:9090");
    // The server's own probes followed the rename.
    let server = a.container("server");
    assert_eq!(server["readinessProbe"]["tcpSocket"]["port"], "forge-upstream");
    assert_eq!(server["livenessProbe"]["httpGet"]["port"], "forge-upstream");

    let sidecar = a.sidecar();
    assert_eq!(sidecar["image"], "ghcr.io/forge/forge:0.1.0");
    assert_eq!(sidecar["command"], json!(["/usr/local/bin/forge"]));
    assert_eq!(sidecar["args"][0], "run");
    assert_eq!(
        sidecar["securityContext"],
        json!({
            "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false, "privileged": false, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        })
    );
    assert_eq!(sidecar["readinessProbe"]["httpGet"], json!({"path": "/readyz", "port": "forge-admin"}));
    assert_eq!(sidecar["livenessProbe"]["httpGet"], json!({"path": "/healthz", "port": "forge-admin"}));
    assert_eq!(sidecar["resources"]["limits"], json!({"cpu": "1", "memory": "256Mi"}));
    let mounts: Vec<(String, String, bool)> = sidecar["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap().into(), m["mountPath"].as_str().unwrap().into(), m["readOnly"] == true))
        .collect();
    let expected = [
        ("forge-tls", "/etc/forge/tls", true),
        ("forge-policy", "/etc/forge/policies", true),
        ("forge-plugins", "/etc/forge/plugins", true),
        ("forge-keys", "/etc/forge/keys", true),
        ("forge-state", "/var/lib/forge", false),
    ]
    .map(|(n, p, r)| (n.to_string(), p.to_string(), r));
    assert_eq!(mounts, expected);
    assert_eq!(a.volume("forge-tls").unwrap()["secret"]["secretName"], "forge-sidecar-tls");
    assert_eq!(a.volume("forge-keys").unwrap()["secret"]["secretName"], "forge-signing-key");
    assert_eq!(a.volume("forge-policy").unwrap()["configMap"]["name"], "forge-policy");
    assert_eq!(a.volume("forge-state").unwrap()["emptyDir"], json!({"sizeLimit": "1Gi"}));
    assert_eq!(a.env("FORGE_POLICY_BUNDLE").as_deref(), Some("/etc/forge/policies"));
    // The sidecar is told where its key and plugins are mounted.
    assert_eq!(a.env("FORGE_EVIDENCE_KEY").as_deref(), Some("/etc/forge/keys/signing-key.pem"));
    assert_eq!(a.env("FORGE_PLUGINS_DIR").as_deref(), Some("/etc/forge/plugins"));
    // A ConfigMap is flat: `items` lay each plugin out as <name>/manifest.yaml + <name>.wasm.
    let plugins = &a.volume("forge-plugins").unwrap()["projected"]["sources"];
    assert_eq!(
        plugins,
        &json!([{"configMap": {"name": "forge-plugin-secrets", "items": [
            {"key": "manifest.yaml", "path": "secrets/manifest.yaml"},
            {"key": "secrets.wasm", "path": "secrets/secrets.wasm"},
        ]}}])
    );
    assert_eq!(a.pod["metadata"]["annotations"]["forge.dev/injected"], env!("CARGO_PKG_VERSION"));
    // The label the chart's NetworkPolicy for injected pods selects; the pod's own labels stay.
    assert_eq!(a.pod["metadata"]["labels"]["forge.dev/injected"], env!("CARGO_PKG_VERSION"));
    assert_eq!(a.pod["metadata"]["labels"]["forge.dev/inject"], "true");
}

#[test]
fn ports_already_taken_in_the_pod_move_the_sidecar_up() {
    // Another container declares 9090, a native sidecar (init container) 8443.
    let a = answer(DEFAULT, "multiple_containers");
    assert_eq!(a.outcome, Outcome::Injected);
    assert_eq!(a.arg_after("--admin-listen"), "0.0.0.0:9091");
    assert_eq!(a.port("forge", "forge-admin"), Some(9091));
    assert_eq!(a.port("forge-log", "metrics"), Some(9090), "other containers are untouched");
    let a = answer(DEFAULT, "init_containers");
    assert_eq!(a.arg_after("--listen"), "0.0.0.0:8444");
    assert_eq!(a.pod["spec"]["initContainers"].as_array().unwrap().len(), 2, "init containers are untouched");
}

#[test]
fn existing_sidecars_volumes_and_annotations_are_kept() {
    let review = review_fixture("existing_sidecar");
    let a = answer(DEFAULT, "existing_sidecar");
    assert_eq!(a.outcome, Outcome::Injected);
    let names: Vec<&str> =
        a.pod["spec"]["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["server", "istio-proxy", "forge"]);
    assert_eq!(a.container("istio-proxy"), &review["request"]["object"]["spec"]["containers"][1]);
    assert!(a.volume("istio-envoy").is_some() && a.volume("forge-tls").is_some());
    let annotations = &a.pod["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["forge.dev/injected"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn a_pod_without_labels_annotations_or_volumes_gets_them_created() {
    let a = answer(DEFAULT, "no_metadata_maps");
    assert_eq!(a.outcome, Outcome::Injected);
    let ops: Vec<&str> =
        a.patch.as_ref().unwrap().as_array().unwrap().iter().map(|op| op["path"].as_str().unwrap()).collect();
    assert!(ops.contains(&"/metadata/annotations") && ops.contains(&"/spec/volumes"), "{ops:?}");
    assert!(ops.contains(&"/metadata/labels"), "{ops:?}");
    assert_eq!(a.pod["metadata"]["labels"], json!({"forge.dev/injected": env!("CARGO_PKG_VERSION")}));
}

#[test]
fn namespace_opt_in_reaches_pods_that_say_nothing() {
    let a = answer(DEFAULT, "namespace_opt_in");
    assert_eq!(a.outcome, Outcome::Injected);
    assert_eq!(a.port("forge", "mcp"), Some(8443));
}

#[test]
fn opt_out_and_idempotency_leave_the_pod_unchanged() {
    for case in ["opted_out", "already_injected", "pod_update"] {
        let a = answer(DEFAULT, case);
        assert_eq!(a.outcome, Outcome::Skipped, "{case}");
        assert_eq!(a.response["allowed"], true, "{case}");
        assert!(a.patch.is_none(), "{case}: {:?}", a.patch);
    }
    let a = answer(DEFAULT, "forge_container_present");
    assert_eq!(a.outcome, Outcome::Skipped);
    assert!(a.patch.is_none());
    assert!(a.warnings().contains("already has a container named `forge`"), "{}", a.warnings());
}

#[test]
fn injecting_the_injected_pod_again_changes_nothing() {
    let first = answer(DEFAULT, "typical");
    let mut review = review_fixture("typical");
    review["request"]["object"] = first.pod.clone();
    let again = admission::review(&config(DEFAULT), &serde_json::to_vec(&review).unwrap()).unwrap();
    assert_eq!(again.outcome, Outcome::Skipped);
    assert!(again.body["response"].get("patch").is_none());
}

#[test]
fn unsafe_pods_are_rejected_with_the_reason() {
    let cases = [
        ("host_network", "spec.hostNetwork: pods on the host network cannot be injected"),
        ("missing_ports", "forge.dev/upstream-port: not set, and no container declares a port named `mcp`"),
        ("server_host_port", "hostPort, which would reach the server around the gateway"),
        ("volume_name_clash", "spec.volumes: the pod already has a volume named `forge-tls`"),
        ("port_name_clash", "spec.containers: a container already declares a port named `forge-admin`"),
        ("stdio_with_mcp_port", "forge.dev/upstream-stdio: the pod also declares a port named `mcp`"),
    ];
    for (case, reason) in cases {
        let a = answer(DEFAULT, case);
        assert_eq!(a.outcome, Outcome::Rejected, "{case}");
        assert_eq!(a.response["allowed"], false, "{case}");
        assert!(a.patch.is_none(), "{case}");
        assert_eq!(a.response["status"]["code"], 400);
        assert!(a.message().contains(reason), "{case}: {}", a.message());
    }
}

#[test]
fn every_bad_annotation_is_named_in_one_rejection() {
    let a = answer(DEFAULT, "bad_annotations");
    assert_eq!(a.outcome, Outcome::Rejected);
    let message = a.message();
    for part in [
        "forge.dev/mode: `permissive` is not enforce or audit",
        "forge.dev/log-level: `forge=[` is not a log filter",
        "forge.dev/upstream-prot: unknown Forge annotation",
    ] {
        assert!(message.contains(part), "{part:?} missing from {message}");
    }
}

#[test]
fn warn_mode_admits_bad_pods_unchanged_with_a_warning() {
    for case in ["bad_annotations", "host_network"] {
        let a = answer(CERT_MANAGER_WARN, case);
        assert_eq!(a.outcome, Outcome::Warned, "{case}");
        assert_eq!(a.response["allowed"], true, "{case}");
        assert!(a.patch.is_none(), "{case}");
        assert!(a.warnings().contains("admitted WITHOUT the sidecar"), "{case}: {}", a.warnings());
    }
}

#[test]
fn cert_manager_gives_each_pod_its_own_certificate() {
    let a = answer(CERT_MANAGER_WARN, "typical");
    let csi = &a.volume("forge-tls").unwrap()["csi"];
    assert_eq!(csi["driver"], "csi.cert-manager.io");
    assert_eq!(csi["volumeAttributes"]["csi.cert-manager.io/issuer-name"], "forge-ca");
    assert_eq!(csi["volumeAttributes"]["csi.cert-manager.io/issuer-kind"], "ClusterIssuer");
    // Without a ConfigMap or key Secret configured, nothing is mounted for them: the sidecar
    // runs the image's bundle and shipped detectors, and signs with a development key.
    assert!(a.volume("forge-policy").is_none() && a.volume("forge-keys").is_none());
    assert!(a.volume("forge-plugins").is_none());
    assert_eq!(a.env("FORGE_PLUGINS_DIR").as_deref(), Some("/etc/forge/plugins"));
    assert_eq!(a.env("FORGE_EVIDENCE_KEY"), None);
}

#[test]
fn an_unnamed_numeric_port_is_served_under_the_configured_name() {
    let a = answer(DEFAULT, "numeric_port");
    assert_eq!(a.outcome, Outcome::Injected);
    assert_eq!(a.arg_after("--upstream"), "http://127.0.0.1:8080/mcp");
    assert_eq!(a.port("forge", "mcp"), Some(8443));
    assert!(a.warnings().contains("targetPort of `mcp`"), "{}", a.warnings());
}

#[test]
fn stdio_and_overrides_reach_the_sidecar() {
    let a = answer(DEFAULT, "stdio");
    assert_eq!(a.outcome, Outcome::Injected);
    assert_eq!(a.arg_after("--upstream"), "stdio:node /app/server.js --stdio");
    assert_eq!(a.port("forge", "mcp"), Some(8443));

    let a = answer(DEFAULT, "overrides");
    assert_eq!(a.outcome, Outcome::Injected);
    assert_eq!(a.port("forge", "rpc"), Some(8443), "the annotation named the port to take over");
    assert_eq!(a.volume("forge-policy").unwrap()["configMap"]["name"], "team-a-policy");
    let sources = a.volume("forge-plugins").unwrap()["projected"]["sources"].as_array().unwrap().clone();
    let names: Vec<&str> = sources.iter().map(|s| s["configMap"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["team-a-pii", "team-a-secrets"], "the annotation replaces the configured set");
    assert_eq!(sources[0]["configMap"]["items"][1], json!({"key": "pii.wasm", "path": "pii/pii.wasm"}));
    assert_eq!(a.env("FORGE_POLICY_MODE").as_deref(), Some("audit"));
    assert_eq!(a.env("RUST_LOG").as_deref(), Some("debug"));
}

/// Every pod the webhook lets through, patched or not, is a valid Kubernetes Pod.
#[test]
fn every_admitted_pod_is_valid_against_the_kubernetes_schemas() {
    let validator = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/.venv/bin/kubernetes-validate");
    if !validator.exists() {
        eprintln!("SKIPPED: kubernetes-validate is not installed; run tests/peers/install.sh");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut injected = 0;
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        let Some(case) = path.file_name().unwrap().to_str().unwrap().strip_suffix(".json") else { continue };
        for config_file in [DEFAULT, CERT_MANAGER_WARN] {
            let a = answer(config_file, case);
            if a.response["allowed"] != true {
                continue;
            }
            injected += usize::from(a.patch.is_some());
            let file = dir.path().join(format!("{case}-{config_file}.json"));
            std::fs::write(&file, serde_json::to_vec_pretty(&a.pod).unwrap()).unwrap();
            files.push(file);
        }
    }
    assert!(injected >= 10, "only {injected} injected pods to validate");
    let output = Command::new(&validator).arg("--strict").arg("--quiet").args(&files).output().unwrap();
    assert!(
        output.status.success(),
        "kubernetes-validate refused a pod:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // The validator does catch a broken sidecar (a typo in a securityContext field).
    let mut broken = answer(DEFAULT, "typical").pod;
    let sidecar = broken["spec"]["containers"].as_array_mut().unwrap().last_mut().unwrap();
    sidecar["securityContext"]["readOnlyRootFileSystem"] = json!(true);
    let file = dir.path().join("broken.json");
    std::fs::write(&file, serde_json::to_vec(&broken).unwrap()).unwrap();
    let output = Command::new(&validator).arg("--strict").arg("--quiet").arg(&file).output().unwrap();
    assert!(!output.status.success(), "kubernetes-validate accepted an unknown field");
}
