//! `--mode syslog-tls`: the client side of syslog over TLS (RFC 5425).
//!
//! The server certificate is checked against `--ca-file` (a CA, or the
//! receiver's self-signed certificate itself) and the name
//! `--server-name` (default: the target's IP address); `--insecure`
//! accepts any certificate, for a quick test against a self-signed
//! receiver only. TLS 1.2 and 1.3 (rustls, ring).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::LoadgenArgs;

/// What each TLS connection needs.
#[derive(Clone)]
pub(crate) struct TlsTarget {
    pub connector: tokio_rustls::TlsConnector,
    pub name: ServerName<'static>,
}

/// Builds the client configuration from the arguments.
///
/// # Errors
/// An unreadable or empty CA file, a bad server name.
pub(crate) fn target(args: &LoadgenArgs) -> Result<TlsTarget, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let config = if args.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth()
    } else {
        let path = args
            .ca_file
            .as_ref()
            .ok_or("--mode syslog-tls needs --ca-file or --insecure")?;
        let pem = std::fs::read(path).map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
        let mut roots = RootCertStore::empty();
        let mut n = 0;
        for c in rustls_pemfile_certs(&pem) {
            roots
                .add(c)
                .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
            n += 1;
        }
        if n == 0 {
            return Err(format!(
                "--ca-file {}: no PEM certificate in it",
                path.display()
            ));
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    let name = match &args.server_name {
        Some(n) => ServerName::try_from(n.clone()).map_err(|e| format!("--server-name: {e}"))?,
        None => ServerName::IpAddress(args.target.ip().into()),
    };
    Ok(TlsTarget {
        connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        name,
    })
}

/// The certificates of a PEM file.
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect()
}

/// `--insecure`: any certificate, but the handshake signatures are still
/// checked (the peer holds the key of the certificate it sent).
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
