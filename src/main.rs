//! The `forge` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

// A gateway allocates small, short-lived buffers on every message; mimalloc serves that
// pattern measurably faster than the system allocator (see BENCHMARKS.md). It is built
// without transparent huge pages (`no_thp`): a sidecar's footprint counts in every pod, and
// 2 MiB pages under a small heap cost ~11 MiB of RSS for no measurable speed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use forge::config::{Config, LogFormat};

/// Forge: a TLS-terminating policy gateway that sits in front of an MCP server.
///
/// Start it in front of a server with `forge run --upstream http://127.0.0.1:3000/mcp`
/// (or `--upstream 'stdio:npx -y @modelcontextprotocol/server-everything'`). Without a
/// config file it generates a development TLS certificate and serves https on :8443.
#[derive(Parser)]
#[command(name = "forge", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Run(RunArgs),
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Test, evaluate and check Rego policy bundles.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Make Ed25519 signing keys (the evidence key, bundle and plugin signing keys).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Export, verify and replay evidence; verify a signed response.
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// List, show, approve and deny calls waiting for a human (talks to the admin listener).
    Approvals(forge::approvals::cli::ApprovalsArgs),
    /// Sign policy bundles and verify their signatures (see docs/provenance.md).
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Run, inspect, sign and verify WebAssembly detector plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Run the Kubernetes admission webhook that injects the Forge sidecar (docs/injection.md).
    Webhook(WebhookArgs),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Generate a key (PKCS#8 PEM); prints its public key (SPKI PEM) and key id.
    Generate {
        /// Write the private key to this file (mode 0600) instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum EvidenceCommand {
    /// Write an evidence pack of the records in a time range (see docs/evidence.md).
    Export {
        /// Records from this time: RFC 3339 UTC (2026-12-01T21:00:00Z) or a duration ago (2h).
        #[arg(long)]
        since: String,
        /// Records up to this time (same forms) [default: now].
        #[arg(long)]
        until: Option<String>,
        /// The pack directory to create.
        #[arg(long, short)]
        output: PathBuf,
        /// The gateway's config file (for the log directory and the key).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The gateway's state directory [default: the config's, or ./forge-state].
        #[arg(long, env = "FORGE_STATE_DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Verify a pack offline: signatures, hash chain, Merkle proofs, completeness. Names
    /// the first bad record.
    Verify {
        /// The pack directory.
        pack: PathBuf,
        /// The public key (SPKI PEM) the pack must be signed with [default: the pack's own].
        #[arg(long)]
        key: Option<PathBuf>,
        /// The pack exported before this one: this one's log must extend its log.
        #[arg(long)]
        previous: Option<PathBuf>,
    },
    /// Re-evaluate a pack's recorded policy inputs against another bundle and report every
    /// decision that would change; exits 1 if any would.
    Replay {
        /// The pack directory.
        pack: PathBuf,
        /// The bundle directory to evaluate with.
        #[arg(long)]
        bundle: PathBuf,
        /// The public key the pack must be signed with [default: the pack's own].
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Check a saved response's RFC 9421 signature and Content-Digest (`curl -i` output).
    VerifyResponse {
        /// The gateway's public key (SPKI PEM).
        #[arg(long)]
        key: PathBuf,
        /// The saved response: status line, headers, blank line, body.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum BundleCommand {
    /// Sign every file in a bundle directory: writes DIR/.signature.dsse.json, a DSSE envelope
    /// around an in-toto Statement listing each file's SHA-256.
    Sign {
        /// The bundle directory.
        dir: PathBuf,
        /// The Ed25519 private key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes).
        #[arg(long)]
        key: PathBuf,
        /// The bundle's name in the statement [default: the directory's name].
        #[arg(long)]
        name: Option<String>,
        /// The bundle's version in the statement [default: the `.manifest` revision, if any].
        #[arg(long, value_name = "VERSION")]
        bundle_version: Option<String>,
    },
    /// Check a bundle's signature: exits 0 if a trusted key signed exactly these files.
    Verify {
        /// The bundle directory.
        dir: PathBuf,
        /// Public keys (SPKI PEM) trusted to sign bundles.
        #[arg(long, required = true, num_args = 1..)]
        trusted: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Run a plugin once on a JSON payload; print its findings and timing. Exits non-zero
    /// if the plugin fails or returns findings that do not fit the payload.
    Test {
        /// The plugin component (`.wasm`).
        plugin: PathBuf,
        /// A JSON file: the payload the plugin sees (a request's params, a response's result).
        #[arg(long)]
        input: PathBuf,
        /// The hook the payload comes from.
        #[arg(long, value_enum, default_value = "request")]
        hook: forge::plugins::Hook,
        /// The MCP method of the message.
        #[arg(long, default_value = "tools/call")]
        method: String,
        /// The tool being called or answered.
        #[arg(long)]
        tool: Option<String>,
        /// The plugin's config: inline JSON or a file of JSON [default: {}].
        #[arg(long)]
        config: Option<String>,
        /// The call's time budget (like 20ms, 1s).
        #[arg(long, default_value = "1s", value_parser = forge::config::parse_duration)]
        time: std::time::Duration,
        /// The call's memory cap (like 16MiB).
        #[arg(long, default_value = "64MiB", value_parser = forge::config::parse_byte_size)]
        memory: usize,
    },
    /// Print a plugin's manifest, its component's exports and imports, and its SHA-256.
    /// Exits non-zero if the digest differs from the manifest's.
    Inspect {
        /// A plugin directory (with manifest.yaml) or a `.wasm` file.
        target: PathBuf,
    },
    /// Sign a plugin: writes PLUGIN.wasm.dsse.json covering the module and its manifest.
    Sign {
        /// The plugin's WASM module.
        wasm: PathBuf,
        /// The Ed25519 private key (PKCS#8 PEM).
        #[arg(long)]
        key: PathBuf,
        /// The plugin's manifest [default: manifest.yaml beside the module].
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
    /// Check a plugin's signature: exits 0 if a trusted key signed this module and manifest.
    Verify {
        /// The plugin's WASM module.
        wasm: PathBuf,
        /// Public keys (SPKI PEM) trusted to sign plugins.
        #[arg(long, required = true, num_args = 1..)]
        trusted: Vec<PathBuf>,
        /// The plugin's manifest [default: manifest.yaml beside the module].
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
}

#[derive(Args)]
struct WebhookArgs {
    /// The webhook's YAML config: the sidecar image, TLS, policy, … (docs/injection.md).
    #[arg(long, short)]
    config: PathBuf,
    /// PEM certificate the API server sees; reloaded when it changes.
    #[arg(long)]
    tls_cert: PathBuf,
    /// PEM private key for --tls-cert.
    #[arg(long)]
    tls_key: PathBuf,
    /// Address for AdmissionReviews (POST /mutate).
    #[arg(long, default_value = "0.0.0.0:8443")]
    listen: std::net::SocketAddr,
    /// Address for /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:9090")]
    admin_listen: std::net::SocketAddr,
    /// Log format.
    #[arg(long, env = "FORGE_LOG_FORMAT", value_enum, default_value = "json")]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Run the bundle's `test_*` rules, like `opa test`; exits non-zero if any fails.
    Test {
        /// The bundle directory.
        #[arg(default_value = "policies")]
        dir: PathBuf,
        /// Also show which lines of each policy file the tests evaluated.
        #[arg(long)]
        coverage: bool,
    },
    /// Print the decision document for one input document, and which rules fired.
    Eval {
        /// A JSON input document (see policies/README.md for its schema).
        #[arg(long)]
        input: PathBuf,
        /// The bundle directory.
        #[arg(long, default_value = "policies")]
        bundle: PathBuf,
    },
    /// Compile and validate the bundle, naming the file and line of every error.
    Check {
        /// The bundle directory.
        #[arg(default_value = "policies")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a YAML config file; errors name the field and line.
    Check {
        /// The config file to check.
        file: PathBuf,
    },
}

#[derive(Args)]
struct RunArgs {
    /// YAML config file (see docs/config.md). Flags and FORGE_* variables override it.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The MCP server to front: http://127.0.0.1:PORT/PATH, or stdio:COMMAND [ARGS…].
    #[arg(long, env = "FORGE_UPSTREAM")]
    upstream: Option<String>,
    /// Address for MCP clients [default: 0.0.0.0:8443].
    #[arg(long, env = "FORGE_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Address for /healthz, /readyz and /metrics [default: 127.0.0.1:9090].
    #[arg(long, env = "FORGE_ADMIN_LISTEN")]
    admin_listen: Option<std::net::SocketAddr>,
    /// Directory for the gateway's files (the development certificate, …) [default: ./forge-state].
    #[arg(long, env = "FORGE_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// PEM certificate chain (with --tls-key). Omit both to use a generated development certificate.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP without TLS. For local development only; logged loudly.
    #[arg(long)]
    insecure_plaintext: bool,
    /// Log format.
    #[arg(long, env = "FORGE_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut stdout = std::io::stdout().lock();
    let result = match cli.command {
        Command::Policy(command) => {
            let status = match command {
                PolicyCommand::Test { dir, coverage } => forge::policy::cli::test(&dir, coverage, &mut stdout),
                PolicyCommand::Eval { input, bundle } => forge::policy::cli::eval(&input, &bundle, &mut stdout),
                PolicyCommand::Check { dir } => forge::policy::cli::check(&dir, &mut stdout),
            };
            return match status {
                Ok(status) => status.into(),
                Err(e) => {
                    eprintln!("forge: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Keys(KeysCommand::Generate { output }) => {
            forge::evidence::cli::keys_generate(output.as_deref(), &mut stdout)
        }
        Command::Evidence(command) => {
            use forge::evidence::cli;
            let result = match command {
                EvidenceCommand::Export { since, until, output, config, state_dir } => {
                    cli::export(config.as_deref(), state_dir.as_deref(), &since, until.as_deref(), &output, &mut stdout)
                        .map(|()| true)
                }
                EvidenceCommand::Verify { pack, key, previous } => {
                    cli::verify(&pack, key.as_deref(), previous.as_deref(), &mut stdout).map(|()| true)
                }
                EvidenceCommand::Replay { pack, bundle, key } => {
                    cli::replay(&pack, &bundle, key.as_deref(), &mut stdout)
                }
                EvidenceCommand::VerifyResponse { key, file } => {
                    cli::verify_response(&key, &file, &mut stdout).map(|()| true)
                }
            };
            match result {
                Ok(true) => Ok(()),
                Ok(false) => return ExitCode::FAILURE,
                Err(e) => Err(e),
            }
        }
        Command::Approvals(args) => forge::approvals::cli::run(args, &mut stdout),
        Command::Bundle(command) => {
            let status = match command {
                BundleCommand::Sign { dir, key, name, bundle_version } => {
                    forge::provenance::cli::sign_bundle(&dir, &key, name, bundle_version, &mut stdout).map(|()| true)
                }
                BundleCommand::Verify { dir, trusted } => {
                    forge::provenance::cli::verify_bundle(&dir, &trusted, &mut stdout)
                }
            };
            return exit_status(status);
        }
        Command::Plugin(command) => {
            let status = match command {
                PluginCommand::Test { plugin, input, hook, method, tool, config, time, memory } => {
                    let limits = forge::plugins::PluginLimits { time, memory, max_concurrent: 1, ..Default::default() };
                    let run = forge::plugins::cli::TestRun {
                        wasm: &plugin,
                        input: &input,
                        hook,
                        method: &method,
                        tool: tool.as_deref(),
                        config: config.as_deref(),
                        limits,
                    };
                    forge::plugins::cli::test(&run, &mut stdout)
                }
                PluginCommand::Inspect { target } => forge::plugins::cli::inspect(&target, &mut stdout),
                PluginCommand::Sign { wasm, key, manifest } => {
                    forge::provenance::cli::sign_plugin(&wasm, manifest.as_deref(), &key, &mut stdout).map(|()| true)
                }
                PluginCommand::Verify { wasm, trusted, manifest } => {
                    forge::provenance::cli::verify_plugin(&wasm, manifest.as_deref(), &trusted, &mut stdout)
                }
            };
            return exit_status(status);
        }
        Command::Run(args) => {
            drop(stdout);
            run(args)
        }
        Command::Webhook(args) => {
            drop(stdout);
            webhook(args)
        }
        Command::Config(ConfigCommand::Check { file }) => Config::from_file(&file).map(|config| {
            println!(
                "{}: ok (upstream: {})",
                file.display(),
                if config.upstream.url.is_empty() { "not set" } else { &config.upstream.url }
            );
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("forge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok(false)`: the command ran and its answer is no (the reason is on stdout).
fn exit_status(status: anyhow::Result<bool>) -> ExitCode {
    match status {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("forge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    // clap already read the FORGE_* variables it knows into `args`; the rest come from here.
    config.apply_env(|name| std::env::var(name).ok())?;
    if let Some(v) = args.upstream {
        config.upstream.url = v;
    }
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = args.admin_listen {
        config.admin_listen = v;
    }
    if let Some(v) = args.state_dir {
        config.state_dir = v;
    }
    if args.tls_cert.is_some() {
        config.tls.cert = args.tls_cert;
        config.tls.key = args.tls_key;
    }
    config.tls.insecure_plaintext |= args.insecure_plaintext;
    if let Some(v) = args.log_format {
        config.log.format = v;
    }
    config.validate()?;
    config.upstream.parse()?;
    // The MCP port is served by its own worker threads (server/workers.rs); this runtime
    // runs start-up, the admin listener and background work (watchers, state followers,
    // stdio children), for which one thread is plenty.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    // Declared after the runtime so they are dropped first: flushing traces needs it.
    let _telemetry = forge::telemetry::init_logging_and_tracing(&config.log, &config.tracing, runtime.handle())?;
    runtime.block_on(forge::gateway::run(config))
}

fn webhook(args: WebhookArgs) -> anyhow::Result<()> {
    let config = forge::webhook::WebhookConfig::from_file(&args.config)?;
    let log = forge::config::LogConfig { format: args.log_format, ..Default::default() };
    let _log_guard = forge::telemetry::init_logging(&log);
    let options = forge::webhook::server::Options {
        listen: args.listen,
        admin_listen: args.admin_listen,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(forge::webhook::server::run(config, options))
}
