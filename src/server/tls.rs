//! TLS termination with rustls: TLS 1.2/1.3 only, ALPN h2 + http/1.1, certificates from PEM
//! files hot-reloaded on change, optional client-certificate (mTLS) verification, and a
//! development certificate generated when none is configured.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;

use crate::config::{ClientAuthMode, TlsConfig};

/// Where the certificate and key come from.
#[derive(Debug, Clone)]
pub struct CertPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// True when the gateway generated a development certificate.
    pub generated: bool,
}

/// Resolves the configured certificate, or creates (once) a self-signed development one
/// under `state_dir/tls/` valid for localhost, 127.0.0.1 and ::1.
pub fn cert_paths(config: &TlsConfig, state_dir: &Path) -> anyhow::Result<CertPaths> {
    if let (Some(cert), Some(key)) = (&config.cert, &config.key) {
        return Ok(CertPaths { cert: cert.clone(), key: key.clone(), generated: false });
    }
    let dir = state_dir.join("tls");
    let cert = dir.join("dev-cert.pem");
    let key = dir.join("dev-key.pem");
    if !(cert.exists() && key.exists()) {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
        let generated = rcgen::generate_simple_self_signed(names).context("generating a development certificate")?;
        write_private(&key, generated.signing_key.serialize_pem().as_bytes())?;
        std::fs::write(&cert, generated.cert.pem()).with_context(|| format!("writing {}", cert.display()))?;
    }
    Ok(CertPaths { cert, key, generated: true })
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents)?;
    Ok(())
}

/// Builds a rustls server configuration from the files named in `paths` and `config`.
pub fn server_config(paths: &CertPaths, config: &TlsConfig) -> anyhow::Result<ServerConfig> {
    let certs = load_certs(&paths.cert)?;
    let key = load_key(&paths.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?;
    let builder = match (config.client_auth.mode, &config.client_auth.ca) {
        (ClientAuthMode::None, _) => builder.with_no_client_auth(),
        (mode, Some(ca)) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in load_certs(ca)? {
                roots.add(cert).with_context(|| format!("adding a CA from {}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match mode {
                ClientAuthMode::Optional => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            builder.with_client_cert_verifier(verifier.build().context("client certificate verifier")?)
        }
        (_, None) => bail!("tls.client_auth.ca is required for client certificate verification"),
    };
    let mut server = builder
        .with_single_cert(certs, key)
        .with_context(|| format!("certificate {} does not match key {}", paths.cert.display(), paths.key.display()))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(server)
}

fn load_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("reading certificate {}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificate PEM {}", path.display()))?;
    if certs.is_empty() {
        bail!("no certificate found in {}", path.display());
    }
    Ok(certs)
}

fn load_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).with_context(|| format!("reading private key {}", path.display()))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .with_context(|| format!("parsing private key PEM {}", path.display()))?
        .with_context(|| format!("no private key found in {}", path.display()))
}

/// The live TLS configuration, swapped atomically when the certificate files change.
#[derive(Clone)]
pub struct ReloadingConfig {
    current: Arc<ArcSwap<ServerConfig>>,
}

impl ReloadingConfig {
    pub fn new(initial: ServerConfig) -> Self {
        ReloadingConfig { current: Arc::new(ArcSwap::from_pointee(initial)) }
    }

    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// Watches the directories holding the certificate, key and CA bundle (cert-manager
    /// replaces files through symlink swaps, so the files themselves are not watched) and
    /// reloads after a short quiet period. A bad new pair keeps the last good one.
    /// `reloads` counts them by result (`ok`, `error`).
    pub fn watch(
        &self,
        paths: CertPaths,
        config: TlsConfig,
        reloads: prometheus::IntCounterVec,
    ) -> anyhow::Result<notify::RecommendedWatcher> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // Reading the files (our own reload included) raises access events: ignore them,
            // or every reload would trigger the next.
            if event.is_ok_and(|e| !e.kind.is_access()) {
                let _ = tx.send(());
            }
        })?;
        let files: Vec<PathBuf> = [Some(&paths.cert), Some(&paths.key), config.client_auth.ca.as_ref()]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        let mut dirs: Vec<PathBuf> = files.iter().filter_map(|p| p.parent().map(Path::to_path_buf)).collect();
        dirs.sort();
        dirs.dedup();
        for dir in &dirs {
            let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir.as_path() };
            watcher.watch(dir, RecursiveMode::NonRecursive).with_context(|| format!("watching {}", dir.display()))?;
        }
        let current = self.current.clone();
        tokio::spawn(async move {
            // Other files in the same directories change too: only new contents reload.
            let mut loaded = contents_digest(&files);
            while rx.recv().await.is_some() {
                // Debounce: writers touch cert and key separately.
                tokio::time::sleep(Duration::from_millis(200)).await;
                while rx.try_recv().is_ok() {}
                let digest = contents_digest(&files);
                if digest == loaded {
                    continue;
                }
                loaded = digest;
                match server_config(&paths, &config) {
                    Ok(new) => {
                        current.store(Arc::new(new));
                        reloads.with_label_values(&["ok"]).inc();
                        tracing::info!(cert = %paths.cert.display(), "TLS certificate reloaded");
                    }
                    Err(e) => {
                        reloads.with_label_values(&["error"]).inc();
                        tracing::error!(error = %format!("{e:#}"), "TLS certificate reload failed; keeping the previous certificate");
                    }
                }
            }
        });
        Ok(watcher)
    }
}

/// SHA-256 over the files' contents (an unreadable file counts as empty).
fn contents_digest(files: &[PathBuf]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for file in files {
        let contents = std::fs::read(file).unwrap_or_default();
        hasher.update((contents.len() as u64).to_le_bytes());
        hasher.update(&contents);
    }
    hasher.finalize().into()
}

/// Who the client is, from a verified client certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientIdentity {
    pub subject: String,
    pub sans: Vec<String>,
    /// The `spiffe://` URI SAN, when present.
    pub spiffe_id: Option<String>,
}

impl ClientIdentity {
    /// Reads the identity from the leaf certificate rustls already verified.
    pub fn from_certificate(der: &[u8]) -> Option<ClientIdentity> {
        use x509_parser::prelude::*;
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let mut identity = ClientIdentity { subject: cert.subject().to_string(), ..Default::default() };
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                let text = match name {
                    GeneralName::DNSName(d) => format!("DNS:{d}"),
                    GeneralName::URI(u) => {
                        if u.starts_with("spiffe://") && identity.spiffe_id.is_none() {
                            identity.spiffe_id = Some(u.to_string());
                        }
                        format!("URI:{u}")
                    }
                    GeneralName::RFC822Name(e) => format!("email:{e}"),
                    GeneralName::IPAddress(ip) => match ip.len() {
                        4 => format!("IP:{}", std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*ip).ok()?)),
                        16 => format!("IP:{}", std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*ip).ok()?)),
                        _ => continue,
                    },
                    _ => continue,
                };
                identity.sans.push(text);
            }
        }
        Some(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_certificate_is_generated_once_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let config = TlsConfig::default();
        let paths = cert_paths(&config, dir.path()).unwrap();
        assert!(paths.generated);
        let first = std::fs::read(&paths.cert).unwrap();
        let again = cert_paths(&config, dir.path()).unwrap();
        assert_eq!(std::fs::read(&again.cert).unwrap(), first, "an existing dev certificate is reused");
        let server = server_config(&paths, &config).unwrap();
        assert_eq!(server.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&paths.key).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn mismatched_key_is_refused() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let config = TlsConfig::default();
        let pa = cert_paths(&config, a.path()).unwrap();
        let pb = cert_paths(&config, b.path()).unwrap();
        let mixed = CertPaths { cert: pa.cert, key: pb.key, generated: false };
        assert!(server_config(&mixed, &config).is_err());
    }

    #[test]
    fn identity_reads_subject_sans_and_spiffe_id() {
        let mut params = rcgen::CertificateParams::new(vec!["svc.local".to_string()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::URI("spiffe://cluster.local/ns/a/sa/b".try_into().unwrap()));
        params.distinguished_name.push(rcgen::DnType::CommonName, "billing");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let id = ClientIdentity::from_certificate(cert.der()).unwrap();
        assert_eq!(id.subject, "CN=billing");
        assert_eq!(id.spiffe_id.as_deref(), Some("spiffe://cluster.local/ns/a/sa/b"));
        assert!(id.sans.contains(&"DNS:svc.local".to_string()));
    }
}
