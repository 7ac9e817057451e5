//! Credential expiry shared by the vendor simulators' auth checks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::SimClock;

/// Whether the credentials a simulator was started with still work.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuthState {
    clock: SimClock,
    expires_at: Arc<Mutex<Option<Instant>>>,
}

impl AuthState {
    /// Credentials valid until told otherwise.
    pub fn new(clock: SimClock) -> Self {
        AuthState {
            clock,
            expires_at: Arc::default(),
        }
    }

    /// Credentials stop working `d` from now (simulator time).
    pub fn expire_after(&self, d: Duration) {
        *self.expires_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(self.clock.now() + d);
    }

    /// Credentials work again (e.g. a new token was issued).
    pub fn restore(&self) {
        *self.expires_at.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// True while the credentials work.
    pub fn valid(&self) -> bool {
        let at = *self.expires_at.lock().unwrap_or_else(|p| p.into_inner());
        at.is_none_or(|t| self.clock.now() < t)
    }
}
