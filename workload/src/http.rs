//! A small HTTP/1.1 client over real TCP (hyper), with the errors a user can act on: which URL,
//! and whether it was unreachable, slow, or answered with an error.
//!
//! Connections are created on the runtime that runs the request, so inside a network namespace
//! when that runtime's thread is in one (`NetNs::run_async`).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How long a TCP connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A request that failed, with the URL it was for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HttpError {
    /// The URL cannot be used.
    #[error("'{url}' is not a usable URL: {reason}; use http://HOST:PORT/PATH")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// Why not.
        reason: String,
    },
    /// No connection could be made.
    #[error("cannot reach {url}: {reason}; check the address and that the server is running")]
    Unreachable {
        /// The URL.
        url: String,
        /// The connection error.
        reason: String,
    },
    /// The whole exchange took too long.
    #[error("{url} did not complete within {after_s} s")]
    Timeout {
        /// The URL.
        url: String,
        /// The time limit in seconds.
        after_s: f64,
    },
    /// The server answered with a status other than 2xx.
    #[error("{url} answered {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The response broke off or could not be decoded.
    #[error("bad response from {url}: {reason}")]
    Response {
        /// The URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

/// A completed download whose body was counted and discarded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Download {
    /// Body bytes received.
    pub bytes: u64,
    /// From sending the request to the response head.
    pub ttfb: Duration,
    /// From sending the request to the last body byte.
    pub total: Duration,
}

/// An HTTP/1.1 client with keep-alive connections and a per-request time limit.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl HttpClient {
    /// A client whose requests fail after `timeout` (connection, head and body together).
    pub fn new(timeout: Duration) -> HttpClient {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        HttpClient {
            inner: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
        }
    }

    /// GETs `url` and decodes its JSON body.
    pub async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, HttpError> {
        let body = self.exchange(Method::GET, url, Bytes::new()).await?;
        serde_json::from_slice(&body).map_err(|e| HttpError::Response {
            url: url.to_string(),
            reason: format!("invalid JSON: {e}"),
        })
    }

    /// POSTs `value` as JSON to `url`; any 2xx status is success.
    pub async fn post_json<T: Serialize>(&self, url: &str, value: &T) -> Result<(), HttpError> {
        let body = serde_json::to_vec(value).expect("serializable values serialize");
        self.exchange(Method::POST, url, Bytes::from(body)).await?;
        Ok(())
    }

    /// GETs `url`, counting the body's bytes as they arrive and discarding them.
    pub async fn download(&self, url: &str) -> Result<Download, HttpError> {
        let uri = parse_url(url)?;
        let fetch = async {
            let start = Instant::now();
            let response = self.send(Method::GET, uri, Bytes::new(), url).await?;
            let ttfb = start.elapsed();
            let status = response.status();
            let mut body = response.into_body();
            if !status.is_success() {
                return Err(status_error(url, status.as_u16(), body.collect().await));
            }
            let mut bytes = 0u64;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| response_error(url, &e))?;
                if let Some(data) = frame.data_ref() {
                    bytes += data.len() as u64;
                }
            }
            Ok(Download {
                bytes,
                ttfb,
                total: start.elapsed(),
            })
        };
        self.limited(url, fetch).await
    }

    async fn exchange(&self, method: Method, url: &str, body: Bytes) -> Result<Bytes, HttpError> {
        let uri = parse_url(url)?;
        let exchange = async {
            let response = self.send(method, uri, body, url).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await;
            if !(200..300).contains(&status) {
                return Err(status_error(url, status, body));
            }
            Ok(body.map_err(|e| response_error(url, &e))?.to_bytes())
        };
        self.limited(url, exchange).await
    }

    async fn send(
        &self,
        method: Method,
        uri: Uri,
        body: Bytes,
        url: &str,
    ) -> Result<http::Response<hyper::body::Incoming>, HttpError> {
        let mut request = Request::builder().method(method).uri(uri);
        if !body.is_empty() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| HttpError::BadUrl {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        self.inner.request(request).await.map_err(|e| {
            let reason = error_chain(&e);
            if e.is_connect() {
                HttpError::Unreachable {
                    url: url.to_string(),
                    reason,
                }
            } else {
                HttpError::Response {
                    url: url.to_string(),
                    reason,
                }
            }
        })
    }

    async fn limited<T>(
        &self,
        url: &str,
        work: impl Future<Output = Result<T, HttpError>>,
    ) -> Result<T, HttpError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(HttpError::Timeout {
                    url: url.to_string(),
                    after_s: self.timeout.as_secs_f64(),
                })
            })
    }
}

/// Parses an `http://` URL with a host.
pub fn parse_url(url: &str) -> Result<Uri, HttpError> {
    let bad = |reason: &str| HttpError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let uri: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => return Err(bad(&format!("scheme '{other}' is not supported"))),
        None => return Err(bad("the scheme (http://) is missing")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("the host is missing"));
    }
    Ok(uri)
}

fn status_error(
    url: &str,
    status: u16,
    body: Result<http_body_util::Collected<Bytes>, hyper::Error>,
) -> HttpError {
    let body = body
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
        .unwrap_or_default();
    HttpError::Status {
        url: url.to_string(),
        status,
        body: body.chars().take(300).collect(),
    }
}

fn response_error(url: &str, err: &hyper::Error) -> HttpError {
    HttpError::Response {
        url: url.to_string(),
        reason: error_chain(err),
    }
}

/// An error and its sources, `outer: inner: innermost`.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A loopback port that was free a moment ago (bound, read, closed).
    pub(crate) fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    #[test]
    fn urls_are_checked() {
        assert!(parse_url("http://198.18.2.2:8080/manifest.json").is_ok());
        for (url, why) in [
            ("198.18.2.2:8080", "scheme"),
            ("https://example.org/", "'https'"),
            ("http:///x", "not a usable URL"),
        ] {
            let err = parse_url(url).unwrap_err().to_string();
            assert!(err.contains(url) && err.contains(why), "{err}");
        }
    }

    #[tokio::test]
    async fn refused_connections_name_the_url() {
        let port = closed_port();
        let url = format!("http://127.0.0.1:{port}/manifest.json");
        let err = HttpClient::new(Duration::from_secs(5))
            .download(&url)
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::Unreachable { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&url) && text.contains("refused"), "{text}");
    }
}
