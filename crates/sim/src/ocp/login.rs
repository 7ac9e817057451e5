//! Session sign-in as ocp-express has it (`CustomSecurityConfiguration`):
//! `GET /api/v1/loginKey` answers the login public key (`LoginKey
//! {publicKey}`, base64 X.509), `POST /api/v1/login` takes the form fields
//! `username` and `password`, the password RSA-encrypted with that key
//! (PKCS#1 v1.5, Java's `RSA` cipher; `CustomBCryptPasswordEncoder`,
//! `OcpRSAUtils.decryptByPrivate`), and answers `{"data": {"location",
//! "needChangePassword"}}` with a `JSESSIONID` cookie
//! (`CustomAuthenticationSuccessHandler`); bad credentials are a 401
//! (`CustomAuthenticationFailureHandler`). HTTP Basic stays accepted unless
//! `ocp.iam.auth.basic.enabled` is false ([`Ocp::without_basic_auth`](super::Ocp::without_basic_auth)).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use rsa::pkcs8::EncodePublicKey;
use rsa::{Pkcs1v15Encrypt, RsaPrivateKey};

/// The simulator's login key: made once per process (1,024 bits, so a
/// debug build makes it quickly; it protects nothing).
fn key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024)
            .expect("an RSA key of 1,024 bits can be made")
    })
}

/// The public key as `LoginKey.publicKey` carries it.
pub(crate) fn public_key_base64() -> String {
    let der = key()
        .to_public_key()
        .to_public_key_der()
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// `OcpRSAUtils.decryptByPrivate`: the password, or `None` for anything
/// that does not decrypt (which fails the login, as there).
pub(crate) fn decrypt(encrypted: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encrypted.trim())
        .ok()?;
    let plain = key().decrypt(Pkcs1v15Encrypt, &bytes).ok()?;
    String::from_utf8(plain).ok()
}

/// Open sessions (`JSESSIONID` values).
#[derive(Debug, Clone, Default)]
pub struct Sessions(Arc<Mutex<HashSet<String>>>);

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn open(&self, n: u64) -> String {
        let id = format!("{:032X}", 0x0C9_5E55_1000_u128 * 7919 + u128::from(n));
        self.lock().insert(id.clone());
        id
    }

    pub(crate) fn is_open(&self, id: &str) -> bool {
        self.lock().contains(id)
    }

    /// Ends every session, as a timeout or a restart does.
    pub fn expire_all(&self) {
        self.lock().clear();
    }

    /// Sessions open now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// The `JSESSIONID` of a `Cookie` header.
pub(crate) fn session_cookie(cookie: &str) -> Option<&str> {
    cookie
        .split(';')
        .map(str::trim)
        .find_map(|c| c.strip_prefix("JSESSIONID="))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::DecodePublicKey;

    #[test]
    fn a_password_encrypted_with_the_public_key_decrypts() {
        let der = base64::engine::general_purpose::STANDARD
            .decode(public_key_base64())
            .unwrap();
        let public = rsa::RsaPublicKey::from_public_key_der(&der).unwrap();
        let sealed = public
            .encrypt(&mut rsa::rand_core::OsRng, Pkcs1v15Encrypt, b"s3cret")
            .unwrap();
        let text = base64::engine::general_purpose::STANDARD.encode(sealed);
        assert_eq!(decrypt(&text).as_deref(), Some("s3cret"));
        assert_eq!(decrypt("bm90IGEgY2lwaGVy"), None);
        assert_eq!(session_cookie("a=1; JSESSIONID=ABC"), Some("ABC"));
    }
}
