//! TEMPORARY stand-in for the outbound client (replaced by the `client` branch).

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

#[derive(Clone)]
pub struct Upstream {
    client: Client<HttpConnector, Full<Bytes>>,
}

#[derive(Debug)]
pub enum SendError {
    Connect(String),
    Sent(String),
}

impl SendError {
    pub fn is_connect(&self) -> bool {
        matches!(self, SendError::Connect(_))
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(m) | SendError::Sent(m) => f.write_str(m),
        }
    }
}

impl Upstream {
    pub fn from_env() -> Result<Upstream, String> {
        Ok(Upstream {
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    pub async fn send(&self, req: Request<Full<Bytes>>) -> Result<Response<Incoming>, SendError> {
        self.client.request(req).await.map_err(|e| {
            if e.is_connect() {
                SendError::Connect(format!("cannot connect: {e}"))
            } else {
                SendError::Sent(format!("{e}"))
            }
        })
    }
}
