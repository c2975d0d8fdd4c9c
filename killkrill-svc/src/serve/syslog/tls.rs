//! The TLS server configuration for syslog over TLS (RFC 5425): rustls with
//! the ring provider only, TLS 1.2 minimum (1.3 preferred), optional client
//! certificates checked against a CA bundle.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ServerConfig, version};

use crate::config::TlsConfig;

/// A TLS file or setting is unusable.
#[derive(Debug, thiserror::Error)]
#[error("{key} {path}: {problem}")]
pub struct TlsError {
    /// The config key (`tls.cert`, `tls.key`, `tls.client_ca`).
    pub key: &'static str,
    /// The file.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// Builds the server configuration from PEM files.
///
/// # Errors
/// [`TlsError`] naming the key and file.
pub fn server_config(cfg: &TlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    let (Some(cert), Some(key)) = (&cfg.cert, &cfg.key) else {
        return Err(TlsError {
            key: "tls.cert",
            path: String::new(),
            problem: "tls.cert and tls.key are both needed".into(),
        });
    };
    let err = |key: &'static str, path: &Path, problem: String| TlsError {
        key,
        path: path.display().to_string(),
        problem,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| err("tls.cert", cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err("tls.cert", cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(err("tls.cert", cert, "no certificate in the file".into()));
    }
    let private =
        PrivateKeyDer::from_pem_file(key).map_err(|e| err("tls.key", key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])
        .map_err(|e| err("tls.cert", cert, e.to_string()))?;
    let builder = match &cfg.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .map_err(|e| err("tls.client_ca", ca, e.to_string()))?
            {
                let c = c.map_err(|e| err("tls.client_ca", ca, e.to_string()))?;
                roots
                    .add(c)
                    .map_err(|e| err("tls.client_ca", ca, e.to_string()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| err("tls.client_ca", ca, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs, private)
        .map_err(|e| err("tls.key", key, e.to_string()))?;
    Ok(Arc::new(config))
}
