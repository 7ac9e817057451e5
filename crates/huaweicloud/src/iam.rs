//! IAM sign-in with a password: a token from IAM's `POST /v3/auth/tokens`
//! (its value in the `X-Subject-Token` answer header), kept until shortly
//! before it expires and fetched again then, or at once after a 401.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use tasktrack_core::http::{HttpClient, HttpRequest};
use tasktrack_core::{Error, Result, Secret, SharedClock};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// An IAM user's sign-in: the account (domain) name, the user name and the
/// password, scoped to the project the service paths name.
#[derive(Clone, PartialEq, Eq)]
pub struct IamPassword {
    /// The account (`domain`) name.
    pub domain: String,
    /// The IAM user name.
    pub user: String,
    /// The password.
    pub password: Secret,
}

impl fmt::Debug for IamPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IamPassword")
            .field("domain", &self.domain)
            .field("user", &self.user)
            .field("password", &self.password)
            .finish()
    }
}

/// The longest a token is kept before its end: tokens last 24 h, so one is
/// fetched again after 23 h (a tenth of a shorter lifetime).
const REFRESH_MARGIN: Duration = Duration::from_secs(3600);

struct Held {
    token: Secret,
    refresh_at: Instant,
}

/// Fetches, keeps and renews the token of one sign-in.
pub(crate) struct TokenSource {
    iam: HttpClient,
    login: IamPassword,
    project_id: String,
    clock: SharedClock,
    held: Mutex<Option<Held>>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("iam", &self.iam.base_url())
            .field("login", &self.login)
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: TokenBody,
}

#[derive(Deserialize)]
struct TokenBody {
    expires_at: DateTime<Utc>,
    #[serde(default)]
    issued_at: Option<DateTime<Utc>>,
}

impl TokenSource {
    pub(crate) fn new(
        iam: HttpClient,
        login: IamPassword,
        project_id: String,
        clock: SharedClock,
    ) -> Arc<Self> {
        Arc::new(TokenSource {
            iam,
            login,
            project_id,
            clock,
            held: Mutex::new(None),
        })
    }

    /// The token to send: the one held, or a new one when none is held or
    /// it is due for renewal.
    pub(crate) async fn token(&self) -> Result<Secret> {
        let mut held = self.held.lock().await;
        if let Some(h) = held.as_ref().filter(|h| self.clock.now() < h.refresh_at) {
            return Ok(h.token.clone());
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *held = Some(fresh);
        Ok(token)
    }

    /// Drops the held token (the service refused it) and fetches another.
    pub(crate) async fn renew(&self) -> Result<()> {
        let mut held = self.held.lock().await;
        *held = Some(self.fetch().await?);
        Ok(())
    }

    /// `POST /v3/auth/tokens` with the password method, scoped to the
    /// project. The token's lifetime is read as IAM states it
    /// (`expires_at` − `issued_at`), so a skewed local clock does not
    /// shorten or stretch it.
    async fn fetch(&self) -> Result<Held> {
        let body = json!({"auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {
                    "domain": {"name": self.login.domain},
                    "name": self.login.user,
                    "password": self.login.password.expose(),
                }},
            },
            "scope": {"project": {"id": self.project_id}},
        }});
        let answer = self
            .iam
            .send(HttpRequest::post("/v3/auth/tokens").with_json(&body)?)
            .await?;
        let provider = self.iam.provider();
        let token = answer
            .headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                Error::decode(
                    provider,
                    "IAM token",
                    "X-Subject-Token",
                    "the header is missing",
                )
            })?;
        let parsed: TokenAnswer =
            tasktrack_core::http::decode_json(provider, "IAM token", &answer.body)?;
        let issued = parsed.token.issued_at.unwrap_or_else(Utc::now);
        let lifetime = (parsed.token.expires_at - issued)
            .to_std()
            .unwrap_or_default();
        let margin = REFRESH_MARGIN.min(lifetime / 10);
        tracing::debug!(user = %self.login.user, lifetime_s = lifetime.as_secs(), "signed in to IAM");
        Ok(Held {
            token: Secret::new(token.to_owned()),
            refresh_at: self.clock.now() + lifetime.saturating_sub(margin),
        })
    }
}
