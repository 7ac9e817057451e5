//! Proxmox VE credentials: an API token, or a login ticket with its CSRF
//! token, renewed once when it expires.

use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, COOKIE};
use serde::Deserialize;
use tasktrack_core::http::{
    credential_header, encode_segment, Authenticate, HttpClient, HttpRequest,
};
use tasktrack_core::{Error, Result, Secret};

use crate::product::ProxmoxProduct;

/// How to authenticate to Proxmox VE.
#[derive(Clone, PartialEq, Eq)]
pub enum ProxmoxCredentials {
    /// An API token: `Authorization: PVEAPIToken=USER@REALM!TOKENID=SECRET`
    /// (Proxmox Backup Server: `PBSAPIToken=USER@REALM!TOKENID:SECRET`). No
    /// CSRF token is needed.
    ApiToken {
        /// `USER@REALM!TOKENID`.
        token_id: String,
        /// The token's secret.
        secret: Secret,
    },
    /// A user and password, exchanged for a ticket at `POST /access/ticket`;
    /// the ticket goes in the `PVEAuthCookie` cookie and its CSRF token in the
    /// `CSRFPreventionToken` header of writes. Tickets last two hours; an
    /// expired one is renewed once, transparently.
    Password {
        /// `user@realm`.
        username: String,
        /// Password.
        password: Secret,
    },
}

impl fmt::Debug for ProxmoxCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxmoxCredentials::ApiToken { token_id, secret } => f
                .debug_struct("ApiToken")
                .field("token_id", token_id)
                .field("secret", secret)
                .finish(),
            ProxmoxCredentials::Password { username, password } => f
                .debug_struct("Password")
                .field("username", username)
                .field("password", password)
                .finish(),
        }
    }
}

impl ProxmoxCredentials {
    /// An API token from its id (`USER@REALM!TOKENID`) and secret.
    pub fn api_token(token_id: impl Into<String>, secret: impl Into<Secret>) -> Self {
        ProxmoxCredentials::ApiToken {
            token_id: token_id.into(),
            secret: secret.into(),
        }
    }

    /// An API token from the form PVE shows and proxmoxer takes:
    /// `USER@REALM!TOKENID=SECRET`. The message of a malformed one never
    /// repeats the secret.
    pub fn parse_token(full: &str) -> Result<Self> {
        Self::parse_token_for(ProxmoxProduct::VirtualEnvironment, full)
    }

    /// An API token in the form Proxmox Backup Server shows:
    /// `USER@REALM!TOKENID:SECRET`. The message of a malformed one never
    /// repeats the secret.
    ///
    /// ```
    /// use tasktrack_proxmox::ProxmoxCredentials;
    ///
    /// let token = ProxmoxCredentials::parse_pbs_token("backup@pbs!ci:0a1b2c3d").unwrap();
    /// assert_eq!(token, ProxmoxCredentials::api_token("backup@pbs!ci", "0a1b2c3d"));
    /// assert!(ProxmoxCredentials::parse_pbs_token("backup@pbs!ci=0a1b").is_err());
    /// ```
    pub fn parse_pbs_token(full: &str) -> Result<Self> {
        Self::parse_token_for(ProxmoxProduct::BackupServer, full)
    }

    /// `USER@REALM!TOKENID` then the product's separator and the secret
    /// (token names hold neither `=` nor `:`; pbs-api-types'
    /// `PROXMOX_TOKEN_NAME_REGEX`, pve-access-control's token id format).
    fn parse_token_for(product: ProxmoxProduct, full: &str) -> Result<Self> {
        let sep = product.token_separator();
        let bad = |why: &str| {
            Error::invalid_input(
                product.provider_name(),
                format!("malformed API token: {why}; expected USER@REALM!TOKENID{sep}SECRET"),
            )
        };
        let (user, rest) = full
            .split_once('!')
            .ok_or_else(|| bad("no '!' before the token id"))?;
        let (token, secret) = rest
            .split_once(sep)
            .ok_or_else(|| bad(&format!("no '{sep}' before the secret")))?;
        if !user.contains('@') || user.starts_with('@') || user.ends_with('@') {
            return Err(bad("the user part is not user@realm"));
        }
        if token.is_empty() || secret.is_empty() {
            return Err(bad("the token id or the secret is empty"));
        }
        Ok(Self::api_token(format!("{user}!{token}"), secret))
    }

    /// A user (`user@realm`) and password.
    pub fn password(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        ProxmoxCredentials::Password {
            username: username.into(),
            password: password.into(),
        }
    }
}

struct Ticket {
    ticket: Secret,
    csrf: Secret,
}

/// The [`Authenticate`] hook for Proxmox VE.
pub(crate) struct PveAuth {
    product: ProxmoxProduct,
    credentials: ProxmoxCredentials,
    ticket: Mutex<Option<Ticket>>,
}

impl fmt::Debug for PveAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PveAuth")
            .field("product", &self.product)
            .field("credentials", &self.credentials)
            .field("has_ticket", &self.lock().is_some())
            .finish()
    }
}

#[derive(Deserialize)]
struct TicketAnswer {
    data: TicketData,
}

#[derive(Deserialize)]
struct TicketData {
    ticket: String,
    #[serde(rename = "CSRFPreventionToken")]
    csrf: String,
}

impl PveAuth {
    pub(crate) fn new(product: ProxmoxProduct, credentials: ProxmoxCredentials) -> Self {
        PveAuth {
            product,
            credentials,
            ticket: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Ticket>> {
        self.ticket.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Logs in with the password; a no-op for API tokens.
    pub(crate) async fn login(&self, client: &HttpClient) -> Result<()> {
        let ProxmoxCredentials::Password { username, password } = &self.credentials else {
            return Ok(());
        };
        let req = HttpRequest::post("/access/ticket")
            .with_form(&[("username", username), ("password", password.expose())])
            .without_auth();
        let answer: TicketAnswer = client.send_json(req, "login ticket").await?;
        *self.lock() = Some(Ticket {
            ticket: Secret::new(answer.data.ticket),
            csrf: Secret::new(answer.data.csrf),
        });
        tracing::debug!(user = %username, product = self.product.display_name(), "logged in");
        Ok(())
    }
}

#[async_trait]
impl Authenticate for PveAuth {
    async fn authenticate(&self, request: &mut reqwest::Request) -> Result<()> {
        match &self.credentials {
            ProxmoxCredentials::ApiToken { token_id, secret } => {
                let value = credential_header(
                    self.product.provider_name(),
                    "API token",
                    &self.product.token_header(token_id, secret.expose()),
                )?;
                request.headers_mut().insert(AUTHORIZATION, value);
            }
            ProxmoxCredentials::Password { .. } => {
                // Without a ticket yet the request goes out bare, gets 401,
                // and `refresh` logs in before it is sent again.
                let guard = self.lock();
                if let Some(t) = guard.as_ref() {
                    let cookie = credential_header(
                        self.product.provider_name(),
                        "ticket",
                        &format!(
                            "{}={}",
                            self.product.cookie_name(),
                            encode_segment(t.ticket.expose())
                        ),
                    )?;
                    request.headers_mut().insert(COOKIE, cookie);
                    if !matches!(request.method().as_str(), "GET" | "HEAD") {
                        request.headers_mut().insert(
                            "CSRFPreventionToken",
                            credential_header(
                                self.product.provider_name(),
                                "CSRF token",
                                t.csrf.expose(),
                            )?,
                        );
                    }
                }
            }
        }
        Ok(())
    }

    async fn refresh(&self, client: &HttpClient) -> Result<bool> {
        match self.credentials {
            ProxmoxCredentials::ApiToken { .. } => Ok(false),
            ProxmoxCredentials::Password { .. } => {
                self.login(client).await?;
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_and_never_show_their_secret() {
        let c = ProxmoxCredentials::parse_token("root@pam!ci=aaaa-bbbb").unwrap();
        assert_eq!(c, ProxmoxCredentials::api_token("root@pam!ci", "aaaa-bbbb"));
        assert!(!format!("{c:?}").contains("aaaa-bbbb"));
        for bad in [
            "root@pam!ci",
            "root@pam=x",
            "rootpam!ci=x",
            "root@pam!=x",
            "root@pam!ci=",
        ] {
            let err = ProxmoxCredentials::parse_token(bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains("USER@REALM!TOKENID=SECRET"), "{err}");
        }
        let err = ProxmoxCredentials::parse_token("root@pam=supersecret")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("supersecret"));
    }
}
