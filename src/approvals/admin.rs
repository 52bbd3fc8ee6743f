//! Approvers' side, on the admin listener: the page under `/approvals` and the JSON API under
//! `/api/approvals` (which `forge approvals` uses).
//!
//! | | page | API |
//! | --- | --- | --- |
//! | list | `GET /approvals` | `GET /api/approvals` |
//! | one | `GET /approvals/{id}` | `GET /api/approvals/{id}` |
//! | decide | `POST /approvals/{id}` (form: `decision`, `comment`) | `POST /api/approvals/{id}/approve\|deny` (`{"comment": …}`) |
//! | revoke | | `POST /api/revocations` (`{"subject": "principal:…" \| "jti:…"}`) |
//!
//! Every one needs an approver: a bearer JWT verified exactly as callers' tokens are
//! (src/auth), carrying `approvals.approver_scope` or `approvals.approver_role`. The page,
//! which a browser reaches without scripts, takes the token once through a sign-in form and
//! keeps it in an `HttpOnly`, `SameSite=Strict` cookie; each request verifies it again.
//! Nobody approves their own call.

use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::page;
use crate::body::{self, Body};
use crate::gateway::Gateway;
use crate::identity::TokenIdentity;
use crate::state::{now_ms, Approval, StoreError};

const COOKIE: &str = "forge_approver";
const REVOCATIONS: &str = "/api/revocations";
const MAX_FORM_BYTES: usize = 64 * 1024;
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub fn serves(path: &str) -> bool {
    path == REVOCATIONS
        || ["/approvals", "/api/approvals"].iter().any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

/// Who the approver is, or the status and reason why not.
type Approver = Result<String, (StatusCode, String)>;

pub async fn handle(gw: &Gateway, req: Request<Incoming>) -> Response<Body> {
    let (parts, incoming) = req.into_parts();
    let path = parts.uri.path().to_string();
    let api = path.starts_with("/api/");
    let under = path.strip_prefix("/api").unwrap_or(&path).strip_prefix("/approvals").unwrap_or_default();
    let rest: Vec<&str> = under.split('/').filter(|s| !s.is_empty()).collect();
    let body = match body::read_limited(body::boxed(incoming), MAX_FORM_BYTES, BODY_TIMEOUT).await {
        Ok(bytes) => bytes,
        Err(e) => return respond(api, StatusCode::BAD_REQUEST, &format!("request body refused: {e}")),
    };
    if !api && rest == ["login"] {
        return match parts.method {
            Method::POST => sign_in(gw, &parts, &body).await,
            _ => html(StatusCode::OK, page::login(None)),
        };
    }
    let approver = match approver(gw, &parts.headers, &parts.uri, api).await {
        Ok(name) => name,
        Err((status, why)) if !api => return html(status, page::login(Some(&why))),
        Err((status, why)) => return json_error(status, &why),
    };
    if path == REVOCATIONS {
        return match parts.method {
            Method::POST => revoke(gw, &approver, &body).await,
            _ => json_error(StatusCode::METHOD_NOT_ALLOWED, "POST a revocation"),
        };
    }
    if !api && parts.method == Method::POST && !same_origin(&parts.headers) {
        return html(StatusCode::FORBIDDEN, page::message("Refused", "cross-origin form submissions are refused"));
    }
    match (&parts.method, rest.as_slice(), api) {
        (&Method::GET, [], _) => match gw.approvals.list().await {
            Ok(all) if api => json_ok(json!({ "approvals": all.iter().map(view).collect::<Vec<_>>() })),
            Ok(all) => html(StatusCode::OK, page::list(&approver, &all)),
            Err(e) => store_failed(api, &e),
        },
        (&Method::GET, [id], _) => match gw.approvals.get(id).await {
            Ok(Some(a)) if api => json_ok(view(&a)),
            Ok(Some(a)) => html(StatusCode::OK, page::show(&approver, &a, None)),
            Ok(None) => respond(api, StatusCode::NOT_FOUND, &format!("no approval request {id}")),
            Err(e) => store_failed(api, &e),
        },
        (&Method::POST, [id, action @ ("approve" | "deny")], true) => {
            let comment = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("comment").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            decide(gw, id, *action == "approve", &approver, &comment, true).await
        }
        (&Method::POST, [id], false) => {
            let form: std::collections::HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
            let approve = match form.get("decision").map(String::as_str) {
                Some("approve") => true,
                Some("deny") => false,
                _ => return html(StatusCode::BAD_REQUEST, page::message("Refused", "choose approve or deny")),
            };
            decide(gw, id, approve, &approver, form.get("comment").map_or("", String::as_str), false).await
        }
        _ => respond(api, StatusCode::NOT_FOUND, "not found"),
    }
}

async fn decide(gw: &Gateway, id: &str, approve: bool, approver: &str, comment: &str, api: bool) -> Response<Body> {
    let existing = match gw.approvals.get(id).await {
        Ok(Some(a)) => a,
        Ok(None) => return respond(api, StatusCode::NOT_FOUND, &format!("no approval request {id}")),
        Err(e) => return store_failed(api, &e),
    };
    if existing.request.caller == approver {
        return respond(api, StatusCode::FORBIDDEN, "approvers cannot decide on their own calls");
    }
    match gw.approvals.decide(id, approve, approver, comment).await {
        Ok(a) if api => json_ok(view(&a)),
        Ok(_) => {
            let mut r = html(StatusCode::SEE_OTHER, String::new());
            r.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_str(&format!("/approvals/{id}")).expect("ids are ASCII"));
            r
        }
        Err(e @ StoreError::NotPending { .. }) if !api => {
            html(StatusCode::CONFLICT, page::show(approver, &existing, Some(&e.to_string())))
        }
        Err(e) => store_failed(api, &e),
    }
}

/// Revokes a principal or a token on every replica: approvers are the ones trusted to.
async fn revoke(gw: &Gateway, approver: &str, body: &[u8]) -> Response<Body> {
    let subject = serde_json::from_slice::<Value>(body).ok().and_then(|v| v["subject"].as_str().map(str::to_owned));
    let Some(subject) = subject else { return json_error(StatusCode::BAD_REQUEST, "send {\"subject\": …}") };
    if let Err(why) = crate::state::revocations::validate(&subject) {
        return json_error(StatusCode::BAD_REQUEST, &why);
    }
    match gw.revocations.revoke(&subject).await {
        Ok(()) => {
            tracing::warn!(target: "forge::approvals", subject = %subject, by = %approver, "revoked");
            json_ok(json!({ "revoked": subject }))
        }
        Err(e) => store_failed(true, &e),
    }
}

/// Verifies the approver's token (header, or the page's cookie) as src/auth does for callers.
async fn approver(gw: &Gateway, headers: &HeaderMap, uri: &http::Uri, api: bool) -> Approver {
    let mut headers = headers.clone();
    if !api && !headers.contains_key(header::AUTHORIZATION) {
        if let Some(token) = cookie(&headers, COOKIE) {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| (StatusCode::UNAUTHORIZED, "malformed sign-in cookie".to_string()))?;
            headers.insert(header::AUTHORIZATION, value);
        }
    }
    let token = match gw.auth.authenticate(&headers, uri).await {
        Ok(Some(token)) => token,
        Ok(None) if !gw.auth.enabled() => {
            return Err((
                StatusCode::UNAUTHORIZED,
                "approvers cannot be verified: authentication (auth.mode) is off".into(),
            ))
        }
        Ok(None) => return Err((StatusCode::UNAUTHORIZED, "an approver token is required".into())),
        Err(e) => return Err((e.status(), format!("the approver token was refused: {e}"))),
    };
    let config = &gw.approvals.config;
    if may_approve(&token, &config.approver_scope, &config.approver_role) {
        Ok(crate::identity::Principal { token: Some(token), certificate: None }.label())
    } else {
        let why = format!(
            "the token has neither the `{}` scope nor the `{}` role an approver needs",
            config.approver_scope, config.approver_role
        );
        Err((StatusCode::FORBIDDEN, why))
    }
}

fn may_approve(token: &TokenIdentity, scope: &str, role: &str) -> bool {
    let has_scope = !scope.is_empty() && token.scopes.iter().any(|s| s == scope);
    let roles = token.claims.get("roles").and_then(Value::as_array);
    let has_role = !role.is_empty() && roles.is_some_and(|r| r.iter().any(|v| v.as_str() == Some(role)));
    has_scope || has_role
}

async fn sign_in(gw: &Gateway, parts: &http::request::Parts, body: &[u8]) -> Response<Body> {
    if !same_origin(&parts.headers) {
        return html(StatusCode::FORBIDDEN, page::message("Refused", "cross-origin form submissions are refused"));
    }
    let token = form_urlencoded::parse(body).find(|(k, _)| k == "token").map(|(_, v)| v.trim().to_string());
    let Some(token) = token.filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic())) else {
        return html(StatusCode::BAD_REQUEST, page::login(Some("paste a token")));
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).expect("checked ASCII"));
    if let Err((status, why)) = approver(gw, &headers, &parts.uri, true).await {
        return html(status, page::login(Some(&why)));
    }
    let mut r = html(StatusCode::SEE_OTHER, String::new());
    let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
    r.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("checked ASCII"));
    r.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/approvals"));
    r
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
}

/// A browser names the page's origin on every form POST; one that names another is refused.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    origin.split_once("://").is_some_and(|(_, authority)| authority == host)
}

/// An approval as the API shows it.
fn view(a: &Approval) -> Value {
    let mut v = serde_json::to_value(a).expect("approvals serialize");
    v["status"] = json!(a.status_at(now_ms()));
    v
}

fn store_failed(api: bool, e: &StoreError) -> Response<Body> {
    let status = match e {
        StoreError::NotFound(_) => StatusCode::NOT_FOUND,
        StoreError::NotPending { .. } => StatusCode::CONFLICT,
        StoreError::Unavailable(_) | StoreError::Corrupt(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    respond(api, status, &e.to_string())
}

fn respond(api: bool, status: StatusCode, text: &str) -> Response<Body> {
    if api {
        json_error(status, text)
    } else {
        html(status, page::message("Forge approvals", text))
    }
}

fn html(status: StatusCode, text: String) -> Response<Body> {
    let mut r = Response::new(body::full(text));
    *r.status_mut() = status;
    let headers = r.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // No scripts run and nothing is loaded from elsewhere, even if escaping were ever missed.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn json_ok(value: Value) -> Response<Body> {
    let mut r = Response::new(body::full(value.to_string()));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn json_error(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = json_ok(json!({ "error": text }));
    *r.status_mut() = status;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approvers_need_the_scope_or_the_role() {
        let mut token = TokenIdentity { scopes: vec!["forge:approve".into()], ..Default::default() };
        assert!(may_approve(&token, "forge:approve", "approver"));
        token.scopes = vec!["forge:approver".into(), "mcp:tools".into()];
        assert!(!may_approve(&token, "forge:approve", "approver"), "a near-miss scope is not enough");
        token.claims.insert("roles".into(), json!(["viewer", "approver"]));
        assert!(may_approve(&token, "forge:approve", "approver"));
        assert!(!may_approve(&token, "forge:approve", ""), "an empty role setting matches nobody");
    }

    #[test]
    fn cookies_and_origins() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; forge_approver=tok; forge_approverx=no"));
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("tok"));
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9090"));
        assert!(same_origin(&h), "no Origin header: not a cross-site form");
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:9090"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn only_approval_paths_are_served() {
        assert!(serves("/approvals") && serves("/approvals/x") && serves("/api/approvals/x/approve"));
        assert!(serves("/api/revocations") && !serves("/api/revocationsx"));
        assert!(!serves("/approvalsx") && !serves("/api") && !serves("/metrics"));
    }
}
