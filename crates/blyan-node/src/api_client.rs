//! A small HTTP/1.1 client for the node API (`blyan-node status`, tests, scripts):
//! one connection per request over hyper's connection API, no TLS, bounded response size.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

use crate::api_types::{ErrorBody, StatusView};

/// Largest response body read: 16 MiB (a full block as JSON is far below).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Why a request to the API failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection to the node.
    #[error("cannot connect to {addr}")]
    Connect {
        /// The API address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("HTTP request to {addr} failed: {reason}")]
    Http {
        /// The API address.
        addr: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// No answer in time.
    #[error("no answer from {addr} within {timeout:?}")]
    Timeout {
        /// The API address.
        addr: SocketAddr,
        /// The limit.
        timeout: Duration,
    },
    /// The node answered with an error.
    #[error("the node answered {status}: {message}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// The `error` field of the body (or the raw body).
        message: String,
    },
    /// The body is not the expected JSON.
    #[error("unexpected response body: {0}")]
    Decode(String),
}

/// A response: status and body bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl ApiResponse {
    /// The body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::Decode(e.to_string()))
    }
}

/// Client for one node's API.
#[derive(Debug, Clone, Copy)]
pub struct ApiClient {
    addr: SocketAddr,
    timeout: Duration,
}

impl ApiClient {
    /// A client for the API at `addr`, with a 10 s timeout per request.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            timeout: Duration::from_secs(10),
        }
    }

    /// The same client with another timeout.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }

    /// Sends `method path` with an optional JSON `body`; any status is returned as is.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<ApiResponse, ClientError> {
        tokio::time::timeout(self.timeout, self.exchange(method, path, body))
            .await
            .map_err(|_| ClientError::Timeout {
                addr: self.addr,
                timeout: self.timeout,
            })?
    }

    async fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<ApiResponse, ClientError> {
        let addr = self.addr;
        let http = |reason: String| ClientError::Http { addr, reason };
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect { addr, source })?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(|e| http(e.to_string()))?;
        let driver = tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, addr.to_string());
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| http(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| http(e.to_string()))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| http(e.to_string()))?
            .to_bytes()
            .to_vec();
        driver.abort();
        Ok(ApiResponse {
            status,
            content_type,
            body,
        })
    }

    /// `GET path`, expecting 2xx and a JSON body of type `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let response = self.request("GET", path, None).await?;
        if !(200..300).contains(&response.status) {
            let message = response
                .json::<ErrorBody>()
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&response.body).into_owned());
            return Err(ClientError::Status {
                status: response.status,
                message,
            });
        }
        response.json()
    }

    /// `GET /api/status`.
    pub async fn status(&self) -> Result<StatusView, ClientError> {
        self.get_json("/api/status").await
    }
}
