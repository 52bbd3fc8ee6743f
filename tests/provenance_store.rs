//! The policy store's provenance hook without a gateway around it: what is refused at load
//! and reload, and the verified signature each evaluation carries for evidence.

use std::sync::Arc;

use forge::identity::Principal;
use forge::mcp::jsonrpc::{self, Payload};
use forge::policy::{Direction, PolicyConfig, PolicyError, PolicyInput, PolicyStore, ReloadOutcome, RequestView};
use forge::provenance::{Reason, Trust};
use forge::signing::SigningKey;

const POLICY: &str = "package forge\nimport rego.v1\ndecision := {\"allow\": true}\n";

fn signed_bundle(key: &SigningKey) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.rego"), POLICY).unwrap();
    forge::provenance::sign_bundle(dir.path(), key, None, Some("v1".into())).unwrap();
    dir
}

fn trusting(key: &SigningKey) -> Arc<Trust> {
    Arc::new(Trust::with_keys(vec![key.public_key().clone()], Vec::new()))
}

fn reason(error: PolicyError) -> Reason {
    match error {
        PolicyError::Untrusted(rejection) => rejection.reason,
        other => panic!("expected a provenance refusal, got {other}"),
    }
}

#[test]
fn every_evaluation_names_the_verified_bundle() {
    let key = SigningKey::generate().unwrap();
    let dir = signed_bundle(&key);
    let store = PolicyStore::load_with_trust(dir.path(), &PolicyConfig::default(), trusting(&key)).unwrap();
    let text = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ls","arguments":{}}}"#;
    let Payload::Single(message) = jsonrpc::parse(text.as_bytes(), 64).unwrap() else { unreachable!() };
    let principal = Principal::default();
    let input =
        PolicyInput::for_message(&principal, &message, Direction::ClientToServer, None, RequestView::default(), None);
    let provenance = store.evaluate(&input).unwrap().provenance.expect("verified");
    assert_eq!(provenance.signer, key.key_id());
    assert_eq!(provenance.version.as_deref(), Some("v1"));
    assert_eq!(store.status().provenance.as_ref(), Some(&*provenance));

    // Without a trust policy nothing is claimed.
    let development = PolicyStore::load(dir.path(), &PolicyConfig::default()).unwrap();
    assert!(development.evaluate(&input).unwrap().provenance.is_none());
}

#[test]
fn unsigned_and_untrusted_bundles_do_not_load() {
    let key = SigningKey::generate().unwrap();
    let dir = signed_bundle(&key);
    let stranger = SigningKey::generate().unwrap();
    let error = PolicyStore::load_with_trust(dir.path(), &PolicyConfig::default(), trusting(&stranger)).err().unwrap();
    assert_eq!(reason(error), Reason::UntrustedSigner);
    std::fs::remove_file(dir.path().join(forge::provenance::BUNDLE_SIGNATURE)).unwrap();
    let error = PolicyStore::load_with_trust(dir.path(), &PolicyConfig::default(), trusting(&key)).err().unwrap();
    assert_eq!(reason(error), Reason::Unsigned);
}

#[test]
fn a_reload_rechecks_even_when_the_policy_files_are_unchanged() {
    let key = SigningKey::generate().unwrap();
    let dir = signed_bundle(&key);
    let store = PolicyStore::load_with_trust(dir.path(), &PolicyConfig::default(), trusting(&key)).unwrap();
    assert_eq!(store.reload().unwrap(), ReloadOutcome::Unchanged);

    // The signature replaced by a stranger's: the policy files are the same, the signer is not.
    forge::provenance::sign_bundle(dir.path(), &SigningKey::generate().unwrap(), None, None).unwrap();
    assert_eq!(reason(store.reload().unwrap_err()), Reason::UntrustedSigner);
    assert!(store.status().last_error.unwrap().contains("(untrusted_signer)"));

    // Signed again by the trusted key (a new statement): activated, the error cleared.
    forge::provenance::sign_bundle(dir.path(), &key, None, Some("v2".into())).unwrap();
    assert!(matches!(store.reload().unwrap(), ReloadOutcome::Activated { .. }));
    let status = store.status();
    assert_eq!((status.last_error, status.provenance.unwrap().version), (None, Some("v2".to_string())));
}
