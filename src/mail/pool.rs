//! Our own SMTP connection pool for `smtp://` URLs. lettre 0.11.23 neither sets
//! TCP_NODELAY nor writes a message's end in one piece, so on a pooled connection
//! every message waits for the server's delayed ACK (~40 ms: ~22 messages/s per
//! connection, measured). Connections here are made over a socket with
//! `set_nodelay(true)` and handed to lettre with `connect_with_transport`.

use std::sync::Mutex;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;

use super::SendError;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tls {
    None,
    /// STARTTLS, refusing to send without it (`?tls=required`).
    Required,
    /// STARTTLS when the server offers it (`?tls=opportunistic`).
    Opportunistic,
}

pub struct SmtpPool {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
    max_idle: usize,
}

impl SmtpPool {
    /// For `smtp://[user:password@]host[:port][?tls=required|opportunistic]`.
    pub fn from_url(url: &url::Url, timeout: Duration) -> anyhow::Result<Self> {
        let host = url
            .host_str()
            .ok_or_else(|| anyhow::anyhow!("smtp_url: no host"))?
            .to_string();
        let tls = match url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned())
        {
            None => Tls::None,
            Some(v) if v == "required" => Tls::Required,
            Some(v) if v == "opportunistic" => Tls::Opportunistic,
            Some(v) => anyhow::bail!("smtp_url: tls={v} (expected required or opportunistic)"),
        };
        let credentials = (!url.username().is_empty()).then(|| {
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            Credentials::new(decode(url.username()), decode(url.password().unwrap_or("")))
        });
        Ok(Self {
            port: url
                .port()
                .unwrap_or(if tls == Tls::None { 25 } else { 587 }),
            host,
            tls,
            credentials,
            hello: ClientId::default(),
            timeout,
            idle: Mutex::new(Vec::new()),
            max_idle: 8,
        })
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let transient = |what: &str, e: &dyn std::fmt::Display| {
            SendError::Transient(format!("mail server {what}: {e}"))
        };
        let stream = tokio::time::timeout(
            self.timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| SendError::Transient("timed out connecting to the mail server".into()))?
        .map_err(|e| transient("connection", &e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| transient("connection", &e))?;
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
            .await
            .map_err(classify)?;
        if self.tls != Tls::None && (self.tls == Tls::Required || conn.can_starttls()) {
            let params = TlsParameters::new(self.host.clone())
                .map_err(|e| SendError::Permanent(format!("TLS: {e}")))?;
            conn.starttls(params, &self.hello).await.map_err(classify)?;
        }
        if let Some(c) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], c)
                .await
                .map_err(classify)?;
        }
        Ok(conn)
    }

    /// Sends one message; a pooled connection that turns out dead is replaced once.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), SendError> {
        let pooled = self.idle.lock().expect("smtp pool").pop();
        let from_pool = pooled.is_some();
        let conn = match pooled {
            Some(c) => c,
            None => self.connect().await?,
        };
        match self.send_on(conn, envelope, message).await {
            Err(SendError::Transient(_)) if from_pool => {
                let fresh = self.connect().await?;
                self.send_on(fresh, envelope, message).await
            }
            other => other,
        }
    }

    async fn send_on(
        &self,
        mut conn: AsyncSmtpConnection,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<(), SendError> {
        let sent = tokio::time::timeout(self.timeout, conn.send(envelope, message)).await;
        match sent {
            Ok(Ok(_)) => {
                let mut idle = self.idle.lock().expect("smtp pool");
                if !conn.has_broken() && idle.len() < self.max_idle {
                    idle.push(conn);
                }
                Ok(())
            }
            Ok(Err(e)) => {
                conn.abort().await;
                Err(classify(e))
            }
            Err(_) => Err(SendError::Transient(
                "timed out talking to the mail server".into(),
            )),
        }
    }
}

fn classify(e: lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() {
        SendError::Permanent(format!("the mail server refused: {e}"))
    } else {
        SendError::Transient(format!("mail server: {e}"))
    }
}
