//! TLS certificate pinning: trust one server certificate by its SHA-256
//! fingerprint, as Proxmox VE and Proxmox Backup Server users do with their
//! self-signed certificates (`proxmox-backup-client --fingerprint`, the PVE
//! storage's `fingerprint` option).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// The SHA-256 fingerprint of a server's certificate, written as Proxmox
/// prints it: 32 hex bytes separated by colons (`AA:BB:…`), either case.
///
/// ```
/// use tasktrack_core::http::CertificateFingerprint;
///
/// let text = "d7:3a:0b:6e:1c:9f:44:21:8a:5b:3c:7d:e0:f1:12:34:56:78:9a:bc:de:f0:11:22:33:44:55:66:77:88:99:aa";
/// let fp: CertificateFingerprint = text.parse().unwrap();
/// assert_eq!(fp.to_string(), text.to_uppercase());
/// assert!("d7:3a".parse::<CertificateFingerprint>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertificateFingerprint([u8; 32]);

impl CertificateFingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        CertificateFingerprint(Sha256::digest(der).into())
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for CertificateFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CertificateFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertificateFingerprint({self})")
    }
}

/// Why a fingerprint did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerprintError(String);

impl fmt::Display for FingerprintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; expected 32 colon-separated hex bytes (AA:BB:…), the SHA-256 fingerprint the server's certificate page shows",
            self.0
        )
    }
}

impl std::error::Error for FingerprintError {}

impl FromStr for CertificateFingerprint {
    type Err = FingerprintError;

    fn from_str(s: &str) -> Result<Self, FingerprintError> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        if parts.len() != 32 {
            return Err(FingerprintError(format!(
                "the fingerprint has {} bytes, not 32",
                parts.len()
            )));
        }
        let mut bytes = [0u8; 32];
        for (slot, part) in bytes.iter_mut().zip(&parts) {
            let valid = part.len() == 2 && part.bytes().all(|b| b.is_ascii_hexdigit());
            *slot = valid
                .then(|| u8::from_str_radix(part, 16).ok())
                .flatten()
                .ok_or_else(|| FingerprintError(format!("{part:?} is not a hex byte")))?;
        }
        Ok(CertificateFingerprint(bytes))
    }
}

/// Accepts exactly the server certificate with the pinned fingerprint,
/// whatever signed it and whatever name it carries (a self-signed
/// certificate for `pve1.local` reached as `10.0.0.5`), and still checks
/// that the server holds its key (the handshake signatures).
#[derive(Debug)]
struct PinnedVerifier {
    pinned: CertificateFingerprint,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = CertificateFingerprint::of_der(end_entity);
        if seen == self.pinned {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the server's certificate fingerprint is {seen}, not the pinned {}",
                self.pinned
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A rustls client configuration trusting only the pinned certificate.
pub(crate) fn pinned_tls(pinned: CertificateFingerprint) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedVerifier { pinned, provider }))
        .with_no_client_auth();
    Ok(config)
}
