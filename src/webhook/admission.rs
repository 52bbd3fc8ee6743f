//! AdmissionReview v1 in, AdmissionReview v1 out: whether to inject a pod, and the patch.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::annotations::{self, Problem};
use super::config::{OnBadAnnotation, WebhookConfig};
use super::patch;

/// What the webhook did with one review; the `outcome` label of
/// `forge_webhook_admissions_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Injected,
    /// Not a pod creation, opted out, or already injected: admitted unchanged.
    Skipped,
    /// A pod that cannot be injected, refused (`onBadAnnotation: reject`).
    Rejected,
    /// A pod that cannot be injected, admitted unchanged with a warning (`onBadAnnotation: warn`).
    Warned,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Injected => "injected",
            Outcome::Skipped => "skipped",
            Outcome::Rejected => "rejected",
            Outcome::Warned => "warned",
        }
    }
}

/// A body that is not an AdmissionReview v1 request: answered 400, so the API server
/// applies the webhook's failure policy.
#[derive(Debug, thiserror::Error)]
#[error("not an AdmissionReview v1 request: {0}")]
pub struct InvalidReview(String);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review {
    api_version: String,
    kind: String,
    request: Option<Request>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    uid: String,
    kind: GroupVersionKind,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    sub_resource: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    object: Value,
}

#[derive(Deserialize)]
struct GroupVersionKind {
    #[serde(default)]
    group: String,
    kind: String,
}

/// The answer to a review, and what it was.
pub struct Reviewed {
    pub body: Value,
    pub outcome: Outcome,
}

/// Reviews one AdmissionReview body.
pub fn review(config: &WebhookConfig, body: &[u8]) -> Result<Reviewed, InvalidReview> {
    let review: Review = serde_json::from_slice(body).map_err(|e| InvalidReview(e.to_string()))?;
    if review.api_version != "admission.k8s.io/v1" || review.kind != "AdmissionReview" {
        let got = format!("{} {}", review.api_version, review.kind);
        return Err(InvalidReview(format!("expected admission.k8s.io/v1 AdmissionReview, got {got}")));
    }
    let request = review.request.ok_or_else(|| InvalidReview("no `request`".into()))?;
    let is_pod_creation = request.kind.group.is_empty()
        && request.kind.kind == "Pod"
        && request.operation == "CREATE"
        && request.sub_resource.is_empty();
    let (outcome, response) =
        if is_pod_creation { decide(config, &request) } else { (Outcome::Skipped, json!({"allowed": true})) };
    let mut response = response;
    response["uid"] = Value::String(request.uid);
    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
    Ok(Reviewed { body, outcome })
}

fn decide(config: &WebhookConfig, request: &Request) -> (Outcome, Value) {
    let pod = &request.object;
    let name = pod_name(pod);
    let strings = |field: &str| -> BTreeMap<String, String> {
        let map = pod["metadata"][field].as_object().into_iter().flatten();
        map.filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect()
    };
    let (labels, pod_annotations) = (strings("labels"), strings("annotations"));
    if pod_annotations.contains_key(annotations::INJECTED) {
        return skip("already injected");
    }
    if has_container(pod, patch::CONTAINER_NAME) {
        tracing::warn!(pod = %name, namespace = %request.namespace, "pod already has a container named forge; not injected");
        let warning = "forge: the pod already has a container named `forge`; not injected";
        return (Outcome::Skipped, json!({"allowed": true, "warnings": [warning]}));
    }
    let planned =
        annotations::inject_choice(&labels, &pod_annotations).map_err(|p| vec![p]).and_then(|choice| match choice {
            Some(false) => Ok(None),
            // Reaching the webhook at all means the pod or its namespace opted in (the
            // MutatingWebhookConfiguration's selectors), so silence means yes.
            Some(true) | None => {
                let overrides = annotations::parse(&pod_annotations)?;
                patch::inject(config, &overrides, pod).map(Some)
            }
        });
    match planned {
        Ok(None) => skip("opted out"),
        Ok(Some(injection)) => {
            tracing::info!(pod = %name, namespace = %request.namespace, "injecting the Forge sidecar");
            let bytes = serde_json::to_vec(&injection.patch).expect("JSON serializes");
            let mut response = json!({
                "allowed": true,
                "patchType": "JSONPatch",
                "patch": base64::engine::general_purpose::STANDARD.encode(bytes),
            });
            if !injection.warnings.is_empty() {
                response["warnings"] = json!(injection.warnings);
            }
            (Outcome::Injected, response)
        }
        Err(problems) => refuse(config, request, &name, &problems),
    }
}

fn skip(reason: &str) -> (Outcome, Value) {
    tracing::debug!(reason, "pod admitted without injection");
    (Outcome::Skipped, json!({"allowed": true}))
}

fn refuse(config: &WebhookConfig, request: &Request, name: &str, problems: &[Problem]) -> (Outcome, Value) {
    let reasons: Vec<String> = problems.iter().map(Problem::to_string).collect();
    let message = format!("forge: cannot inject the Forge sidecar: {}", reasons.join("; "));
    match config.on_bad_annotation {
        OnBadAnnotation::Reject => {
            tracing::warn!(pod = %name, namespace = %request.namespace, %message, "pod rejected");
            let status = json!({"code": 400, "reason": "BadRequest", "message": message});
            (Outcome::Rejected, json!({"allowed": false, "status": status}))
        }
        OnBadAnnotation::Warn => {
            tracing::warn!(pod = %name, namespace = %request.namespace, %message, "pod admitted without the sidecar");
            let warning = format!("{message}; admitted WITHOUT the sidecar");
            (Outcome::Warned, json!({"allowed": true, "warnings": [warning]}))
        }
    }
}

fn has_container(pod: &Value, name: &str) -> bool {
    ["containers", "initContainers"]
        .iter()
        .flat_map(|list| pod["spec"][*list].as_array().into_iter().flatten())
        .any(|c| c["name"].as_str() == Some(name))
}

/// The pod's name, or its `generateName` prefix (pods from controllers have no name yet).
fn pod_name(pod: &Value) -> String {
    let metadata = &pod["metadata"];
    metadata["name"].as_str().or_else(|| metadata["generateName"].as_str()).unwrap_or("(unnamed)").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> WebhookConfig {
        WebhookConfig::from_yaml("image: forge:1\ntls:\n  secretName: forge-tls\n").unwrap()
    }

    fn review_of(object: Value, operation: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {"uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": operation,
                        "namespace": "ns", "object": object},
        }))
        .unwrap()
    }

    #[test]
    fn not_a_review_is_invalid() {
        for body in [
            &b"{"[..],
            br#"{"apiVersion":"v1","kind":"Pod"}"#,
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
        ] {
            assert!(review(&config(), body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn updates_are_admitted_unchanged_and_the_uid_is_echoed() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "s", "ports": [{"name": "mcp", "containerPort": 3000}]}]}});
        let r = review(&config(), &review_of(pod.clone(), "UPDATE")).unwrap();
        assert_eq!(r.outcome, Outcome::Skipped);
        assert_eq!(r.body["response"], json!({"allowed": true, "uid": "u-1"}));
        let r = review(&config(), &review_of(pod, "CREATE")).unwrap();
        assert_eq!(r.outcome, Outcome::Injected);
        assert_eq!(r.body["response"]["uid"], "u-1");
    }
}
