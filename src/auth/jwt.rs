//! Bearer JWTs: finding the token in a request, reading what it says about itself, and
//! verifying it against its issuer's keys.

use std::collections::HashSet;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{header, HeaderMap, Uri};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::jwks::JwksCache;
use super::keys::KeySet;
use super::token_cache::TokenCache;
use super::AuthError;
use crate::identity::TokenIdentity;

/// The bearer token of a request (RFC 6750 §2.1), or `None` when it presents none.
/// A token in the query string (§2.3) is refused outright, even beside a header: MCP forbids
/// that method because URLs end up in logs and browser history.
pub(crate) fn bearer_token<'a>(headers: &'a HeaderMap, uri: &Uri) -> Result<Option<&'a str>, AuthError> {
    if uri.query().is_some_and(has_access_token_param) {
        return Err(AuthError::TokenInQuery);
    }
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(AuthError::Malformed("more than one Authorization header"));
    }
    let value = value.to_str().map_err(|_| AuthError::Malformed("the Authorization header is not ASCII"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed("the Authorization header is not a Bearer credential"));
    }
    match token.trim_start_matches(' ') {
        "" => Err(AuthError::Malformed("the Bearer credential is empty")),
        token => Ok(Some(token)),
    }
}

/// Whether a query has an `access_token` parameter, however its name is percent-encoded.
fn has_access_token_param(query: &str) -> bool {
    query.split('&').any(|pair| {
        let name = pair.split('=').next().unwrap_or_default();
        percent_decoded(name).as_deref() == Some("access_token")
    })
}

fn percent_decoded(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A JWS compact token as it describes itself, before anything is verified: enough to choose
/// the issuer and key, and to say in logs which token was refused.
pub(crate) struct Token<'a> {
    raw: &'a str,
    pub alg: String,
    pub kid: Option<String>,
    pub iss: Option<String>,
}

impl<'a> Token<'a> {
    pub fn parse(raw: &'a str) -> Result<Token<'a>, AuthError> {
        #[derive(Deserialize)]
        struct Header {
            alg: String,
            kid: Option<String>,
            crit: Option<serde::de::IgnoredAny>,
        }
        #[derive(Deserialize)]
        struct Claims {
            iss: Option<Value>,
        }
        let mut parts = raw.split('.');
        let (Some(header), Some(claims), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed("not a signed JWT in compact form"));
        };
        let header: Header =
            decode_json(header).ok_or(AuthError::Malformed("the JWT header is not base64url-encoded JSON"))?;
        // RFC 7515 §4.1.11: extensions marked critical must be understood, and none are.
        if header.crit.is_some() {
            return Err(AuthError::Malformed("the JWT header has critical extensions"));
        }
        let claims: Claims =
            decode_json(claims).ok_or(AuthError::Malformed("the JWT claims are not base64url-encoded JSON"))?;
        let iss = match claims.iss {
            None => None,
            Some(Value::String(iss)) => Some(iss),
            Some(_) => return Err(AuthError::InvalidClaim("iss".into())),
        };
        Ok(Token { raw, alg: header.alg, kid: header.kid, iss })
    }

    /// The algorithm, if it is one the gateway would ever verify.
    pub fn algorithm(&self) -> Result<Algorithm, AuthError> {
        if self.alg.eq_ignore_ascii_case("none") {
            return Err(AuthError::AlgNone);
        }
        let alg: Algorithm = self.alg.parse().map_err(|_| AuthError::AlgorithmNotAllowed)?;
        if !super::config::ASYMMETRIC_ALGORITHMS.contains(&alg) {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        Ok(alg)
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(segment: &str) -> Option<T> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).ok()?).ok()
}

pub(crate) enum Keys {
    Static(KeySet),
    Jwks(Arc<JwksCache>),
}

pub(crate) struct Issuer {
    pub name: String,
    pub keys: Keys,
    validation: Validation,
    required_claims: Vec<String>,
    leeway: u64,
    tokens: Option<TokenCache>,
}

impl Issuer {
    pub fn new(name: &str, audiences: &[String], leeway: u64, required_claims: &[String], keys: Keys) -> Issuer {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[name]);
        validation.set_audience(audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = leeway;
        Issuer {
            name: name.to_string(),
            keys,
            validation,
            required_claims: required_claims.to_vec(),
            leeway,
            tokens: None,
        }
    }

    /// Remembers up to `max_entries` verified tokens (see `token_cache`).
    pub fn with_token_cache(mut self, max_entries: usize) -> Issuer {
        self.tokens = Some(TokenCache::new(max_entries));
        self
    }

    /// Verifies a token this issuer claims to have issued. A `kid` missing from a JWKS makes
    /// the keys refresh once (within the cache's floor) before the token is refused.
    pub async fn verify(&self, token: &Token<'_>, alg: Algorithm) -> Result<TokenIdentity, AuthError> {
        match &self.keys {
            Keys::Static(keys) => self.verify_remembered(keys, 0, token, alg),
            Keys::Jwks(cache) => {
                let snapshot = cache.current().await;
                match self.verify_remembered(&snapshot.keys, snapshot.generation, token, alg) {
                    Err(AuthError::UnknownKid) if token.kid.is_some() => {
                        let snapshot = cache.refresh().await;
                        self.verify_remembered(&snapshot.keys, snapshot.generation, token, alg)
                    }
                    other => other,
                }
            }
        }
    }

    /// [`Issuer::verify_with`], skipped for a token this issuer verified before with the same
    /// key set (`generation`) that has not yet come within the leeway of its expiry.
    fn verify_remembered(
        &self,
        keys: &KeySet,
        generation: u64,
        token: &Token<'_>,
        alg: Algorithm,
    ) -> Result<TokenIdentity, AuthError> {
        let Some(tokens) = &self.tokens else { return self.verify_with(keys, token, alg) };
        let key = TokenCache::key(token.raw);
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(identity) = tokens.get(&key, generation, now) {
            return Ok(identity);
        }
        let identity = self.verify_with(keys, token, alg)?;
        if let Some(exp) = identity.claims.get("exp").and_then(Value::as_f64) {
            tokens.insert(key, generation, &identity, (exp as u64).saturating_sub(self.leeway), now);
        }
        Ok(identity)
    }

    fn verify_with(&self, keys: &KeySet, token: &Token<'_>, alg: Algorithm) -> Result<TokenIdentity, AuthError> {
        if keys.is_empty() {
            return Err(AuthError::KeysUnavailable);
        }
        let key = keys.find(token.kid.as_deref(), alg)?;
        let mut validation = self.validation.clone();
        validation.algorithms = vec![alg];
        let data = jsonwebtoken::decode::<Map<String, Value>>(token.raw, &key.key, &validation)
            .map_err(|e| verification_error(e.into_kind()))?;
        self.identity(data.claims)
    }

    /// The checks jsonwebtoken leaves to its caller (`iat`, further required claims), then the
    /// identity the verified claims establish.
    fn identity(&self, claims: Map<String, Value>) -> Result<TokenIdentity, AuthError> {
        if let Some(iat) = claims.get("iat") {
            let iat = iat.as_f64().ok_or_else(|| AuthError::InvalidClaim("iat".into()))?;
            if iat > (jsonwebtoken::get_current_timestamp() + self.leeway) as f64 {
                return Err(AuthError::IssuedInFuture);
            }
        }
        if let Some(missing) = self.required_claims.iter().find(|c| claims.get(*c).is_none_or(Value::is_null)) {
            return Err(AuthError::MissingClaim(missing.clone()));
        }
        let subject = claims.get("sub").and_then(Value::as_str).ok_or_else(|| AuthError::InvalidClaim("sub".into()))?;
        let audience = match claims.get("aud") {
            Some(Value::String(aud)) => vec![aud.clone()],
            Some(Value::Array(list)) => strings(list).ok_or_else(|| AuthError::InvalidClaim("aud".into()))?,
            _ => return Err(AuthError::InvalidClaim("aud".into())),
        };
        Ok(TokenIdentity {
            issuer: self.name.clone(),
            subject: subject.to_string(),
            audience,
            scopes: scopes(&claims)?,
            claims,
        })
    }
}

/// Scopes from `scope` (RFC 8693/9068: a space-separated string) or, when absent, `scp` (an
/// array in some providers, a string in others). Duplicates are dropped, order kept.
fn scopes(claims: &Map<String, Value>) -> Result<Vec<String>, AuthError> {
    let (name, value) = match (claims.get("scope"), claims.get("scp")) {
        (Some(scope), _) => ("scope", scope),
        (None, Some(scp)) => ("scp", scp),
        (None, None) => return Ok(Vec::new()),
    };
    let all = match value {
        Value::String(text) => text.split_whitespace().map(str::to_owned).collect(),
        Value::Array(list) if name == "scp" => strings(list).ok_or_else(|| AuthError::InvalidClaim(name.into()))?,
        _ => return Err(AuthError::InvalidClaim(name.into())),
    };
    let mut seen = HashSet::new();
    Ok(all.into_iter().filter(|s: &String| seen.insert(s.clone())).collect())
}

fn strings(list: &[Value]) -> Option<Vec<String>> {
    list.iter().map(|v| v.as_str().map(str::to_owned)).collect()
}

fn verification_error(kind: ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidIssuer => AuthError::UnknownIssuer,
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim),
        ErrorKind::InvalidClaimFormat(claim) => AuthError::InvalidClaim(claim),
        ErrorKind::InvalidAlgorithm => AuthError::AlgorithmNotAllowed,
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidEddsaKey | ErrorKind::InvalidRsaKey(_) => {
            AuthError::BadSignature
        }
        _ => AuthError::Malformed("the JWT cannot be decoded"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(authorization: &[&str], uri: &str) -> (HeaderMap, Uri) {
        let mut headers = HeaderMap::new();
        for value in authorization {
            headers.append(header::AUTHORIZATION, value.parse().unwrap());
        }
        (headers, uri.parse().unwrap())
    }

    fn token_of(authorization: &[&str], uri: &str) -> Result<Option<String>, AuthError> {
        let (headers, uri) = request(authorization, uri);
        bearer_token(&headers, &uri).map(|t| t.map(str::to_owned))
    }

    #[test]
    fn the_token_comes_from_the_bearer_header() {
        assert_eq!(token_of(&["Bearer abc.def.ghi"], "/mcp"), Ok(Some("abc.def.ghi".into())));
        assert_eq!(token_of(&["bearer abc"], "/mcp"), Ok(Some("abc".into())), "the scheme is case-insensitive");
        assert_eq!(token_of(&[], "/mcp"), Ok(None));
    }

    #[test]
    fn other_credentials_are_malformed() {
        assert!(matches!(token_of(&["Basic dXNlcjpwYXNz"], "/mcp"), Err(AuthError::Malformed(_))));
        assert!(matches!(token_of(&["Bearer"], "/mcp"), Err(AuthError::Malformed(_))));
        assert!(matches!(token_of(&["Bearer a", "Bearer b"], "/mcp"), Err(AuthError::Malformed(_))));
    }

    #[test]
    fn a_token_in_the_query_is_refused() {
        assert_eq!(token_of(&[], "/mcp?access_token=abc"), Err(AuthError::TokenInQuery));
        assert_eq!(token_of(&["Bearer abc"], "/mcp?x=1&access_token=abc"), Err(AuthError::TokenInQuery));
        assert_eq!(token_of(&[], "/mcp?access%5Ftoken=abc"), Err(AuthError::TokenInQuery));
        assert_eq!(token_of(&[], "/mcp?access_token"), Err(AuthError::TokenInQuery));
    }

    #[test]
    fn query_parameters_merely_like_it_pass() {
        assert_eq!(token_of(&[], "/mcp?access_tokens=1&token=abc&x=access_token"), Ok(None));
        assert_eq!(token_of(&[], "/mcp?session=%ZZ"), Ok(None));
    }

    fn encode(value: Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    fn compact(header: Value, claims: Value) -> String {
        format!("{}.{}.c2ln", encode(header), encode(claims))
    }

    #[test]
    fn unsigned_tokens_are_refused_in_any_spelling() {
        for alg in ["none", "None", "NONE", "nOnE"] {
            let raw = compact(json!({ "alg": alg }), json!({"iss": "x"}));
            assert_eq!(Token::parse(&raw).unwrap().algorithm(), Err(AuthError::AlgNone));
        }
    }

    #[test]
    fn only_asymmetric_algorithms_are_verified() {
        for (alg, accepted) in [("HS256", false), ("HS512", false), ("ES512", false), ("RS256", true), ("EdDSA", true)]
        {
            let raw = compact(json!({ "alg": alg }), json!({}));
            assert_eq!(Token::parse(&raw).unwrap().algorithm().is_ok(), accepted, "{alg}");
        }
    }

    #[test]
    fn shapes_that_are_not_a_jws_are_malformed() {
        let jwe = format!("{}.a.b.c.d", encode(json!({"alg": "RSA-OAEP", "enc": "A256GCM"})));
        let crit = compact(json!({"alg": "ES256", "crit": ["b64"], "b64": false}), json!({}));
        let duplicate =
            format!("{}.{}.c2ln", URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","alg":"none"}"#), encode(json!({})));
        for raw in ["abc", "a.b", &jwe, &crit, &duplicate, "!!.!!.!!"] {
            assert!(matches!(Token::parse(raw), Err(AuthError::Malformed(_))), "{raw}");
        }
        let fine = compact(json!({"alg": "ES256", "kid": "k1"}), json!({"iss": "https://idp"}));
        let token = Token::parse(&fine).unwrap();
        assert_eq!((token.kid.as_deref(), token.iss.as_deref()), (Some("k1"), Some("https://idp")));
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let claims = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(scopes(&claims(json!({"scope": "a b  a"}))).unwrap(), ["a", "b"]);
        assert_eq!(scopes(&claims(json!({"scp": ["a", "b"]}))).unwrap(), ["a", "b"]);
        assert_eq!(scopes(&claims(json!({"scp": "a b"}))).unwrap(), ["a", "b"]);
        assert_eq!(scopes(&claims(json!({"scope": "a", "scp": ["b"]}))).unwrap(), ["a"]);
        assert_eq!(scopes(&claims(json!({}))).unwrap(), Vec::<String>::new());
        assert!(scopes(&claims(json!({"scope": ["a"]}))).is_err());
        assert!(scopes(&claims(json!({"scp": [1]}))).is_err());
    }
}
