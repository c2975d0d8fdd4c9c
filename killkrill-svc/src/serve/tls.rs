//! TLS server configuration shared by every TLS listener (syslog over TLS,
//! RFC 5425, and the HTTP/gRPC listener): rustls with the ring provider
//! only, TLS 1.2 minimum (1.3 preferred: it is listed first and rustls picks
//! the highest both sides speak), optional client certificates checked
//! against a CA bundle (`client_auth = "required"` refuses a client without
//! one, `"optional"` verifies one when presented). Rotated files are picked
//! up without a restart by [`super::tls_reload`], which builds each new
//! configuration with [`server_config_from`], the code start-up uses.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ServerConfig, version};

use crate::config::{ClientAuth, TlsConfig};

/// A TLS file or setting is unusable.
#[derive(Debug, thiserror::Error)]
#[error("{key} {path}: {problem}")]
pub struct TlsError {
    /// The config key (`tls.cert`, `http_tls.key`, `tls.client_ca`).
    pub key: String,
    /// The file.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// ALPN of the HTTP listener: HTTP/2 first (gRPC needs it), then HTTP/1.1.
pub const HTTP_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

/// The PEM files of a `[tls]` / `[http_tls]` section, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `cert`.
    pub cert: Vec<u8>,
    /// `key`.
    pub key: Vec<u8>,
    /// `client_ca`, when set.
    pub client_ca: Option<Vec<u8>>,
}

impl TlsFiles {
    /// Reads the files of the `[section]`.
    ///
    /// # Errors
    /// [`TlsError`] naming the key and file.
    pub fn read(cfg: &TlsConfig, section: &str) -> Result<TlsFiles, TlsError> {
        let (Some(cert), Some(key)) = (&cfg.cert, &cfg.key) else {
            return Err(TlsError {
                key: format!("{section}.cert"),
                path: String::new(),
                problem: format!("{section}.cert and {section}.key are both needed"),
            });
        };
        let read = |name: &str, path: &Path| {
            std::fs::read(path).map_err(|e| TlsError {
                key: format!("{section}.{name}"),
                path: path.display().to_string(),
                problem: e.to_string(),
            })
        };
        Ok(TlsFiles {
            cert: read("cert", cert)?,
            key: read("key", key)?,
            client_ca: cfg
                .client_ca
                .as_deref()
                .map(|ca| read("client_ca", ca))
                .transpose()?,
        })
    }
}

/// Builds the server configuration of the `[section]` (`tls`, `http_tls`)
/// from its PEM files, offering `alpn` (none for syslog).
///
/// # Errors
/// [`TlsError`] naming the key and file.
pub fn server_config(
    cfg: &TlsConfig,
    section: &str,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let files = TlsFiles::read(cfg, section)?;
    server_config_from(cfg, section, alpn, &files)
}

/// [`server_config`] from files already read (`cfg` names them in errors
/// and says how client certificates are checked). The key must match the
/// certificate.
///
/// # Errors
/// [`TlsError`] naming the key and file.
pub fn server_config_from(
    cfg: &TlsConfig,
    section: &str,
    alpn: &[&[u8]],
    files: &TlsFiles,
) -> Result<Arc<ServerConfig>, TlsError> {
    let path_of = |p: &Option<std::path::PathBuf>| {
        p.as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    let (cert, key, ca) = (
        path_of(&cfg.cert),
        path_of(&cfg.key),
        path_of(&cfg.client_ca),
    );
    let err = |key: &str, path: &str, problem: String| TlsError {
        key: format!("{section}.{key}"),
        path: path.to_owned(),
        problem,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&files.cert)
        .collect::<Result<_, _>>()
        .map_err(|e| err("cert", &cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(err("cert", &cert, "no certificate in the file".into()));
    }
    let private =
        PrivateKeyDer::from_pem_slice(&files.key).map_err(|e| err("key", &key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])
        .map_err(|e| err("cert", &cert, e.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(pem) {
                let c = c.map_err(|e| err("client_ca", &ca, e.to_string()))?;
                roots
                    .add(c)
                    .map_err(|e| err("client_ca", &ca, e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(err("client_ca", &ca, "no certificate in the file".into()));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match cfg.client_auth {
                ClientAuth::Required => verifier,
                ClientAuth::Optional => verifier.allow_unauthenticated(),
            };
            let verifier = verifier
                .build()
                .map_err(|e| err("client_ca", &ca, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    // `with_single_cert` refuses a key that does not match the certificate.
    let mut config = builder
        .with_single_cert(certs, private)
        .map_err(|e| err("key", &key, e.to_string()))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Why a TLS handshake failed, as a metric label: `timeout` is counted by
/// the caller; `not_tls` (plain text, HTTP to a TLS port), `protocol_version`
/// (a TLS 1.1 or older client), `no_client_certificate`, `bad_certificate`
/// (a client certificate that does not verify), `closed` (the client went
/// away), `other`.
pub fn handshake_failure_reason(e: &std::io::Error) -> &'static str {
    use rustls::{Error as E, PeerIncompatible};
    let Some(tls) = e.get_ref().and_then(|x| x.downcast_ref::<E>()) else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe => "closed",
            _ => "other",
        };
    };
    match tls {
        E::InvalidMessage(_) | E::InappropriateHandshakeMessage { .. } => "not_tls",
        E::InappropriateMessage { .. } => "not_tls",
        E::PeerIncompatible(
            PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled
            | PeerIncompatible::Tls13RequiredForQuic
            // A TLS 1.0/1.1 ClientHello has no signature_algorithms
            // extension; rustls refuses on that before the version.
            | PeerIncompatible::SignatureAlgorithmsExtensionRequired,
        ) => "protocol_version",
        E::NoCertificatesPresented => "no_client_certificate",
        E::InvalidCertificate(_) => "bad_certificate",
        _ => "other",
    }
}
