//! A small outbound HTTP/1.1 client for the license server and the OpenID
//! provider.
//!
//! Why not a full client crate: the two callers make a handful of JSON and
//! form requests, and hyper (client side), tokio-rustls and the root
//! certificates are already in the build. What it does on purpose: one
//! request per connection, a total timeout per request, a bound on the
//! response body, and **no redirects** (a 3xx is returned as it is, so a
//! configured URL cannot be bent to reach another host — SSRF). `https` uses
//! rustls (ring) with the Mozilla roots plus the system's; `http` is plain.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, Method, Request, Uri, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Largest response body read.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Why a request failed (no answer was read).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not `http(s)://host[:port]/...`.
    #[error("bad URL {0}")]
    Url(String),
    /// Connecting, TLS or the exchange failed.
    #[error("{0}")]
    Transport(String),
    /// No full answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The body is larger than [`MAX_RESPONSE_BYTES`].
    #[error("response body larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
}

/// An answer.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// `Location`, for redirects.
    pub location: Option<String>,
    /// The body.
    pub body: Bytes,
}

impl HttpResponse {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON.
    ///
    /// # Errors
    /// serde's message.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("invalid JSON answer: {e}"))
    }
}

/// The client.
#[derive(Clone)]
pub struct HttpClient {
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    user_agent: HeaderValue,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client whose requests each time out after `timeout`.
    ///
    /// # Errors
    /// When the TLS configuration cannot be built.
    pub fn new(timeout: Duration) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let native = rustls_native_certs::load_native_certs();
        // A system certificate rustls cannot parse is skipped (and said).
        let (_, ignored) = roots.add_parsable_certificates(native.certs);
        if ignored > 0 {
            tracing::debug!(
                ignored,
                "system CA certificates rustls cannot parse were skipped"
            );
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS client: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(HttpClient {
            tls: Arc::new(tls),
            timeout,
            user_agent: HeaderValue::from_static(concat!("killkrill/", env!("CARGO_PKG_VERSION"))),
        })
    }

    /// `GET url`.
    ///
    /// # Errors
    /// [`HttpError`].
    pub async fn get(&self, url: &str) -> Result<HttpResponse, HttpError> {
        self.send(Method::GET, url, None, &[], Bytes::new()).await
    }

    /// `POST url` with a JSON body.
    ///
    /// # Errors
    /// [`HttpError`].
    pub async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<HttpResponse, HttpError> {
        let b = Bytes::from(body.to_string());
        self.send(Method::POST, url, Some("application/json"), &[], b)
            .await
    }

    /// `POST url` with a form body and extra headers.
    ///
    /// # Errors
    /// [`HttpError`].
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        headers: &[(header::HeaderName, String)],
    ) -> Result<HttpResponse, HttpError> {
        let b = {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in form {
                ser.append_pair(k, v);
            }
            Bytes::from(ser.finish())
        };
        self.send(
            Method::POST,
            url,
            Some("application/x-www-form-urlencoded"),
            headers,
            b,
        )
        .await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        content_type: Option<&str>,
        headers: &[(header::HeaderName, String)],
        body: Bytes,
    ) -> Result<HttpResponse, HttpError> {
        let t = self.timeout;
        tokio::time::timeout(t, self.send_inner(method, url, content_type, headers, body))
            .await
            .map_err(|_| HttpError::Timeout(t))?
    }

    async fn send_inner(
        &self,
        method: Method,
        url: &str,
        content_type: Option<&str>,
        headers: &[(header::HeaderName, String)],
        body: Bytes,
    ) -> Result<HttpResponse, HttpError> {
        let bad = || HttpError::Url(url.to_owned());
        let uri: Uri = url.parse().map_err(|_| bad())?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad()),
        };
        let host = uri.host().ok_or_else(bad)?.to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri.authority().ok_or_else(bad)?.as_str().to_owned();
        if authority.contains('@') {
            return Err(bad()); // no userinfo in URLs
        }
        let path = uri
            .path_and_query()
            .map_or("/", axum::http::uri::PathAndQuery::as_str)
            .to_owned();
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, authority)
            .header(header::USER_AGENT, self.user_agent.clone())
            .header(header::ACCEPT, "application/json");
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| HttpError::Transport(format!("building the request: {e}")))?;
        // Brackets of an IPv6 literal are not part of the address.
        let connect_host = host.trim_start_matches('[').trim_end_matches(']');
        let tcp = TcpStream::connect((connect_host, port))
            .await
            .map_err(|e| HttpError::Transport(format!("connecting to {host}:{port}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        if https {
            let name = rustls::pki_types::ServerName::try_from(connect_host.to_owned())
                .map_err(|_| bad())?;
            let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| HttpError::Transport(format!("TLS with {host}: {e}")))?;
            exchange(tls, req).await
        } else {
            exchange(tcp, req).await
        }
    }
}

async fn exchange<I>(io: I, req: Request<Full<Bytes>>) -> Result<HttpResponse, HttpError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| HttpError::Transport(format!("HTTP handshake: {e}")))?;
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| HttpError::Transport(format!("HTTP request: {e}")));
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            conn.abort();
            return Err(e);
        }
    };
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes);
    conn.abort();
    let body = body.map_err(|e| {
        if e.is::<http_body_util::LengthLimitError>() {
            HttpError::TooLarge
        } else {
            HttpError::Transport(format!("reading the answer: {e}"))
        }
    })?;
    Ok(HttpResponse {
        status,
        location,
        body,
    })
}

/// Whether `url`'s host is a loopback address or `localhost` (plain HTTP
/// is accepted only there).
pub fn is_loopback(url: &str) -> bool {
    let Ok(uri) = url.parse::<Uri>() else {
        return false;
    };
    match uri.host() {
        Some("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// Checks that `url` is an absolute `https` URL, or `http` on loopback.
///
/// # Errors
/// A sentence saying what is wrong.
pub fn check_url(url: &str) -> Result<(), String> {
    let uri: Uri = url.parse().map_err(|_| format!("{url:?} is not a URL"))?;
    if uri.host().is_none() {
        return Err(format!("{url:?} has no host"));
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(url) => Ok(()),
        Some("http") => Err(format!(
            "{url:?}: plain http is accepted only on loopback (127.0.0.1, ::1, localhost); use https"
        )),
        _ => Err(format!("{url:?}: expected an https:// URL")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("https://idp.example.com/realms/x").is_ok());
        assert!(check_url("http://127.0.0.1:9000").is_ok());
        assert!(check_url("http://[::1]:9000/x").is_ok());
        assert!(check_url("http://localhost/x").is_ok());
        assert!(check_url("http://idp.example.com").is_err());
        assert!(check_url("ftp://idp.example.com").is_err());
        assert!(check_url("idp.example.com").is_err());
    }

    #[tokio::test]
    async fn closed_port_and_no_redirects() {
        let c = HttpClient::new(Duration::from_secs(2)).unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let e = c.get(&format!("http://{addr}/x")).await.unwrap_err();
        assert!(matches!(e, HttpError::Transport(_)), "{e}");
        assert!(matches!(
            c.get("http://user:pw@127.0.0.1:1/").await.unwrap_err(),
            HttpError::Url(_)
        ));

        let app = axum::Router::new().route(
            "/r",
            axum::routing::get(|| async {
                (
                    axum::http::StatusCode::FOUND,
                    [(header::LOCATION, "http://169.254.169.254/")],
                )
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        let r = c.get(&format!("http://{addr}/r")).await.unwrap();
        assert_eq!(r.status, 302);
        assert_eq!(r.location.as_deref(), Some("http://169.254.169.254/"));
    }
}
