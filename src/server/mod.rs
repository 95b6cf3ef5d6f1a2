//! Stage 9: `rulec serve`. A tokio + hyper HTTP/1.1 server around the run time: the
//! decision and report API, status, metrics, health and readiness, hot reload
//! (SIGHUP, file changes, the admin API), a bounded drain on SIGTERM, and with
//! `--state-dir` the saved live state and the spend ledger.

pub mod app;
pub mod http;
pub mod metrics;
pub mod persist;
pub mod probe;
pub mod proxy;
pub mod source;
pub mod status;
pub mod tasks;

use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

pub use app::{App, Config};

use crate::bundle::Bundle;
use crate::ledger::Ledger;
use crate::runtime::spend::SpendLog;

/// Runs the server until SIGTERM or SIGINT; `Err` for what stops it from starting.
/// Prints `listening on http://ADDR` on standard output once it accepts connections.
pub fn run(config: Config, bundle: Bundle) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(serve(config, bundle))
}

async fn serve(config: Config, bundle: Bundle) -> Result<(), String> {
    // before listening: a trust store or proxy that cannot be used stops the start
    let upstream = crate::proxy::client::Upstream::from_env()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = App::new(config, bundle, upstream);
    if let Some(dir) = &app.config.state_dir {
        match persist::read(dir) {
            Ok(Some(saved)) => {
                let n = app.gateway().restore(&saved, app.now_ms());
                tracing::info!(dir = %dir.display(), machines = n, saved_for = %saved.bundle, "restored live state");
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("{e}; starting with fresh state"),
        }
    }
    let ledger = match &app.config.state_dir {
        Some(dir) => Some(open_ledger(&app, dir)?),
        None => None,
    };
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot listen for SIGTERM: {e}"))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot listen for SIGINT: {e}"))?;
    tokio::spawn(tasks::supervise(Arc::clone(&app)));
    tokio::spawn(tasks::on_sighup(Arc::clone(&app)));
    if let Some(every) = app.config.watch_interval {
        tokio::spawn(tasks::watch(Arc::clone(&app), every));
    }
    tracing::info!(bundle = %app.gateway().hash(), %addr, "serving");
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = out.flush();
    }

    let graceful = GracefulShutdown::new();
    let mut stop_at: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let timeout = app.config.request_timeout;
                    let app = Arc::clone(&app);
                    let service = service_fn(move |req| http::handle(Arc::clone(&app), req));
                    let conn = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(timeout)
                        .serve_connection(TokioIo::new(stream), service);
                    let watched = graceful.watch(conn);
                    tokio::spawn(async move {
                        let _ = watched.await;
                    });
                }
                Err(e) => {
                    // out of file descriptors and the like: back off instead of spinning
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = term.recv(), if stop_at.is_none() => stop_at = Some(begin_shutdown(&app, "SIGTERM")),
            _ = int.recv(), if stop_at.is_none() => stop_at = Some(begin_shutdown(&app, "SIGINT")),
            _ = until(stop_at) => break,
        }
    }
    tracing::info!("draining: no new connections");
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("drained: every request in flight finished"),
        _ = tokio::time::sleep(app.config.drain_timeout) => tracing::warn!(
            timeout_ms = app.config.drain_timeout.as_millis() as u64,
            "drain timeout: closing the connections still open"
        ),
    }
    if let Some(dir) = &app.config.state_dir {
        match persist::save(dir, &app.gateway()) {
            Ok(()) => tracing::info!(dir = %dir.display(), "saved live state"),
            Err(e) => tracing::error!(dir = %dir.display(), "cannot save live state: {e}"),
        }
    }
    if let Some(ledger) = ledger {
        flush_ledger(ledger).await;
    }
    Ok(())
}

/// Opens the spend ledger in `dir`, puts today's spending and the sessions' back into
/// the budgets (over what `state.json` said: the ledger is the authority for money),
/// and hands it every settled cost from now on.
fn open_ledger(app: &App, dir: &std::path::Path) -> Result<Arc<Ledger>, String> {
    let ledger = Ledger::open(dir).map_err(|e| e.to_string())?;
    let wall_ms = app.wall_ms();
    let restored = ledger
        .restore_into(
            &app.shared.budgets,
            app.shared.budgets.day_of(wall_ms),
            app.config.limits.session_capacity,
        )
        .map_err(|e| e.to_string())?;
    tracing::info!(
        file = %ledger.path().display(),
        day = restored.day,
        spent = restored.spent.unwrap_or(0.0),
        calls = restored.calls,
        sessions = restored.sessions,
        new = restored.spent.is_none(),
        "restored spend from the ledger"
    );
    let log: Arc<dyn SpendLog> = ledger.clone();
    if !app.shared.spend_log.install(log) || app.ledger.set(Arc::clone(&ledger)).is_err() {
        return Err("a spend log is already installed".into());
    }
    Ok(ledger)
}

/// Waits (off the runtime's threads) until every settled cost is committed.
async fn flush_ledger(ledger: Arc<Ledger>) {
    let flushing = Arc::clone(&ledger);
    let flushed = tokio::task::spawn_blocking(move || flushing.flush()).await;
    let stats = ledger.stats();
    match flushed {
        Ok(Ok(())) => tracing::info!(
            committed = stats.committed,
            refused = stats.refused,
            "flushed the ledger"
        ),
        Ok(Err(e)) => tracing::error!("cannot flush the ledger: {e}"),
        Err(e) => tracing::error!("cannot flush the ledger: {e}"),
    }
}

/// SIGTERM: `/readyz` turns 503 at once; connections are still taken for the
/// shutdown delay, then the drain begins.
fn begin_shutdown(app: &App, signal: &str) -> tokio::time::Instant {
    app.draining
        .store(true, std::sync::atomic::Ordering::Release);
    let delay = app.config.shutdown_delay;
    tracing::info!(
        delay_ms = delay.as_millis() as u64,
        "{signal}: /readyz answers 503; draining after the shutdown delay"
    );
    tokio::time::Instant::now() + delay
}

/// Completes at `at`, never when there is none.
async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
