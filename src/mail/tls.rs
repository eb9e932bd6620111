//! Whom Herald trusts when it speaks TLS to the mail server: the system's store of
//! certificate authorities (`/etc/ssl/certs`, what `update-ca-certificates` and
//! `SSL_CERT_FILE` maintain) and, with `smtp_ca_file`, the authorities in that PEM
//! file too — for a server whose certificate an internal CA signed.
//!
//! A certificate that is not trusted is no passing trouble: trying again cannot
//! help. The run fails at once with the reason, and the log says it once, not
//! once per email.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use lettre::transport::smtp::client::{Certificate, TlsParameters};

use super::SendError;

pub struct Trust {
    host: String,
    /// The PEM of `smtp_ca_file` (checked when Herald starts).
    ca: Option<Vec<u8>>,
    warned: AtomicBool,
}

impl Trust {
    /// Trust for `host`: the system's authorities, and those of `ca_file`.
    pub fn new(host: &str, ca_file: Option<&Path>) -> anyhow::Result<Self> {
        let ca = match ca_file {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    anyhow::anyhow!("smtp_ca_file {} cannot be read: {e}", path.display())
                })?;
                Certificate::from_pem(&pem).map_err(|e| {
                    anyhow::anyhow!("smtp_ca_file {} holds no certificate: {e}", path.display())
                })?;
                Some(pem)
            }
        };
        Ok(Self {
            host: host.to_string(),
            ca,
            warned: AtomicBool::new(false),
        })
    }

    /// The TLS parameters of a new connection.
    pub fn parameters(&self) -> Result<TlsParameters, SendError> {
        let mut builder = TlsParameters::builder(self.host.clone());
        if let Some(pem) = &self.ca {
            let ca = Certificate::from_pem(pem)
                .map_err(|e| SendError::Permanent(format!("smtp_ca_file: {e}")))?;
            builder = builder.add_root_certificate(ca);
        }
        builder
            .build_rustls()
            .map_err(|e| SendError::Permanent(format!("TLS: {e}")))
    }

    /// `e` as a send error: an untrusted certificate as [`Self::untrusted`] says,
    /// anything else as any mail server's answer.
    pub fn judge(&self, e: lettre::transport::smtp::Error) -> SendError {
        self.untrusted(&e).unwrap_or_else(|| classify(e))
    }

    /// When `e` says the server's certificate is not trusted: a permanent failure
    /// that says so (logged the first time).
    fn untrusted(&self, e: &lettre::transport::smtp::Error) -> Option<SendError> {
        let mut cause: Option<&dyn std::error::Error> = Some(e);
        let mut why = None;
        while let Some(c) = cause {
            let text = c.to_string();
            if let Some(at) = text.find("invalid peer certificate") {
                why = Some(text[at..].to_string());
            }
            cause = c.source();
        }
        let why = why?;
        let message = format!(
            "the certificate of {} is not trusted: {why} (add its certificate authority to the system's store, or name it in smtp_ca_file)",
            self.host
        );
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::error!(host = %self.host, "{message}");
        }
        Some(SendError::Permanent(message))
    }
}

/// A mail server's answer (or its absence) as a send error: permanent when the
/// server refused for good, else worth another attempt.
pub(super) fn classify(e: lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() {
        SendError::Permanent(format!("the mail server refused: {e}"))
    } else {
        SendError::Transient(format!("mail server: {e}"))
    }
}
