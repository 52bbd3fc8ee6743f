//! `forge approvals list|show|approve|deny|revoke`: the JSON API of a running gateway's admin
//! listener, from a terminal.

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

#[derive(Args)]
pub struct ApprovalsArgs {
    /// The gateway's admin listener.
    #[arg(long, env = "FORGE_ADMIN_URL", default_value = "http://127.0.0.1:9090", global = true)]
    admin: String,
    /// An approver's access token (a JWT with the approver scope or role).
    #[arg(long, env = "FORGE_APPROVER_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: ApprovalsCommand,
}

#[derive(Subcommand)]
pub enum ApprovalsCommand {
    /// List approval requests (pending ones unless --all).
    List {
        /// Also list decided, used and expired requests.
        #[arg(long)]
        all: bool,
    },
    /// Show one request: caller, tool, masked arguments, reason, status.
    Show {
        /// The approval request's id (from `list`, or the caller's error message).
        id: String,
    },
    /// Approve a pending request; the caller's identical retry then goes through.
    Approve {
        /// The approval request's id.
        id: String,
        /// Recorded with the decision and shown to the caller.
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Revoke a caller (`principal:<sub>@<iss>`, as `list` shows callers) or one token
    /// (`jti:<id>`) on every replica: its calls are refused from then on.
    Revoke {
        /// `principal:<caller>` or `jti:<token id>`.
        subject: String,
    },
    /// Deny a pending request.
    Deny {
        /// The approval request's id.
        id: String,
        /// Recorded with the decision and shown to the caller.
        #[arg(long, default_value = "")]
        comment: String,
    },
}

pub fn run(args: ApprovalsArgs, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(execute(args, out))
}

async fn execute(args: ApprovalsArgs, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let token = args.token.clone().context("an approver token is needed: --token or FORGE_APPROVER_TOKEN")?;
    let api = Api { base: args.admin.trim_end_matches('/').to_string(), token };
    match args.command {
        ApprovalsCommand::List { all } => {
            let listed = api.call(http::Method::GET, "", None).await?;
            for a in listed["approvals"].as_array().into_iter().flatten() {
                let status = a["status"].as_str().unwrap_or_default();
                if all || status == "pending" {
                    let r = &a["request"];
                    writeln!(
                        out,
                        "{}\t{status}\t{}\t{}\t{}",
                        s(&r["id"]),
                        s(&r["caller"]),
                        s(&r["tool"]),
                        s(&r["reason"])
                    )?;
                }
            }
        }
        ApprovalsCommand::Show { id } => {
            let shown = api.call(http::Method::GET, &format!("/{id}"), None).await?;
            writeln!(out, "{}", serde_json::to_string_pretty(&shown)?)?;
        }
        ApprovalsCommand::Approve { id, comment } => {
            let decided =
                api.call(http::Method::POST, &format!("/{id}/approve"), Some(json!({"comment": comment}))).await?;
            writeln!(out, "{id}\t{}", s(&decided["status"]))?;
        }
        ApprovalsCommand::Revoke { subject } => {
            let revoked = api.post_revocation(&subject).await?;
            writeln!(out, "revoked\t{}", s(&revoked["revoked"]))?;
        }
        ApprovalsCommand::Deny { id, comment } => {
            let decided =
                api.call(http::Method::POST, &format!("/{id}/deny"), Some(json!({"comment": comment}))).await?;
            writeln!(out, "{id}\t{}", s(&decided["status"]))?;
        }
    }
    Ok(())
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

struct Api {
    base: String,
    token: String,
}

impl Api {
    async fn call(&self, method: http::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        self.send(method, &format!("/api/approvals{path}"), body).await
    }

    async fn post_revocation(&self, subject: &str) -> anyhow::Result<Value> {
        self.send(http::Method::POST, "/api/revocations", Some(json!({ "subject": subject }))).await
    }

    async fn send(&self, method: http::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        if !self.base.starts_with("http://") {
            bail!("--admin must be an http:// URL (the admin listener serves plain HTTP)");
        }
        let url = format!("{}{path}", self.base);
        let request = http::Request::builder()
            .method(method)
            .uri(&url)
            .header(http::header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.map(|b| b.to_string()).unwrap_or_default())))?;
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let response = tokio::time::timeout(std::time::Duration::from_secs(30), client.request(request))
            .await
            .with_context(|| format!("{url}: no answer within 30s"))?
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let bytes = response.into_body().collect().await.context("reading the answer")?.to_bytes();
        let value: Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{url} answered {status} with something that is not JSON"))?;
        if !status.is_success() {
            bail!("{status}: {}", value["error"].as_str().unwrap_or("the gateway refused the request"));
        }
        Ok(value)
    }
}
