//! The proxy's outbound client (`rulec::proxy::client::Upstream`) against real servers
//! on loopback: an https server with a certificate made here by rcgen (trusted
//! through the explicit-roots constructor, or not), a small `CONNECT` proxy that
//! records what it is asked, a refused port, a server that cuts the connection after
//! the request; and `rulec serve` checking an https provider actively, trusting it
//! through `SSL_CERT_FILE`.
//!
//! Everything listens on 127.0.0.1 with a port picked by the OS; the proxy refuses to
//! tunnel anywhere else.

use std::convert::Infallible;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use rulec::proxy::client::{ConnectFailure, SendError, Upstream};

use crate::common::scratch;
use crate::http::{eventually, get, Served};

/// A key no message may ever show.
const SECRET: &str = "sk-test-never-shown";

/// How long anything asynchronous in `rulec serve` may take to show.
const PATIENCE: Duration = Duration::from_secs(20);

// ---- certificates ----

/// A certificate authority made for one test, and a server certificate it signed for
/// `localhost` and 127.0.0.1.
struct Pki {
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("rulec test CA {name}"));
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("a CA certificate");
        let key = KeyPair::generate().expect("a server key");
        let params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("server params");
        let cert = params.signed_by(&key, &ca).expect("a server certificate");
        Pki {
            ca_pem: ca.pem(),
            chain: vec![cert.der().clone(), ca.der().clone()],
            key: key.serialize_der(),
        }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(ring_provider()))
            .with_safe_default_protocol_versions()
            .expect("tls versions")
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .expect("a server certificate and its key");
        Arc::new(config)
    }
}

#[allow(
    deprecated,
    reason = "the team's TLS is ring; its provider lacks post-quantum key exchange"
)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

// ---- an https server ----

/// An https server on 127.0.0.1 answering every request `200 hello <path>`; counts the
/// TCP connections it accepted and records the requests' paths.
struct TlsServer {
    port: u16,
    accepts: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
}

impl TlsServer {
    async fn start(pki: &Pki) -> TlsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config());
        let accepts = Arc::new(AtomicUsize::new(0));
        let paths: Arc<Mutex<Vec<String>>> = Arc::default();
        let (count, seen) = (Arc::clone(&accepts), Arc::clone(&paths));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (acceptor, seen) = (acceptor.clone(), Arc::clone(&seen));
                tokio::spawn(async move {
                    // a client that refuses the certificate ends here
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req: Request<Incoming>| {
                        let path = req.uri().path().to_string();
                        seen.lock().expect("paths").push(path.clone());
                        async move {
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                                "hello {path}"
                            )))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        TlsServer {
            port,
            accepts,
            paths,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    fn paths(&self) -> Vec<String> {
        self.paths.lock().expect("paths").clone()
    }
}

// ---- a proxy ----

/// What the proxy was asked: the method, the target as written, and the
/// `Proxy-Authorization` header if any.
#[derive(Debug, Clone, PartialEq)]
struct Asked {
    method: String,
    target: String,
    auth: Option<String>,
}

/// An HTTP proxy on 127.0.0.1: `CONNECT` opens a tunnel (to 127.0.0.1 only) and copies
/// bytes both ways; any other method is answered by the proxy itself,
/// `200 forwarded <target>`. With `password` set, a request without the matching
/// credentials gets `407`.
struct Proxy {
    port: u16,
    asked: Arc<Mutex<Vec<Asked>>>,
}

impl Proxy {
    async fn start(password: Option<(&str, &str)>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let asked: Arc<Mutex<Vec<Asked>>> = Arc::default();
        let expected = password.map(|(u, p)| format!("Basic {}", base64(&format!("{u}:{p}"))));
        let log = Arc::clone(&asked);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (log, expected) = (Arc::clone(&log), expected.clone());
                tokio::spawn(async move {
                    let _ = proxy_one(tcp, &log, expected.as_deref()).await;
                });
            }
        });
        Proxy { port, asked }
    }

    fn url(&self, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((u, p)) => format!("http://{u}:{p}@127.0.0.1:{}", self.port),
            None => format!("http://127.0.0.1:{}", self.port),
        }
    }

    fn asked(&self) -> Vec<Asked> {
        self.asked.lock().expect("asked").clone()
    }

    fn tunnels(&self) -> usize {
        self.asked()
            .iter()
            .filter(|a| a.method == "CONNECT")
            .count()
    }
}

async fn proxy_one(
    tcp: TcpStream,
    log: &Mutex<Vec<Asked>>,
    expected: Option<&str>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(tcp);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let target = words.next().unwrap_or_default().to_string();
    let mut auth = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("proxy-authorization") {
                auth = Some(value.trim().to_string());
            }
        }
    }
    log.lock().expect("asked").push(Asked {
        method: method.clone(),
        target: target.clone(),
        auth: auth.clone(),
    });
    let mut tcp = reader.into_inner();
    if expected.is_some() && auth.as_deref() != expected {
        tcp.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")
            .await?;
        return Ok(());
    }
    if method != "CONNECT" {
        let body = format!("forwarded {target}");
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        tcp.write_all(head.as_bytes()).await?;
        tcp.write_all(body.as_bytes()).await?;
        return Ok(());
    }
    // never a tunnel off loopback
    if !target.starts_with("127.0.0.1:") {
        tcp.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
            .await?;
        return Ok(());
    }
    let mut upstream = TcpStream::connect(&target).await?;
    tcp.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await?;
    tokio::io::copy_bidirectional(&mut tcp, &mut upstream).await?;
    Ok(())
}

/// Standard base64, for the expected `Proxy-Authorization`.
fn base64(s: &str) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---- helpers ----

fn no_proxy() -> Matcher {
    Matcher::builder().build()
}

fn upstream(pki: &Pki, proxy: Matcher) -> Upstream {
    Upstream::new(pki.ca_pem.as_bytes(), proxy).expect("a client")
}

/// A GET carrying an API key, as provider calls do.
fn get_with_key(url: &str) -> Request<Full<Bytes>> {
    Request::get(url)
        .header("authorization", format!("Bearer {SECRET}"))
        .body(Full::new(Bytes::new()))
        .expect("a request")
}

/// Sends `GET url`, returns the status and the body.
async fn fetch(client: &Upstream, url: &str) -> Result<(u16, String), SendError> {
    let resp = client.send(get_with_key(url)).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("a body").to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A port of 127.0.0.1 where nothing listens (bound, then released).
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("address").port()
}

fn assert_no_secret(e: &SendError) {
    let text = format!("{e} {e:?}");
    assert!(!text.contains(SECRET), "a key in an error: {text}");
}

// ---- the client ----

#[tokio::test]
async fn an_https_server_trusted_through_the_explicit_roots_answers() {
    let pki = Pki::new("trusted");
    let server = TlsServer::start(&pki).await;
    let client = upstream(&pki, no_proxy());
    let got = fetch(&client, &server.url("/v1/models")).await;
    assert_eq!(got, Ok((200, "hello /v1/models".to_string())));
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_authority_is_a_tls_connect_error() {
    let server = TlsServer::start(&Pki::new("server's")).await;
    let client = upstream(&Pki::new("client's"), no_proxy());
    let e = fetch(&client, &server.url("/v1/models"))
        .await
        .expect_err("an untrusted certificate");
    assert!(e.is_connect(), "{e}");
    assert_eq!(e.failure(), Some(ConnectFailure::Tls), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("`https://127.0.0.1:{}`", server.port))
            && text.contains("certificate"),
        "{text}"
    );
    assert_no_secret(&e);
    assert!(
        server.paths().is_empty(),
        "a request went through: {:?}",
        server.paths()
    );
}

#[tokio::test]
async fn a_refused_port_is_a_connect_error() {
    let port = closed_port().await;
    let client = upstream(&Pki::new("refused"), no_proxy());
    for url in [
        format!("http://127.0.0.1:{port}/v1/models"),
        format!("https://127.0.0.1:{port}/v1/models"),
    ] {
        let e = fetch(&client, &url).await.expect_err("nothing listens");
        assert!(e.is_connect(), "{e}");
        assert_eq!(e.failure(), Some(ConnectFailure::Refused), "{e}");
        assert!(e.to_string().starts_with("cannot connect to `"), "{e}");
        assert_no_secret(&e);
    }
}

#[tokio::test]
async fn a_connection_cut_after_the_request_was_sent_is_not_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        if let Ok((tcp, _)) = listener.accept().await {
            let mut reader = BufReader::new(tcp);
            let mut line = String::new();
            // read the whole head, then hang up without a word
            while reader.read_line(&mut line).await.is_ok_and(|n| n > 0) {
                if line == "\r\n" {
                    break;
                }
                line.clear();
            }
        }
    });
    let client = upstream(&Pki::new("cut"), no_proxy());
    let e = fetch(
        &client,
        &format!("http://127.0.0.1:{port}/v1/chat/completions"),
    )
    .await
    .expect_err("the connection was cut");
    assert!(!e.is_connect(), "{e}");
    assert!(matches!(e, SendError::AfterSend { .. }), "{e:?}");
    assert!(e.to_string().contains("after it was sent"), "{e}");
    assert_no_secret(&e);
}

#[tokio::test]
async fn a_url_without_a_host_is_refused_before_anything_is_sent() {
    let client = upstream(&Pki::new("no-host"), no_proxy());
    let req = Request::get("/v1/models")
        .body(Full::new(Bytes::new()))
        .expect("a request");
    let e = client.send(req).await.expect_err("no host");
    assert!(matches!(e, SendError::Request { .. }), "{e:?}");
    assert!(!e.is_connect());
}

#[tokio::test]
async fn sequential_calls_to_one_server_share_one_connection() {
    let pki = Pki::new("keep-alive");
    let server = TlsServer::start(&pki).await;
    let client = upstream(&pki, no_proxy());
    for path in ["/first", "/second", "/third"] {
        let got = fetch(&client, &server.url(path)).await;
        assert_eq!(got, Ok((200, format!("hello {path}"))));
    }
    // a clone shares the pool
    let again = fetch(&client.clone(), &server.url("/fourth")).await;
    assert_eq!(again, Ok((200, "hello /fourth".to_string())));
    assert_eq!(server.accepts(), 1, "paths: {:?}", server.paths());
}

// ---- proxies ----

#[tokio::test]
async fn https_goes_through_the_proxy_s_tunnel_with_its_credentials() {
    let pki = Pki::new("tunnel");
    let server = TlsServer::start(&pki).await;
    let proxy = Proxy::start(Some(("alice", "s3cret"))).await;
    let matcher = Matcher::builder()
        .https(proxy.url(Some(("alice", "s3cret"))))
        .build();
    let client = upstream(&pki, matcher);
    for path in ["/v1/models", "/v1/chat/completions"] {
        let got = fetch(&client, &server.url(path)).await;
        assert_eq!(got, Ok((200, format!("hello {path}"))));
    }
    // one tunnel, kept alive for both calls
    assert_eq!(
        proxy.asked(),
        [Asked {
            method: "CONNECT".to_string(),
            target: format!("127.0.0.1:{}", server.port),
            auth: Some(format!("Basic {}", base64("alice:s3cret"))),
        }]
    );
    assert_eq!(server.accepts(), 1);
}

#[tokio::test]
async fn a_destination_in_no_proxy_bypasses_the_proxy() {
    let pki = Pki::new("no-proxy");
    let server = TlsServer::start(&pki).await;
    let proxy = Proxy::start(None).await;
    let matcher = Matcher::builder()
        .https(proxy.url(None))
        .no("localhost, 127.0.0.1")
        .build();
    let client = upstream(&pki, matcher);
    let got = fetch(&client, &server.url("/v1/models")).await;
    assert_eq!(got, Ok((200, "hello /v1/models".to_string())));
    assert_eq!(proxy.asked(), [], "the proxy was used");
    assert_eq!(server.accepts(), 1);
}

#[tokio::test]
async fn a_proxy_refusing_the_tunnel_is_a_proxy_connect_error() {
    let pki = Pki::new("refusing-proxy");
    let server = TlsServer::start(&pki).await;
    let proxy = Proxy::start(Some(("alice", "s3cret"))).await;
    let matcher = Matcher::builder()
        .https(proxy.url(Some(("alice", "wrong"))))
        .build();
    let client = upstream(&pki, matcher);
    let e = fetch(&client, &server.url("/v1/models"))
        .await
        .expect_err("the proxy says 407");
    assert!(e.is_connect(), "{e}");
    assert_eq!(e.failure(), Some(ConnectFailure::Proxy), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{}", proxy.port)) && text.contains("authorization"),
        "{text}"
    );
    assert!(
        !text.contains("wrong"),
        "the proxy's password in an error: {text}"
    );
    assert_eq!(server.accepts(), 0);
    assert_eq!(proxy.tunnels(), 1);
}

#[tokio::test]
async fn an_unreachable_proxy_is_a_proxy_connect_error() {
    let pki = Pki::new("no-proxy-there");
    let server = TlsServer::start(&pki).await;
    let port = closed_port().await;
    let matcher = Matcher::builder()
        .https(format!("http://127.0.0.1:{port}"))
        .build();
    let e = fetch(&upstream(&pki, matcher), &server.url("/v1/models"))
        .await
        .expect_err("no proxy listens");
    assert_eq!(e.failure(), Some(ConnectFailure::Proxy), "{e}");
    assert_eq!(server.accepts(), 0);
}

#[tokio::test]
async fn plain_http_through_a_proxy_is_forwarded_in_absolute_form() {
    let proxy = Proxy::start(Some(("bob", "pw"))).await;
    let matcher = Matcher::builder()
        .http(proxy.url(Some(("bob", "pw"))))
        .build();
    let client = upstream(&Pki::new("forward"), matcher);
    // nothing listens there: only the proxy answers
    let port = closed_port().await;
    let url = format!("http://127.0.0.1:{port}/v1/models");
    let got = fetch(&client, &url).await;
    assert_eq!(got, Ok((200, format!("forwarded {url}"))));
    assert_eq!(
        proxy.asked(),
        [Asked {
            method: "GET".to_string(),
            target: url,
            auth: Some(format!("Basic {}", base64("bob:pw"))),
        }]
    );
}

#[test]
fn roots_that_hold_no_certificate_are_refused() {
    let e = Upstream::new(b"not a certificate", no_proxy()).expect_err("no roots");
    assert!(e.contains("no certificate"), "{e}");
}

// ---- through `rulec serve` ----

/// A policy with one provider, `secure`, at `https://127.0.0.1:PORT/v1`, checked every
/// second; two failed checks make it unhealthy.
fn https_policy(dir: &Path, port: u16) -> String {
    let text = format!(
        r#"providers:
  secure: {{kind: openai_compatible, base_url: "https://127.0.0.1:{port}/v1"}}

gateway:
  models:
    only: {{provider: secure, model: only-1, max_tokens: 1000, cost_per_token: 0.000001, capabilities: [general_purpose]}}
  routing_strategy:
    rules:
      - fallback: only

load_balancing:
  strategy: weighted_round_robin
  health_check: {{interval: 1s, timeout: 900ms, unhealthy_threshold: 2}}
"#
    );
    let file = dir.join("secure.yaml");
    std::fs::write(&file, text).expect("write the policy");
    file.to_str().expect("utf-8 path").to_string()
}

fn secure(port: u16) -> Value {
    get(port, "/v1/status").json()["providers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "secure"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// The server's status for `secure` once `f` holds, or a panic with the last one.
fn settle(port: u16, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let ok = eventually(PATIENCE, || {
        last = secure(port);
        f(&last)
    });
    assert!(ok, "{what}: {last}");
    last
}

#[test]
fn rulec_serve_checks_an_https_provider_actively_through_the_trust_store_it_is_given() {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let pki = Pki::new("serve");
    let server = rt.block_on(TlsServer::start(&pki));
    let dir = scratch("proxy-client-serve");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).expect("write the CA");
    let policy = https_policy(&dir, server.port);
    // the test CA alone: no system directory beside it
    let s = Served::start(
        &[&policy],
        &[
            ("SSL_CERT_FILE", ca.to_str().expect("utf-8")),
            ("SSL_CERT_DIR", ""),
        ],
    );
    let p = settle(s.port, "never checked", |p| {
        p["last_check"]["ok"] == true && p["healthy"] == true
    });
    assert_eq!(
        p["active_checks"],
        format!("https://127.0.0.1:{}/v1/models", server.port),
        "{p}"
    );
    assert!(
        server.paths().iter().all(|path| path == "/v1/models") && !server.paths().is_empty(),
        "{:?}",
        server.paths()
    );
}

#[test]
fn rulec_serve_marks_an_https_provider_unhealthy_when_its_certificate_is_not_trusted() {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let server = rt.block_on(TlsServer::start(&Pki::new("serve-untrusted")));
    let dir = scratch("proxy-client-serve-untrusted");
    let other = dir.join("other-ca.pem");
    std::fs::write(&other, Pki::new("not the server's").ca_pem).expect("write the CA");
    let policy = https_policy(&dir, server.port);
    let s = Served::start(
        &[&policy],
        &[
            ("SSL_CERT_FILE", other.to_str().expect("utf-8")),
            ("SSL_CERT_DIR", ""),
        ],
    );
    let p = settle(s.port, "never unhealthy", |p| p["healthy"] == false);
    let detail = p["last_check"]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("tls") && detail.contains("certificate"),
        "{p}"
    );
    assert!(server.accepts() > 0, "the server was never contacted");
    assert!(server.paths().is_empty(), "{:?}", server.paths());
}

#[test]
fn rulec_serve_refuses_to_start_with_a_trust_store_or_proxy_it_cannot_use() {
    let dir = scratch("proxy-client-serve-refused");
    let policy = https_policy(&dir, 443);
    let missing = dir.join("missing.pem");
    let (code, _, stderr) = Served::start_expect_failure(
        &[&policy],
        &[
            ("SSL_CERT_FILE", missing.to_str().expect("utf-8")),
            ("SSL_CERT_DIR", ""),
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("cannot read the trust store named by `SSL_CERT_FILE`"),
        "{stderr}"
    );

    let (code, _, stderr) =
        Served::start_expect_failure(&[&policy], &[("HTTPS_PROXY", "socks5://127.0.0.1:1")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("`HTTPS_PROXY`") && stderr.contains("socks5"),
        "{stderr}"
    );
}
