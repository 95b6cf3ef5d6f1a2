//! `rulec serve`: loads PATH (a bundle or a policy), refuses it with the full
//! explanation when it does not verify or check, then runs the gateway server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use rulec::runtime::gateway::Limits;
use rulec::server::{self, source, Config};

use super::fail;

/// The environment variable holding the admin API's token.
pub const ADMIN_TOKEN_ENV: &str = "RULEC_ADMIN_TOKEN";

/// The environment variable holding the proxy's client keys, comma-separated.
pub const API_KEYS_ENV: &str = "RULEC_API_KEYS";

#[derive(clap::Args)]
pub struct Args {
    /// A bundle (from `rulec compile`) or a policy file or folder (compiled on start).
    path: PathBuf,
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Folder where live state is saved at shutdown and restored at start.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// How long a request's headers and body may take to arrive.
    #[arg(long, default_value = "10s", value_parser = duration)]
    request_timeout: Duration,
    /// How long SIGTERM waits for requests in flight before closing connections.
    #[arg(long, default_value = "10s", value_parser = duration)]
    drain_timeout: Duration,
    /// After SIGTERM, how long connections are still accepted while /readyz answers 503.
    #[arg(long, default_value = "0s", value_parser = duration)]
    shutdown_delay: Duration,
    /// How often PATH is checked for changes; `0s` turns watching off.
    #[arg(long, default_value = "1s", value_parser = duration)]
    watch_interval: Duration,
    /// How long a decision holds its pool slot when no report ends it.
    #[arg(long, default_value = "2m", value_parser = duration)]
    lease_timeout: Duration,
    /// The largest request body accepted on /v1/route and /v1/report, in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    max_body: usize,
    /// The largest request body accepted on the proxy endpoints, in bytes.
    #[arg(long, default_value_t = 32 * 1024 * 1024)]
    max_proxy_body: usize,
    /// Attempts per proxied call (the first and its failovers).
    #[arg(long, default_value_t = rulec::runtime::attempts::DEFAULT_MAX_ATTEMPTS)]
    max_attempts: u32,
    /// A proxied call's timeout when neither its provider nor its fallback sets one.
    #[arg(long, default_value = "10m", value_parser = duration)]
    upstream_timeout: Duration,
    /// Serve the proxy endpoints without client keys on a non-loopback address.
    #[arg(long)]
    insecure_no_auth: bool,
    /// Log format on standard error.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// `30s`, `500ms`, `2m`: the policy's own duration syntax.
fn duration(text: &str) -> Result<Duration, String> {
    rulec::syntax::parse::parse_duration(text)
        .map(|d| Duration::from_millis(d.ms))
        .map_err(|_| format!("`{text}` is not a duration (write e.g. `500ms`, `10s`, `2m`)"))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RULEC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

pub fn run(args: Args) -> ExitCode {
    init_logging(args.log_format);
    let bundle = match source::load_counting_warnings(&args.path) {
        Ok((bundle, warnings)) => {
            if warnings > 0 {
                tracing::warn!(
                    "the policy has {warnings} warning{}; `rulec check {}` shows them",
                    if warnings == 1 { "" } else { "s" },
                    args.path.display()
                );
            }
            bundle
        }
        Err(refusal) => {
            if let Some(d) = &refusal.diagnostics {
                eprint!("{d}");
            }
            eprintln!("error: {}; not serving", refusal.message);
            return ExitCode::from(if refusal.io { 2 } else { 1 });
        }
    };
    let admin_token = std::env::var(ADMIN_TOKEN_ENV)
        .ok()
        .filter(|t| !t.is_empty());
    if admin_token.is_none() {
        tracing::info!("admin API off ({ADMIN_TOKEN_ENV} is not set)");
    }
    let api_keys: Vec<String> = std::env::var(API_KEYS_ENV)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect();
    if api_keys.is_empty() && !args.listen.ip().is_loopback() && !args.insecure_no_auth {
        return fail(format!(
            "{API_KEYS_ENV} is not set, and {} is not a loopback address: anyone who reaches it could spend the providers' keys; set {API_KEYS_ENV}, listen on 127.0.0.1, or pass --insecure-no-auth",
            args.listen
        ));
    }
    if api_keys.is_empty() {
        tracing::info!("proxy endpoints take no client key ({API_KEYS_ENV} is not set)");
    }
    let config = Config {
        api_keys,
        max_proxy_body: args.max_proxy_body,
        proxy: rulec::proxy::call::Settings {
            max_attempts: args.max_attempts.max(1),
            default_timeout: args.upstream_timeout,
            ..Default::default()
        },
        source: args.path,
        listen: args.listen,
        state_dir: args.state_dir,
        admin_token,
        request_timeout: args.request_timeout,
        max_body: args.max_body,
        max_bundle: 256 * 1024 * 1024,
        drain_timeout: args.drain_timeout,
        shutdown_delay: args.shutdown_delay,
        watch_interval: (!args.watch_interval.is_zero()).then_some(args.watch_interval),
        limits: Limits {
            lease_ttl_ms: args.lease_timeout.as_millis() as u64,
            ..Limits::default()
        },
    };
    match server::run(config, bundle) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
