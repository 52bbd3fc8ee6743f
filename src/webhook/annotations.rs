//! The `forge.dev/*` labels and annotations a pod uses to opt in or out and to override
//! what its sidecar gets. Every override is validated; a typo in a `forge.dev/` key is an
//! error too, so a misspelt setting never silently falls back to the default.

use std::collections::BTreeMap;

use crate::policy::Mode;

use super::config::{check_plugin_name, is_dns_subdomain, is_port_name};

pub const INJECT: &str = "forge.dev/inject";
pub const INJECTED: &str = "forge.dev/injected";
pub const UPSTREAM_PORT: &str = "forge.dev/upstream-port";
pub const UPSTREAM_STDIO: &str = "forge.dev/upstream-stdio";
pub const POLICY_CONFIGMAP: &str = "forge.dev/policy-configmap";
/// `secrets=team-secrets,pii=team-pii`: the plugins, each from its ConfigMap.
pub const PLUGINS: &str = "forge.dev/plugins";
pub const MODE: &str = "forge.dev/mode";
pub const LOG_LEVEL: &str = "forge.dev/log-level";

const KNOWN: &[&str] = &[INJECT, INJECTED, UPSTREAM_PORT, UPSTREAM_STDIO, POLICY_CONFIGMAP, PLUGINS, MODE, LOG_LEVEL];

/// Longest stdio command accepted: it becomes one argument of the sidecar.
const MAX_COMMAND_LEN: usize = 4096;

/// A pod's validated overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub upstream: Option<UpstreamOverride>,
    pub policy_configmap: Option<String>,
    /// Plugin name → ConfigMap; replaces the webhook config's set.
    pub plugins: Option<BTreeMap<String, String>>,
    pub mode: Option<Mode>,
    pub log_level: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamOverride {
    Port(PortRef),
    /// The command line the sidecar runs as a stdio MCP server.
    Stdio(String),
}

/// A container port, by name or number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    Name(String),
    Number(u16),
}

impl std::fmt::Display for PortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortRef::Name(name) => write!(f, "`{name}`"),
            PortRef::Number(n) => write!(f, "{n}"),
        }
    }
}

/// Why a pod cannot be injected: the annotation (or pod field) at fault, and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct Problem {
    pub key: String,
    pub reason: String,
}

impl Problem {
    pub fn new(key: &str, reason: impl Into<String>) -> Self {
        Problem { key: key.to_string(), reason: reason.into() }
    }
}

/// The pod's own word on injection, from the annotation and the label `forge.dev/inject`:
/// `Some(false)` when either opts out (opting out wins), `Some(true)` when one opts in,
/// `None` when neither says anything.
pub fn inject_choice(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Result<Option<bool>, Problem> {
    let mut choice = None;
    for value in [annotations.get(INJECT), labels.get(INJECT)].into_iter().flatten() {
        let wants = match value.as_str() {
            "true" | "enabled" => true,
            "false" | "disabled" => false,
            other => return Err(Problem::new(INJECT, format!("`{other}` is not \"true\" or \"false\""))),
        };
        choice = Some(choice.unwrap_or(true) && wants);
    }
    Ok(choice)
}

/// Reads every override; returns all the problems at once so one round trip fixes them.
pub fn parse(annotations: &BTreeMap<String, String>) -> Result<Overrides, Vec<Problem>> {
    let mut overrides = Overrides::default();
    let mut problems = Vec::new();
    for (key, value) in annotations.iter().filter(|(k, _)| k.starts_with("forge.dev/")) {
        let parsed = match key.as_str() {
            UPSTREAM_PORT => port_ref(value).map(|p| overrides.upstream = Some(UpstreamOverride::Port(p))),
            UPSTREAM_STDIO => stdio_command(value).map(|c| overrides.upstream = Some(UpstreamOverride::Stdio(c))),
            POLICY_CONFIGMAP => object_name(value).map(|n| overrides.policy_configmap = Some(n)),
            PLUGINS => plugin_config_maps(value).map(|p| overrides.plugins = Some(p)),
            MODE => mode(value).map(|m| overrides.mode = Some(m)),
            LOG_LEVEL => log_level(value).map(|l| overrides.log_level = Some(l)),
            k if KNOWN.contains(&k) => Ok(()),
            _ => Err(format!("unknown Forge annotation; known ones are {}", KNOWN.join(", "))),
        };
        if let Err(reason) = parsed {
            problems.push(Problem::new(key, reason));
        }
    }
    if annotations.contains_key(UPSTREAM_PORT) && annotations.contains_key(UPSTREAM_STDIO) {
        problems.push(Problem::new(UPSTREAM_STDIO, format!("cannot be combined with {UPSTREAM_PORT}")));
    }
    if problems.is_empty() {
        Ok(overrides)
    } else {
        Err(problems)
    }
}

fn port_ref(value: &str) -> Result<PortRef, String> {
    if value.bytes().all(|b| b.is_ascii_digit()) && !value.is_empty() {
        return match value.parse::<u16>() {
            Ok(n) if n > 0 => Ok(PortRef::Number(n)),
            _ => Err(format!("`{value}` is not a port number from 1 to 65535")),
        };
    }
    if is_port_name(value) {
        Ok(PortRef::Name(value.to_string()))
    } else {
        Err(format!("`{value}` is neither a port number nor a container port name"))
    }
}

fn stdio_command(value: &str) -> Result<String, String> {
    let command = value.trim();
    if command.len() > MAX_COMMAND_LEN {
        return Err(format!("the command is longer than {MAX_COMMAND_LEN} bytes"));
    }
    if command.chars().any(|c| c.is_control() && c != ' ') {
        return Err("the command contains control characters (newlines, NUL, …)".into());
    }
    // The sidecar parses it exactly like this at start-up; refuse here what it would refuse there.
    let upstream = crate::config::UpstreamConfig { url: format!("stdio:{command}"), ..Default::default() };
    upstream.parse().map_err(|e| e.message)?;
    Ok(command.to_string())
}

fn object_name(value: &str) -> Result<String, String> {
    if is_dns_subdomain(value) {
        Ok(value.to_string())
    } else {
        Err(format!("`{value}` is not a ConfigMap name (lowercase RFC 1123 subdomain)"))
    }
}

fn plugin_config_maps(value: &str) -> Result<BTreeMap<String, String>, String> {
    let mut plugins = BTreeMap::new();
    for pair in value.split(',').map(str::trim) {
        let Some((plugin, config_map)) = pair.split_once('=') else {
            return Err(format!("`{pair}` is not plugin=configmap (e.g. secrets=team-secrets,pii=team-pii)"));
        };
        check_plugin_name(plugin.trim())?;
        let config_map = object_name(config_map.trim())?;
        if plugins.insert(plugin.trim().to_string(), config_map).is_some() {
            return Err(format!("plugin `{}` is named twice", plugin.trim()));
        }
    }
    Ok(plugins)
}

fn mode(value: &str) -> Result<Mode, String> {
    match value {
        "enforce" => Ok(Mode::Enforce),
        "audit" => Ok(Mode::Audit),
        other => Err(format!("`{other}` is not enforce or audit")),
    }
}

fn log_level(value: &str) -> Result<String, String> {
    if value.len() > 256 {
        return Err("longer than 256 bytes".into());
    }
    match tracing_subscriber::EnvFilter::try_new(value) {
        Ok(_) if !value.trim().is_empty() => Ok(value.to_string()),
        Ok(_) => Err("empty; use a level such as info or debug".into()),
        Err(e) => Err(format!("`{value}` is not a log filter such as info or forge=debug,info: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn valid_overrides_are_read() {
        let o = parse(&map(&[
            (UPSTREAM_PORT, "8080"),
            (POLICY_CONFIGMAP, "team-policy"),
            (MODE, "audit"),
            (LOG_LEVEL, "forge=debug,info"),
            ("other.io/x", "anything"),
        ]))
        .unwrap();
        assert_eq!(o.upstream, Some(UpstreamOverride::Port(PortRef::Number(8080))));
        assert_eq!(o.policy_configmap.as_deref(), Some("team-policy"));
        assert_eq!(o.mode, Some(Mode::Audit));
        let o = parse(&map(&[(PLUGINS, "secrets=team-secrets, pii = team-pii")])).unwrap();
        let expected = map(&[("secrets", "team-secrets"), ("pii", "team-pii")]);
        assert_eq!(o.plugins, Some(expected));
        let o = parse(&map(&[(UPSTREAM_PORT, "http")])).unwrap();
        assert_eq!(o.upstream, Some(UpstreamOverride::Port(PortRef::Name("http".into()))));
        let o = parse(&map(&[(UPSTREAM_STDIO, " python -m server --root '/data dir' ")])).unwrap();
        assert_eq!(o.upstream, Some(UpstreamOverride::Stdio("python -m server --root '/data dir'".into())));
    }

    #[test]
    fn each_bad_annotation_is_named_with_its_reason() {
        let cases = [
            (UPSTREAM_PORT, "0", "not a port number"),
            (UPSTREAM_PORT, "70000", "not a port number"),
            (UPSTREAM_PORT, "Not_A_Port", "neither a port number"),
            (UPSTREAM_STDIO, "", "needs a command"),
            (UPSTREAM_STDIO, "server 'unbalanced", "unbalanced quote"),
            (UPSTREAM_STDIO, "server\n--evil", "control characters"),
            (POLICY_CONFIGMAP, "../etc", "not a ConfigMap name"),
            (PLUGINS, "team-a-plugins", "not plugin=configmap"),
            (PLUGINS, "secrets=UPPER", "not a ConfigMap name"),
            (PLUGINS, "Secrets=team-secrets", "not a plugin name"),
            (PLUGINS, "secrets=a,secrets=b", "named twice"),
            (PLUGINS, "", "not plugin=configmap"),
            (MODE, "permissive", "not enforce or audit"),
            (LOG_LEVEL, "forge=[", "not a log filter"),
            ("forge.dev/upstream-prot", "8080", "unknown Forge annotation"),
        ];
        for (key, value, reason) in cases {
            let problems = parse(&map(&[(key, value)])).unwrap_err();
            assert_eq!(problems.len(), 1, "{key}={value:?}: {problems:?}");
            assert_eq!(problems[0].key, key);
            assert!(problems[0].reason.contains(reason), "{key}={value:?}: {}", problems[0]);
        }
        let both = parse(&map(&[(UPSTREAM_PORT, "80"), (UPSTREAM_STDIO, "srv"), (MODE, "x")])).unwrap_err();
        assert_eq!(both.len(), 2, "{both:?}");
    }

    #[test]
    fn opt_out_annotation_wins_over_an_opt_in_label() {
        let labels = map(&[(INJECT, "true")]);
        assert_eq!(inject_choice(&labels, &map(&[(INJECT, "false")])).unwrap(), Some(false));
        assert_eq!(inject_choice(&map(&[(INJECT, "false")]), &map(&[(INJECT, "true")])).unwrap(), Some(false));
        assert_eq!(inject_choice(&labels, &map(&[])).unwrap(), Some(true));
        assert_eq!(inject_choice(&map(&[]), &map(&[])).unwrap(), None);
        assert!(inject_choice(&map(&[(INJECT, "yes")]), &map(&[])).is_err());
    }
}
