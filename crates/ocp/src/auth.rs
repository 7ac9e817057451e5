//! How an OCP client signs in: HTTP Basic on every call (OCP's public
//! clients), or ocp-express's login form and its session cookie where Basic
//! is disabled (`ocp.iam.auth.basic.enabled = false`).

use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use base64::Engine;
use reqwest::header::{AUTHORIZATION, COOKIE};
use rsa::pkcs8::DecodePublicKey;
use serde::Deserialize;
use tasktrack_core::http::{credential_header, Authenticate, HttpClient, HttpRequest};
use tasktrack_core::{Error, Result, Secret};

const PROVIDER: &str = "ocp";

/// HTTP Basic credentials, as OCP's public clients send them on every call.
#[derive(Clone)]
pub(crate) struct BasicAuth {
    header: Secret,
}

impl BasicAuth {
    pub(crate) fn new(user: &str, password: &Secret) -> Self {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{user}:{}", password.expose()));
        BasicAuth {
            header: Secret::new(format!("Basic {token}")),
        }
    }
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BasicAuth(***)")
    }
}

#[async_trait]
impl Authenticate for BasicAuth {
    async fn authenticate(&self, request: &mut reqwest::Request) -> Result<()> {
        request.headers_mut().insert(
            AUTHORIZATION,
            credential_header(PROVIDER, "user or password", self.header.expose())?,
        );
        Ok(())
    }
}

/// ocp-express's form login (`CustomSecurityConfiguration`): the password
/// RSA-encrypted (PKCS#1 v1.5) with the key `GET /api/v1/loginKey`
/// answers, posted to `/api/v1/login` as `username` / `password`; the
/// `JSESSIONID` cookie of the answer goes on every call. Without a session
/// yet a call goes out bare, gets 401, and [`refresh`](Authenticate::refresh)
/// signs in before it is sent again; an expired session the same way.
pub(crate) struct SessionAuth {
    user: String,
    password: Secret,
    session: Mutex<Option<Secret>>,
}

impl fmt::Debug for SessionAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionAuth")
            .field("user", &self.user)
            .field("password", &self.password)
            .field("has_session", &self.lock().is_some())
            .finish()
    }
}

#[derive(Deserialize)]
struct KeyEnvelope {
    #[serde(default)]
    data: Option<LoginKey>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginKey {
    #[serde(default)]
    public_key: String,
}

impl SessionAuth {
    pub(crate) fn new(user: &str, password: &Secret) -> Self {
        SessionAuth {
            user: user.to_owned(),
            password: password.clone(),
            session: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Secret>> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The password as the login form wants it: encrypted with the
    /// server's key, or as it is when the server has none (`LoginKey`'s
    /// empty default; `CustomBCryptPasswordEncoder` then compares it plain).
    fn sealed_password(&self, public_key: &str) -> Result<String> {
        if public_key.trim().is_empty() {
            return Ok(self.password.expose().to_owned());
        }
        let bad = |why: String| Error::decode(PROVIDER, "login key", "data.publicKey", why);
        let der = base64::engine::general_purpose::STANDARD
            .decode(public_key.trim())
            .map_err(|e| bad(e.to_string()))?;
        let key = rsa::RsaPublicKey::from_public_key_der(&der).map_err(|e| bad(e.to_string()))?;
        let sealed = key
            .encrypt(
                &mut rsa::rand_core::OsRng,
                rsa::Pkcs1v15Encrypt,
                self.password.expose().as_bytes(),
            )
            .map_err(|e| bad(format!("cannot encrypt the password with it: {e}")))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(sealed))
    }

    async fn login(&self, client: &HttpClient) -> Result<()> {
        let key: KeyEnvelope = client
            .send_json(
                HttpRequest::get("/api/v1/loginKey").without_auth(),
                "login key",
            )
            .await?;
        let public_key = key.data.map(|k| k.public_key).unwrap_or_default();
        let password = self.sealed_password(&public_key)?;
        let answer = client
            .send(
                HttpRequest::post("/api/v1/login")
                    .with_form(&[("username", self.user.as_str()), ("password", &password)])
                    .without_auth(),
            )
            .await?;
        let session = answer
            .headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.split(';').next()?.trim().strip_prefix("JSESSIONID="))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::decode(
                    PROVIDER,
                    "login",
                    "Set-Cookie",
                    "no JSESSIONID cookie in the answer",
                )
            })?;
        *self.lock() = Some(Secret::new(session.to_owned()));
        tracing::debug!(user = %self.user, "signed in to OCP");
        Ok(())
    }
}

#[async_trait]
impl Authenticate for SessionAuth {
    async fn authenticate(&self, request: &mut reqwest::Request) -> Result<()> {
        if let Some(session) = self.lock().as_ref() {
            let cookie = credential_header(
                PROVIDER,
                "session cookie",
                &format!("JSESSIONID={}", session.expose()),
            )?;
            request.headers_mut().insert(COOKIE, cookie);
        }
        Ok(())
    }

    async fn refresh(&self, client: &HttpClient) -> Result<bool> {
        self.login(client).await?;
        Ok(true)
    }
}
