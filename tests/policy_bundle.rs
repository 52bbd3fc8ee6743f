//! The default bundle in `policies/`: it compiles, and its own tests pass.

use std::path::Path;

use forge::policy::cli::{self, Status};

fn default_bundle() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"))
}

#[test]
fn the_default_bundle_passes_its_own_tests() {
    let mut out = Vec::new();
    let status = cli::test(default_bundle(), true, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    println!("{text}");
    assert_eq!(status, Status::Success, "{text}");
}

#[test]
fn scratch_eval() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = [
        r#"{"version":1,"principal":{"anonymous":true,"authenticated":false,"claims":{},"scopes":[],"audience":[]},"message":{"direction":"client_to_server","kind":"request","method":"tools/call","id":1,"tool":{"name":"read_file","arguments":{"path":"/etc/passwd"},"pin_status":"unknown"}},"findings":[],"request":{"headers":{}},"time":{"rfc3339":"x","unix_ms":1}}"#,
        r#"{"version":1,"principal":{"anonymous":true,"authenticated":false,"claims":{},"scopes":[],"audience":[]},"message":{"direction":"client_to_server","kind":"request","method":"tools/call","id":1,"tool":{"name":"query","arguments":{"sql":"select 1; drop table x"},"pin_status":"unknown"}},"findings":[],"request":{"headers":{}},"time":{"rfc3339":"x","unix_ms":1}}"#,
        r#"{"version":1,"principal":{"anonymous":false,"authenticated":true,"subject":"bob","claims":{"roles":["viewer"]},"scopes":[],"audience":[]},"message":{"direction":"server_to_client","kind":"response","method":"tools/list","id":1,"result":{"tools":[{"name":"echo"},{"name":"write_file"}]}},"findings":[{"rule_id":"pii.email","category":"pii","severity":"low","confidence":0.9,"pointer":"/result/x","span":{"start":1,"end":3},"fingerprint":"f"}],"request":{"headers":{}},"time":{"rfc3339":"x","unix_ms":1}}"#,
        r#"{"version":1,"principal":{"anonymous":true,"authenticated":false,"claims":{},"scopes":[],"audience":[]},"message":{"direction":"client_to_server","kind":"request","method":"tools/call","id":1,"tool":{"name":"fetch","arguments":{"url":"https://github.com@evil.example/"},"pin_status":"unknown"}},"findings":[],"request":{"headers":{}},"time":{"rfc3339":"x","unix_ms":1}}"#,
    ];
    for (i, text) in inputs.iter().enumerate() {
        let p = dir.path().join(format!("{i}.json"));
        std::fs::write(&p, text).unwrap();
        let mut out = Vec::new();
        cli::eval(&p, default_bundle(), &mut out).unwrap();
        println!("{}", String::from_utf8(out).unwrap());
    }
}
