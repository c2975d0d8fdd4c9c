//! Graceful shutdown signalling.
//!
//! One trigger, any number of listeners; a watch channel underneath, so a
//! listener created after the trigger fired still sees it.

use tokio::sync::watch;

/// Fires the shutdown.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// Observes the shutdown. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
    /// Keeps the sender of [`Shutdown::never`] alive.
    _never: Option<std::sync::Arc<watch::Sender<bool>>>,
}

/// A connected trigger and listener.
pub fn shutdown_channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown { rx, _never: None })
}

impl ShutdownTrigger {
    /// Asks every listener to shut down.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    /// Another listener.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.0.subscribe(),
            _never: None,
        }
    }
}

impl Shutdown {
    /// A listener that never fires (for callers without shutdown).
    pub fn never() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        Shutdown {
            rx,
            _never: Some(std::sync::Arc::new(tx)),
        }
    }

    /// True once the trigger fired.
    pub fn is_requested(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes when the trigger fires; never, if the trigger was dropped
    /// without firing.
    pub async fn requested(&mut self) {
        if self.rx.wait_for(|v| *v).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
