//! Certificate reload without a restart, for every TLS listener (the HTTP
//! listener with `[http_tls]`, syslog with `[tls]`).
//!
//! Operators rotate certificates in place (cert-manager rewrites a mounted
//! secret, certbot renews a file). A listener takes its rustls
//! [`ServerConfig`] from a [`TlsSource`] at each accepted connection, and a
//! [`Reloader`] swaps the source's configuration when the files change:
//! new handshakes get the new certificate, connections already open keep
//! theirs (a TLS session never changes its certificate) and are not
//! touched.
//!
//! Why it works this way:
//! - The files are *read* every `reload_interval_ms` (and on `SIGHUP`) and
//!   compared with what was last tried, byte for byte. Timestamps are not
//!   trusted: a Kubernetes secret changes by a symlink swap, some file
//!   systems keep whole seconds, and two certificates of the same size
//!   written in the same second would look alike. The files are a few KB.
//! - The whole configuration is rebuilt (certificate chain, key and client
//!   CA bundle) with the same code as at start-up, so a reload checks
//!   exactly what start-up checks: the key must match the certificate, the
//!   CA bundle must hold a certificate.
//! - A reload that fails (a half-written file, a key that does not match,
//!   a file that does not parse or is missing) keeps the old configuration
//!   serving, logs an error and counts it in
//!   [`TLS_RELOADS`]`{result="error"}`. The same files are not tried again
//!   until they change, so a broken file is reported once, not every poll;
//!   a cert and key rotated one after the other fail once (the new cert
//!   with the old key) and load on the next poll.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use killkrill_core::pipeline::Shutdown;
use metrics::counter;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use super::tls::{TlsError, TlsFiles, server_config_from};
use crate::config::TlsConfig;

/// Certificate reloads by listener (`http`, `syslog_tls`) and result
/// (`ok`: the new files serve new handshakes; `error`: they were refused
/// and the old ones still serve).
pub const TLS_RELOADS: &str = "killkrill_tls_reloads_total";

/// The server configuration a TLS listener hands to each new handshake.
#[derive(Debug, Clone)]
pub struct TlsSource(Arc<RwLock<Arc<ServerConfig>>>);

impl TlsSource {
    /// A source serving `cfg` until replaced.
    pub fn new(cfg: Arc<ServerConfig>) -> Self {
        TlsSource(Arc::new(RwLock::new(cfg)))
    }

    /// The configuration for a new handshake.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// An acceptor with the current configuration.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current())
    }

    fn replace(&self, cfg: Arc<ServerConfig>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = cfg;
    }
}

/// What one check of the files did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    /// The files are those last tried.
    Unchanged,
    /// New files, now serving.
    Loaded,
    /// New files that were refused (the old configuration still serves).
    Failed(String),
}

/// Watches the files of one `[tls]` / `[http_tls]` section and swaps its
/// listener's [`TlsSource`] when they change.
#[derive(Debug)]
pub struct Reloader {
    source: TlsSource,
    cfg: TlsConfig,
    section: &'static str,
    listener: &'static str,
    alpn: &'static [&'static [u8]],
    /// The files last tried (loaded or refused).
    last: Option<TlsFiles>,
    /// The last read error, reported once until it changes.
    last_read_error: Option<String>,
}

impl Reloader {
    /// Reads and checks the files of the `[section]` (`tls`, `http_tls`)
    /// and builds the listener's first configuration, offering `alpn`;
    /// `listener` labels the metric.
    ///
    /// # Errors
    /// [`TlsError`] naming the key and file, as at start-up.
    pub fn load(
        cfg: &TlsConfig,
        section: &'static str,
        listener: &'static str,
        alpn: &'static [&'static [u8]],
    ) -> Result<Self, TlsError> {
        let files = TlsFiles::read(cfg, section)?;
        let first = server_config_from(cfg, section, alpn, &files)?;
        Ok(Reloader {
            source: TlsSource::new(first),
            cfg: cfg.clone(),
            section,
            listener,
            alpn,
            last: Some(files),
            last_read_error: None,
        })
    }

    /// The listener's source of configurations.
    pub fn source(&self) -> TlsSource {
        self.source.clone()
    }

    /// Checks the files every `reload_interval_ms` of the section (never
    /// when zero) and on `SIGHUP`, until `shutdown`. The `SIGHUP` handler
    /// is in place when this returns.
    pub fn spawn(self, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
        let every = Duration::from_millis(self.cfg.reload_interval_ms);
        let hangup = Hangup::new(self.listener);
        tokio::spawn(self.run(every, hangup, shutdown))
    }

    /// Reads the files and, when they differ from those last tried, builds
    /// and installs the new configuration (counted and logged either way).
    pub fn check(&mut self) -> Reload {
        let files = match TlsFiles::read(&self.cfg, self.section) {
            Ok(f) => {
                self.last_read_error = None;
                f
            }
            Err(e) => {
                let msg = e.to_string();
                if self.last_read_error.as_ref() == Some(&msg) {
                    return Reload::Unchanged;
                }
                self.last_read_error = Some(msg.clone());
                // Tried again once readable, even if the content is the
                // same as before.
                self.last = None;
                return self.failed(msg);
            }
        };
        if self.last.as_ref() == Some(&files) {
            return Reload::Unchanged;
        }
        let built = server_config_from(&self.cfg, self.section, self.alpn, &files);
        self.last = Some(files);
        match built {
            Ok(cfg) => {
                self.source.replace(cfg);
                counter!(TLS_RELOADS, "listener" => self.listener, "result" => "ok").increment(1);
                tracing::info!(
                    listener = self.listener,
                    cert = %self.cfg.cert.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
                    "TLS certificate reloaded: new connections use the new files"
                );
                Reload::Loaded
            }
            Err(e) => self.failed(e.to_string()),
        }
    }

    fn failed(&self, msg: String) -> Reload {
        counter!(TLS_RELOADS, "listener" => self.listener, "result" => "error").increment(1);
        tracing::error!(
            listener = self.listener,
            error = %msg,
            "TLS certificate reload failed: the previous certificate keeps serving"
        );
        Reload::Failed(msg)
    }

    async fn run(mut self, interval: Duration, mut hangup: Hangup, mut shutdown: Shutdown) {
        loop {
            tokio::select! {
                () = shutdown.requested() => return,
                () = tokio::time::sleep(interval), if !interval.is_zero() => {}
                () = hangup.recv() => {
                    tracing::info!(listener = self.listener, "SIGHUP: checking the TLS files");
                }
            }
            self.check();
        }
    }
}

/// `SIGHUP`s received by a running server, by what they did (`reload`: the
/// TLS files of `listeners` were checked; `nothing`: no TLS listener, so
/// nothing to reload).
pub const SIGHUPS: &str = "killkrill_sighup_total";

/// Handles `SIGHUP` for the whole process, whatever its role, so that the
/// signal logrotate and init systems send never ends a server (its default
/// action is to terminate): each one is counted in [`SIGHUPS`] and logged,
/// naming the TLS `listeners` whose [`Reloader`]s check their files on it
/// (each has its own handler), or saying there is nothing to reload. The
/// handler is in place when this returns and stays for the life of the
/// process (tokio never uninstalls one), so a `SIGHUP` during shutdown is
/// ignored too.
pub fn spawn_hangup(
    listeners: Vec<&'static str>,
    mut shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    let mut hangup = Hangup::new("process");
    tokio::spawn(async move {
        let action = if listeners.is_empty() {
            "nothing"
        } else {
            "reload"
        };
        loop {
            tokio::select! {
                () = shutdown.requested() => return,
                () = hangup.recv() => {}
            }
            counter!(SIGHUPS, "action" => action).increment(1);
            if listeners.is_empty() {
                tracing::info!("SIGHUP: no TLS listener, nothing to reload");
            } else {
                tracing::info!(listeners = ?listeners, "SIGHUP: reloading TLS certificates");
            }
        }
    })
}

/// `SIGHUP`, where there is one.
struct Hangup(#[cfg(unix)] Option<tokio::signal::unix::Signal>);

impl Hangup {
    fn new(listener: &'static str) -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::hangup()) {
                Ok(s) => Hangup(Some(s)),
                Err(e) => {
                    tracing::warn!(listener, error = %e, "no SIGHUP handler (TLS files, if any, are only polled)");
                    Hangup(None)
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = listener;
            Hangup()
        }
    }

    /// Waits for the next signal (forever when there is none).
    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = &mut self.0
            && s.recv().await.is_some()
        {
            return;
        }
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf() -> (String, String) {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        (ck.cert.pem(), ck.signing_key.serialize_pem())
    }

    #[test]
    fn each_change_is_tried_once_and_a_bad_one_keeps_the_old_config() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        let (a_cert, a_key) = leaf();
        let (b_cert, b_key) = leaf();
        std::fs::write(&cert, &a_cert).unwrap();
        std::fs::write(&key, &a_key).unwrap();
        let cfg = TlsConfig {
            cert: Some(cert.clone()),
            key: Some(key.clone()),
            ..TlsConfig::default()
        };
        let mut r = Reloader::load(&cfg, "tls", "test", &[]).unwrap();
        let src = r.source();
        let first = src.current();
        assert_eq!(r.check(), Reload::Unchanged);
        // Rewritten with the same bytes (a touch): nothing to do.
        std::fs::write(&cert, &a_cert).unwrap();
        assert_eq!(r.check(), Reload::Unchanged);
        assert!(Arc::ptr_eq(&first, &src.current()));
        // B's certificate with A's key: refused once, A still serves.
        std::fs::write(&cert, &b_cert).unwrap();
        let Reload::Failed(e) = r.check() else {
            panic!("a key that does not match was accepted")
        };
        assert!(e.starts_with("tls.key "), "{e}");
        assert_eq!(r.check(), Reload::Unchanged);
        assert!(Arc::ptr_eq(&first, &src.current()));
        // The key arrives.
        std::fs::write(&key, &b_key).unwrap();
        assert_eq!(r.check(), Reload::Loaded);
        let second = src.current();
        assert!(!Arc::ptr_eq(&first, &second));
        // A missing file is reported once; the same files coming back are
        // tried again (and load).
        std::fs::remove_file(&key).unwrap();
        assert!(matches!(r.check(), Reload::Failed(e) if e.starts_with("tls.key ")));
        assert_eq!(r.check(), Reload::Unchanged);
        assert!(Arc::ptr_eq(&second, &src.current()));
        std::fs::write(&key, &b_key).unwrap();
        assert_eq!(r.check(), Reload::Loaded);
        // Garbage in the certificate file.
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nxx").unwrap();
        assert!(matches!(r.check(), Reload::Failed(e) if e.starts_with("tls.cert ")));
    }
}
