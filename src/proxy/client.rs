//! The proxy's outbound HTTP client: one pooled keep-alive HTTP/1.1 client for every
//! call to a provider (and every active health check), TLS by rustls with the ring
//! provider and the system's trust store (or `SSL_CERT_FILE` / `SSL_CERT_DIR`), and
//! corporate proxies from `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`: an `https://`
//! destination goes through a `CONNECT` tunnel, a plain `http://` one (a local model)
//! is forwarded in absolute form. Its errors tell apart a call that never reached the
//! provider (safe to fail over) from one that broke after it was sent.
//!
//! Requests carry API keys in their headers: nothing here logs a header, and no error
//! message is built from one.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::PROXY_AUTHORIZATION;
use hyper::http::uri::Scheme;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper::{Request, Response, Uri};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tower_service::Service;

/// How long a connection may take to open: DNS, TCP, the proxy's tunnel and the TLS
/// handshake together.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an idle kept-alive connection stays in the pool. Providers close theirs
/// after a minute or two; reusing one they have just closed costs a failed write.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

type BoxError = Box<dyn StdError + Send + Sync>;

/// The outbound client. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client<Bounded, Full<Bytes>>,
    proxy: Arc<Matcher>,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // the matcher's Debug leaves out the proxy's credentials
        f.debug_struct("Upstream")
            .field("proxy", &self.inner.proxy)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// The client of `rulec serve`: roots from the system's trust store (which honours
    /// `SSL_CERT_FILE` and `SSL_CERT_DIR`), proxies from the environment. `Err` when a
    /// trust store or proxy the environment names explicitly cannot be used.
    pub fn from_env() -> Result<Upstream, String> {
        let roots = native_roots()?;
        let proxy = env_proxy()?;
        Upstream::build(roots, proxy)
    }

    /// A client trusting only the certificates in `roots_pem` (PEM, one or more),
    /// going through the proxies `proxy` names.
    pub fn new(roots_pem: &[u8], proxy: Matcher) -> Result<Upstream, String> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(roots_pem) {
            let cert = cert.map_err(|e| format!("cannot read the root certificates: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("cannot use a root certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err("the root certificates hold no certificate".to_string());
        }
        Upstream::build(roots, proxy)
    }

    fn build(roots: RootCertStore, proxy: Matcher) -> Result<Upstream, String> {
        #[allow(
            deprecated,
            reason = "the team's TLS is ring (no aws-lc); its provider lacks post-quantum key exchange"
        )]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up tls: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // the client speaks HTTP/1.1 only; say so, so that no server picks h2
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];

        let mut tcp = HttpConnector::new();
        // https destinations reach this connector too: the TLS layer wraps it
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));

        let proxy = Arc::new(proxy);
        let route = Route {
            tcp,
            proxy: Arc::clone(&proxy),
        };
        // built from parts rather than the builder, which refuses a preset ALPN
        let https = HttpsConnector::from((route, Arc::new(tls)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .build(Bounded(https));
        Ok(Upstream {
            inner: Arc::new(Inner { client, proxy }),
        })
    }

    /// Sends one request and returns the response as soon as its head has arrived;
    /// reading the body to its end gives the connection back to the pool.
    pub async fn send(
        &self,
        mut req: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, SendError> {
        let to = destination(req.uri())?;
        if req.uri().scheme() == Some(&Scheme::HTTP) {
            // a forwarding proxy reads its credentials from each request; a tunnel's
            // are on the CONNECT, never seen by the provider
            if let Some(auth) = self
                .inner
                .proxy
                .intercept(req.uri())
                .and_then(|via| via.basic_auth().cloned())
            {
                req.headers_mut().insert(PROXY_AUTHORIZATION, auth);
            }
        }
        match self.inner.client.request(req).await {
            Ok(resp) => Ok(resp),
            Err(e) => {
                let err = SendError::from_client(to, &e);
                tracing::debug!(error = %err, "outbound call failed");
                Err(err)
            }
        }
    }
}

/// `scheme://host:port` of a request: what error messages name (never the path or
/// query, which could carry something private).
fn destination(uri: &Uri) -> Result<String, SendError> {
    let scheme = match uri.scheme() {
        Some(s) if *s == Scheme::HTTP || *s == Scheme::HTTPS => s.as_str(),
        Some(s) => {
            return Err(SendError::Request {
                detail: format!("scheme `{s}` is not http or https"),
            })
        }
        None => {
            return Err(SendError::Request {
                detail: "the url has no scheme".to_string(),
            })
        }
    };
    match uri.authority() {
        Some(a) => Ok(format!(
            "{scheme}://{}",
            a.as_str().rsplit('@').next().unwrap_or("")
        )),
        None => Err(SendError::Request {
            detail: "the url has no host".to_string(),
        }),
    }
}

// ---- the trust store and the proxy settings ----

/// The roots `rustls_native_certs` finds. Failing to read a file the user named
/// (`SSL_CERT_FILE`, `SSL_CERT_DIR`) stops the server; a system store with problems
/// is only logged, since the plain-http providers still work without it.
fn native_roots() -> Result<RootCertStore, String> {
    let named: Vec<&str> = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .into_iter()
        .filter(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
        .collect();
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    for e in &found.errors {
        tracing::warn!(error = %e, "trust store: a source could not be read");
    }
    let from = if named.is_empty() {
        "the system".to_string()
    } else {
        named.join(", ")
    };
    tracing::info!(
        roots = added,
        ignored,
        errors = found.errors.len(),
        %from,
        "outbound tls: trust store loaded"
    );
    if !named.is_empty() {
        let which = named
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(" and ");
        if let Some(e) = found.errors.first() {
            return Err(format!("cannot read the trust store named by {which}: {e}"));
        }
        if added == 0 {
            return Err(format!(
                "the trust store named by {which} holds no usable certificate"
            ));
        }
    } else if added == 0 {
        tracing::warn!(
            "no trusted root certificates: calls to https providers will fail their tls handshake (set `SSL_CERT_FILE`)"
        );
    }
    Ok(roots)
}

/// The proxies of the environment, as curl reads them. A variable that is set but
/// names no proxy rulec can use is refused rather than silently ignored: a user
/// behind a corporate proxy would otherwise see only connection errors.
fn env_proxy() -> Result<Matcher, String> {
    for (vars, sample) in [
        (["HTTPS_PROXY", "https_proxy"], "https://provider.invalid/"),
        (["HTTP_PROXY", "http_proxy"], "http://provider.invalid/"),
        (["ALL_PROXY", "all_proxy"], "https://provider.invalid/"),
    ] {
        let Some((var, value)) = vars
            .iter()
            .find_map(|v| std::env::var(v).ok().map(|x| (*v, x)))
        else {
            continue;
        };
        if value.trim().is_empty() {
            continue;
        }
        let sample = Uri::from_static(sample);
        let via = Matcher::builder().all(value).build().intercept(&sample);
        match via {
            None => return Err(format!("`{var}` is not a proxy url (`http://host:port`)")),
            Some(via) if via.uri().scheme() != Some(&Scheme::HTTP) => {
                return Err(format!(
                    "`{var}` names a `{}` proxy; rulec supports http proxies (`http://host:port`)",
                    via.uri().scheme_str().unwrap_or("")
                ))
            }
            Some(via) => tracing::info!(
                variable = var,
                proxy = %via.uri(),
                credentials = via.basic_auth().is_some(),
                "outbound proxy"
            ),
        }
    }
    Ok(Matcher::from_env())
}

// ---- connecting ----

/// The transport under TLS: direct, through a proxy's tunnel, or to a forwarding
/// proxy (which the client must then send absolute-form requests to).
#[derive(Clone)]
struct Route {
    tcp: HttpConnector,
    proxy: Arc<Matcher>,
}

type Connecting<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

impl Service<Uri> for Route {
    type Response = Stream;
    type Error = BoxError;
    type Future = Connecting<Stream>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let Some(via) = self.proxy.intercept(&dst) else {
            let connecting = self.tcp.call(dst);
            return Box::pin(async move { Ok(Stream::new(connecting.await?, false)) });
        };
        if via.uri().scheme() != Some(&Scheme::HTTP) {
            let scheme = via.uri().scheme_str().unwrap_or("").to_string();
            return Box::pin(async move { Err(ProxyUnsupported(scheme).into()) });
        }
        if dst.scheme() == Some(&Scheme::HTTPS) {
            let mut tunnel = Tunnel::new(via.uri().clone(), self.tcp.clone());
            if let Some(auth) = via.basic_auth() {
                tunnel = tunnel.with_auth(auth.clone());
            }
            let proxy = proxy_name(via.uri());
            let tunneling = tunnel.call(dst);
            Box::pin(async move {
                match tunneling.await {
                    Ok(io) => Ok(Stream::new(io, false)),
                    Err(cause) => Err(ProxyFailed {
                        proxy,
                        cause: cause.into(),
                    }
                    .into()),
                }
            })
        } else {
            let proxy = proxy_name(via.uri());
            let connecting = self.tcp.call(via.uri().clone());
            Box::pin(async move {
                match connecting.await {
                    Ok(io) => Ok(Stream::new(io, true)),
                    Err(cause) => Err(ProxyFailed {
                        proxy,
                        cause: cause.into(),
                    }
                    .into()),
                }
            })
        }
    }
}

/// The whole of opening a connection under [`CONNECT_TIMEOUT`]: the TCP connector's
/// own timeout does not cover a proxy or a TLS peer that accepts and then stalls.
#[derive(Clone)]
struct Bounded(HttpsConnector<Route>);

impl Service<Uri> for Bounded {
    type Response = MaybeHttpsStream<Stream>;
    type Error = BoxError;
    type Future = Connecting<MaybeHttpsStream<Stream>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connecting = self.0.call(dst);
        Box::pin(async move {
            match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
                Ok(done) => done,
                Err(_) => Err(ConnectTimedOut.into()),
            }
        })
    }
}

/// A TCP connection, marked when it leads to a forwarding proxy.
struct Stream {
    io: TokioIo<TcpStream>,
    forwarded: bool,
}

impl Stream {
    fn new(io: TokioIo<TcpStream>, forwarded: bool) -> Stream {
        Stream { io, forwarded }
    }
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.forwarded)
    }
}

impl Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

#[derive(Debug)]
struct ConnectTimedOut;

impl fmt::Display for ConnectTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no connection within {} s", CONNECT_TIMEOUT.as_secs())
    }
}

impl StdError for ConnectTimedOut {}

/// `host:port` of a proxy (its URI never holds credentials: the matcher keeps them
/// apart).
fn proxy_name(uri: &Uri) -> String {
    uri.authority().map_or_else(String::new, |a| a.to_string())
}

/// Reaching the proxy, or its tunnel, failed.
#[derive(Debug)]
struct ProxyFailed {
    proxy: String,
    cause: BoxError,
}

impl fmt::Display for ProxyFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "through the proxy `{}`", self.proxy)
    }
}

impl StdError for ProxyFailed {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.cause)
    }
}

#[derive(Debug)]
struct ProxyUnsupported(String);

impl fmt::Display for ProxyUnsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` proxies are not supported", self.0)
    }
}

impl StdError for ProxyUnsupported {}

// ---- errors ----

/// Why a connection could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    /// nothing listens at the address
    Refused,
    /// the host name does not resolve
    Dns,
    /// no connection within [`CONNECT_TIMEOUT`]
    Timeout,
    /// the TLS handshake failed (an untrusted or mismatched certificate, …)
    Tls,
    /// the proxy could not be reached, or refused the tunnel
    Proxy,
    /// any other reason the connection could not be opened
    Other,
}

impl ConnectFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectFailure::Refused => "connection refused",
            ConnectFailure::Dns => "name not resolved",
            ConnectFailure::Timeout => "timed out",
            ConnectFailure::Tls => "tls handshake failed",
            ConnectFailure::Proxy => "proxy failed",
            ConnectFailure::Other => "connection failed",
        }
    }
}

/// A call that did not end in a response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// No connection to the provider: nothing was sent, so the call may go to another
    /// target, and the provider is to blame.
    Connect {
        /// `scheme://host:port`
        to: String,
        failure: ConnectFailure,
        detail: String,
    },
    /// The connection broke after the request was (at least partly) written: the
    /// provider may have acted on it.
    AfterSend { to: String, detail: String },
    /// The request could not be sent as built (no scheme or host): nothing was sent,
    /// and no provider is at fault.
    Request { detail: String },
}

impl SendError {
    /// Whether nothing was sent because no connection could be opened.
    pub fn is_connect(&self) -> bool {
        matches!(self, SendError::Connect { .. })
    }

    /// Why the connection failed, for [`SendError::Connect`].
    pub fn failure(&self) -> Option<ConnectFailure> {
        match self {
            SendError::Connect { failure, .. } => Some(*failure),
            _ => None,
        }
    }

    fn from_client(to: String, e: &hyper_util::client::legacy::Error) -> SendError {
        let chain = causes(e);
        let detail = describe(&chain);
        if e.is_connect() {
            SendError::Connect {
                to,
                failure: classify(&chain),
                detail,
            }
        } else {
            SendError::AfterSend { to, detail }
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Connect {
                to,
                failure,
                detail,
            } => write!(
                f,
                "cannot connect to `{to}` ({}): {detail}",
                failure.as_str()
            ),
            SendError::AfterSend { to, detail } => {
                write!(f, "the call to `{to}` failed after it was sent: {detail}")
            }
            SendError::Request { detail } => write!(f, "cannot send the request: {detail}"),
        }
    }
}

impl StdError for SendError {}

/// Every error under `e`, outermost first. An `io::Error` wrapping another error
/// reports that error's *source* as its own, skipping the wrapped one: it is visited
/// through `get_ref` instead, or TLS errors would be lost.
fn causes<'a>(e: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(e);
    while let Some(e) = next {
        if out.len() == 32 {
            break;
        }
        out.push(e);
        next = match e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    out
}

fn classify(chain: &[&(dyn StdError + 'static)]) -> ConnectFailure {
    let any = |f: &dyn Fn(&(dyn StdError + 'static)) -> bool| chain.iter().any(|e| f(*e));
    if any(&|e| e.is::<ProxyFailed>() || e.is::<ProxyUnsupported>()) {
        ConnectFailure::Proxy
    } else if any(&|e| e.is::<ConnectTimedOut>()) {
        ConnectFailure::Timeout
    } else if any(&|e| e.is::<rustls::Error>()) {
        ConnectFailure::Tls
    } else if any(&|e| e.to_string() == "dns error") {
        // hyper-util's connect error is private: its message is all there is
        ConnectFailure::Dns
    } else if any(&|e| io_kind(e) == Some(io::ErrorKind::ConnectionRefused)) {
        ConnectFailure::Refused
    } else if any(&|e| io_kind(e) == Some(io::ErrorKind::TimedOut)) {
        ConnectFailure::Timeout
    } else {
        ConnectFailure::Other
    }
}

fn io_kind(e: &(dyn StdError + 'static)) -> Option<io::ErrorKind> {
    e.downcast_ref::<io::Error>().map(io::Error::kind)
}

/// The causes' messages, lowercase, without the client's own wrapper and without a
/// message repeated by the error that wraps it.
fn describe(chain: &[&(dyn StdError + 'static)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in chain.iter().skip(1) {
        let text = lowercase_first(&e.to_string());
        if text.is_empty() || parts.last().is_some_and(|p| *p == text) {
            continue;
        }
        parts.push(text);
    }
    // some errors print their cause's message too: keep that fuller, outer copy
    parts.dedup_by(|inner, outer| outer.ends_with(inner.as_str()));
    if parts.is_empty() {
        chain
            .first()
            .map_or_else(String::new, |e| lowercase_first(&e.to_string()))
    } else {
        parts.join(": ")
    }
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
