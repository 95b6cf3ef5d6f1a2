//! The server's shared state: the gateway in use (swapped atomically on reload), the
//! clock, readiness, and the record of reloads.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::source::{self, Refusal};
use crate::bundle::Bundle;
use crate::proxy::client::Upstream;
use crate::runtime::gateway::{Gateway, Shared};
use crate::runtime::stats::lock;

/// Settings of one server.
#[derive(Debug, Clone)]
pub struct Config {
    /// the bundle or policy served, re-read on SIGHUP and when it changes
    pub source: PathBuf,
    pub listen: std::net::SocketAddr,
    pub state_dir: Option<PathBuf>,
    /// the admin API's token; `None` turns the admin API off
    pub admin_token: Option<String>,
    /// how long a request may take to arrive (headers and body)
    pub request_timeout: Duration,
    /// the longest body accepted on `/v1/*` (bundles on `/admin/bundle` may be larger)
    pub max_body: usize,
    pub max_bundle: usize,
    /// how long SIGTERM waits for requests in flight
    pub drain_timeout: Duration,
    /// after SIGTERM, how long the server keeps accepting while `/readyz` says 503,
    /// so that load balancers stop sending before connections are refused
    pub shutdown_delay: Duration,
    /// how often PATH is looked at for changes; `None` turns watching off
    pub watch_interval: Option<Duration>,
    pub limits: crate::runtime::gateway::Limits,
    /// client keys of the proxy endpoints (`RULEC_API_KEYS`); empty: no key needed
    /// (the server then listens on loopback only, unless told otherwise)
    pub api_keys: Vec<String>,
    /// the largest request body the proxy endpoints accept
    pub max_proxy_body: usize,
    pub proxy: crate::proxy::call::Settings,
}

/// The last refused reload, for `/v1/status`.
#[derive(Debug, Clone)]
pub struct RefusedReload {
    pub at_ms: u64,
    pub source: &'static str,
    pub error: String,
    /// the bundle of a later reload that succeeded: the refusal no longer stands
    pub superseded_by: Option<String>,
}

pub struct App {
    pub config: Config,
    /// swapped whole on reload; reads take no lock and, in the common case, touch no
    /// shared counter (arc-swap's thread-local debts)
    current: arc_swap::ArcSwap<Gateway>,
    pub shared: Arc<Shared>,
    started: Instant,
    pub draining: AtomicBool,
    pub last_refusal: Mutex<Option<RefusedReload>>,
    pub loaded_at_ms: Mutex<u64>,
    /// one reload at a time, so that live state carries over from the gateway in use
    reloading: tokio::sync::Mutex<()>,
    /// the bundle in use came from `PUT /admin/bundle`, not from PATH
    pub from_admin: AtomicBool,
    /// the one outbound client (health checks, provider calls): one connection pool
    pub upstream: Upstream,
    /// the spend ledger in `--state-dir`, once opened
    pub ledger: std::sync::OnceLock<Arc<crate::ledger::Ledger>>,
}

/// The outcome of a reload that was not refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Reloaded {
    Swapped { from: String, to: String },
    Unchanged(String),
}

impl App {
    pub fn new(config: Config, bundle: Bundle, upstream: Upstream) -> Arc<App> {
        let shared = Shared::new(config.limits);
        let gateway = Gateway::new(bundle, None, Arc::clone(&shared));
        Arc::new(App {
            config,
            current: arc_swap::ArcSwap::from_pointee(gateway),
            shared,
            started: Instant::now(),
            draining: AtomicBool::new(false),
            last_refusal: Mutex::new(None),
            loaded_at_ms: Mutex::new(0),
            reloading: tokio::sync::Mutex::new(()),
            from_admin: AtomicBool::new(false),
            upstream,
            ledger: std::sync::OnceLock::new(),
        })
    }

    /// The gateway requests start on; they keep it until they finish.
    pub fn gateway(&self) -> Arc<Gateway> {
        self.current.load_full()
    }

    /// The gateway in use, for one synchronous piece of work (a decision): cheaper
    /// than [`App::gateway`] on the hot path.
    pub fn current(&self) -> arc_swap::Guard<Arc<Gateway>> {
        self.current.load()
    }

    /// Monotonic milliseconds since the server started: the machines' clock.
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Wall-clock milliseconds, for the day of budgets (UTC, or the policy's `time_zone`).
    pub fn wall_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    pub fn ready(&self) -> bool {
        !self.draining.load(Ordering::Acquire)
    }

    /// Re-reads PATH (`source` says why: `signal`, `file`) and swaps it in.
    pub async fn reload_path(&self, why: &'static str) -> Result<Reloaded, Refusal> {
        // held from before loading, so that a slower load of older content cannot
        // install itself over a newer one
        let _one = self.reloading.lock().await;
        let path = self.config.source.clone();
        let loaded = off_the_request_path(move || source::load(&path)).await;
        self.install(loaded, why)
    }

    /// Swaps in a bundle given as bytes (the admin API).
    pub async fn reload_bytes(&self, bytes: bytes::Bytes) -> Result<Reloaded, Refusal> {
        let _one = self.reloading.lock().await;
        let loaded = off_the_request_path(move || source::from_bytes(&bytes)).await;
        self.install(loaded, "admin")
    }

    /// Swaps in a loaded bundle; the caller holds `reloading`.
    fn install(
        &self,
        loaded: Result<Bundle, Refusal>,
        why: &'static str,
    ) -> Result<Reloaded, Refusal> {
        let stats = &self.shared.stats;
        let bundle = match loaded {
            Ok(b) => b,
            Err(refusal) => {
                stats.reloads.inc(&["refused", why]);
                // one line for log shippers; the diagnostics are in /v1/status
                tracing::error!(
                    source = why,
                    serving = %self.gateway().hash(),
                    error = %refusal.message,
                    diagnostics = refusal.diagnostics.as_ref().map_or(0, |d| d.lines().count()),
                    "reload refused; the bundle in use keeps serving (GET /v1/status shows why)"
                );
                *lock(&self.last_refusal) = Some(RefusedReload {
                    at_ms: self.now_ms(),
                    source: why,
                    error: refusal.to_string(),
                    superseded_by: None,
                });
                return Err(refusal);
            }
        };
        if let Some(refusal) = lock(&self.last_refusal).as_mut() {
            refusal
                .superseded_by
                .get_or_insert_with(|| bundle.hash.clone());
        }
        let old = self.gateway();
        if bundle.hash == old.hash() {
            stats.reloads.inc(&["unchanged", why]);
            tracing::info!(source = why, bundle = %bundle.hash, "reload: bundle unchanged");
            return Ok(Reloaded::Unchanged(bundle.hash));
        }
        let admin = why == "admin";
        if !admin && self.from_admin.load(Ordering::Acquire) {
            tracing::warn!(
                source = why,
                replaced = %old.hash(),
                "the bundle pushed through the admin API is replaced by {}",
                self.config.source.display()
            );
        }
        self.from_admin.store(admin, Ordering::Release);
        let next = Arc::new(Gateway::new(bundle, Some(&old), Arc::clone(&self.shared)));
        let to = next.hash().to_string();
        self.current.store(next);
        *lock(&self.loaded_at_ms) = self.now_ms();
        stats.reloads.inc(&["ok", why]);
        tracing::info!(source = why, from = %old.hash(), to = %to, "reloaded");
        Ok(Reloaded::Swapped {
            from: old.hash().to_string(),
            to,
        })
    }
}

/// Loading and compiling take milliseconds to seconds: never on a worker that
/// answers requests.
async fn off_the_request_path(
    load: impl FnOnce() -> Result<Bundle, Refusal> + Send + 'static,
) -> Result<Bundle, Refusal> {
    tokio::task::spawn_blocking(load).await.unwrap_or_else(|e| {
        Err(Refusal {
            message: format!("loading failed: {e}"),
            io: false,
            diagnostics: None,
        })
    })
}

impl crate::proxy::call::Host for App {
    fn now_ms(&self) -> u64 {
        App::now_ms(self)
    }

    fn wall_ms(&self) -> u64 {
        App::wall_ms(self)
    }

    fn carry_out(
        app: &Arc<App>,
        gateway: &Arc<Gateway>,
        effects: Vec<crate::runtime::events::Effect>,
    ) {
        super::tasks::carry_out(app, gateway, effects);
    }
}
