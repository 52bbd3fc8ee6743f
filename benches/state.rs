//! What approvals, rate limits and revocations add to a call's path: a rate-limit step (in
//! memory, and one Lua round trip to Redis), an approval check of a call that is still
//! pending (embedded: one read transaction; Redis: one script plus one read), and the
//! revocation check every identified call pays (a lookup in the set kept in memory, with
//! 1,000 revocations; no store round trip). Calls whose decision asks for neither a rate
//! limit nor an approval pay only the revocation check. Redis cases run against a `redis-server` started here on a
//! loopback port, and are skipped without one. Run with `cargo bench --bench state`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use forge::approvals::{Approvals, ApprovalsConfig, Call};
use forge::identity::{Principal, TokenIdentity};
use forge::ratelimit::RateLimiter;
use forge::state::config::RedisConfig;
use forge::state::embedded::EmbeddedStore;
use forge::state::redis::RedisStore;
use forge::state::revocations::{Refused, Revocations};
use forge::state::{Rate, StateStore};
use serde_json::json;

struct RedisServer(Child, u16);

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis_server(dir: &std::path::Path) -> Option<RedisServer> {
    let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(RedisServer(child, port));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn bench_store(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, store: Arc<dyn StateStore>) {
    let limiter = RateLimiter::new(store.clone()).unwrap();
    let generous = Rate { limit: u64::MAX / 2, period_ms: 1000 };
    c.bench_function(&format!("rate limit step ({name})"), |b| {
        b.iter(|| rt.block_on(limiter.check("bench|tool", generous)))
    });
    let approvals = Approvals::new(store.clone(), ApprovalsConfig::default(), "http://127.0.0.1:9090", None).unwrap();
    let arguments = json!({"repo": "forge", "branch": "main", "force": true});
    let call = Call {
        caller: "alice@https://idp".into(),
        tool: "delete_branch",
        arguments: &arguments,
        bundle_revision: "r1",
        reason: "destructive",
        findings: &[],
    };
    c.bench_function(&format!("approval check of a pending call ({name})"), |b| {
        b.iter(|| rt.block_on(approvals.check(&call)))
    });

    for i in 0..1000 {
        rt.block_on(store.revoke(&format!("principal:user-{i}@https://idp"))).unwrap();
    }
    let revocations = rt.block_on(Revocations::start(store.clone(), Duration::from_secs(30)));
    let mut token = TokenIdentity { issuer: "https://idp".into(), subject: "alice".into(), ..Default::default() };
    token.claims.insert("jti".into(), "token-1".into());
    let alice = Principal { token: Some(token), certificate: None };
    while revocations.admit(&alice) == Err(Refused::Unknown) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(revocations
        .admit(&Principal {
            token: Some(TokenIdentity { issuer: "https://idp".into(), subject: "user-7".into(), ..Default::default() }),
            certificate: None
        })
        .is_err());
    c.bench_function(&format!("revocation check, 1000 revoked ({name})"), |b| b.iter(|| revocations.admit(&alice)));
}

fn state(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let local = forge::ratelimit::LocalGcra::default();
    let rate = Rate { limit: u64::MAX / 2, period_ms: 1000 };
    c.bench_function("GCRA step in memory", |b| b.iter(|| local.check("bench|tool", rate)));

    let embedded = Arc::new(EmbeddedStore::open(&dir.path().join("bench.redb")).unwrap());
    bench_store(c, &rt, "embedded", embedded);

    match redis_server(dir.path()) {
        Some(server) => {
            let config = RedisConfig { url: Some(format!("redis://127.0.0.1:{}", server.1)), ..Default::default() };
            let store = rt.block_on(RedisStore::connect(&config, dir.path())).unwrap();
            bench_store(c, &rt, "redis", Arc::new(store));
        }
        None => eprintln!("redis-server not available: Redis cases skipped"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(30);
    targets = state
}
criterion_main!(benches);
