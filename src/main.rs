//! The `forge` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

// A gateway allocates small, short-lived buffers on every message; mimalloc serves that
// pattern measurably faster than the system allocator (see BENCHMARKS.md).
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
    /// List, show, approve and deny calls waiting for a human (talks to the admin listener).
    Approvals(forge::approvals::cli::ApprovalsArgs),
    /// Sign policy bundles and verify their signatures (see docs/provenance.md).
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Sign WASM plugins and verify their signatures.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Run the Kubernetes admission webhook that injects the Forge sidecar (docs/injection.md).
    Webhook(WebhookArgs),
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
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
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
