//! Our own SMTP connection pool for `smtp://` URLs. lettre 0.11.23 neither sets
//! TCP_NODELAY nor writes a message's end in one piece, so on a pooled connection
//! every message waits for the server's delayed ACK (~40 ms: ~22 messages/s per
//! connection, measured). Connections here are made over a socket with
//! `set_nodelay(true)` and handed to lettre with `connect_with_transport`.

use std::sync::Mutex;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use tokio::net::TcpStream;

use super::SendError;
use super::tls::{Trust, classify};
use crate::smtp_url::{SmtpTls, SmtpUrl};

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
    trust: Trust,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
    /// Connections waiting for the next message, with the time each came back.
    idle: Mutex<Vec<(AsyncSmtpConnection, std::time::Instant)>>,
    max_idle: usize,
}

/// A connection idle this long is asked whether it is still there (NOOP) before a
/// message goes on it: servers close idle connections (Postfix after 300 s).
const IDLE_CHECK: Duration = Duration::from_secs(10);

impl SmtpPool {
    /// For `smtp://[user:password@]host[:port][?tls=required|opportunistic]`.
    pub fn from_url(parsed: &SmtpUrl, trust: Trust, timeout: Duration) -> anyhow::Result<Self> {
        let tls = match parsed.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Required => Tls::Required,
            SmtpTls::Opportunistic => Tls::Opportunistic,
            SmtpTls::Wrapper => anyhow::bail!("smtp_url: smtps:// is not pooled here"),
        };
        Ok(Self {
            port: parsed.port(),
            host: parsed.host.clone(),
            tls,
            trust,
            credentials: parsed
                .credentials()
                .map(|(user, password)| Credentials::new(user, password)),
            hello: ClientId::default(),
            timeout,
            idle: Mutex::new(Vec::new()),
            max_idle: 8,
        })
    }

    fn timed_out(&self, what: &str) -> SendError {
        SendError::Transient(format!(
            "the mail server did not answer within {} s ({what})",
            self.timeout.as_secs()
        ))
    }

    /// Runs one SMTP step (`what`) with the pool's deadline.
    async fn step<T>(
        &self,
        what: &str,
        work: impl std::future::Future<Output = Result<T, SendError>>,
    ) -> Result<T, SendError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| Err(self.timed_out(what)))
    }

    /// A new connection: TCP, the greeting and EHLO, STARTTLS, authentication — each
    /// step with its deadline, so a server that accepts and then says nothing
    /// cannot hold a job.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let transient = |what: &str, e: &dyn std::fmt::Display| {
            SendError::Transient(format!("mail server {what}: {e}"))
        };
        let stream = self
            .step("connecting", async {
                TcpStream::connect((self.host.as_str(), self.port))
                    .await
                    .map_err(|e| transient("connection", &e))
            })
            .await?;
        stream
            .set_nodelay(true)
            .map_err(|e| transient("connection", &e))?;
        let mut conn = self
            .step("greeting and EHLO", async {
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                    .await
                    .map_err(classify)
            })
            .await?;
        if self.tls != Tls::None && (self.tls == Tls::Required || conn.can_starttls()) {
            let params = self.trust.parameters()?;
            self.step("STARTTLS", async {
                conn.starttls(params, &self.hello)
                    .await
                    .map_err(|e| self.trust.judge(e))
            })
            .await?;
        }
        if let Some(c) = &self.credentials {
            self.step("authentication", async {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], c)
                    .await
                    .map(|_| ())
                    .map_err(classify)
            })
            .await?;
        }
        Ok(conn)
    }

    /// A connection for the next message: a pooled one (asked first when it has
    /// been idle a while), else a new one.
    async fn take(&self) -> Result<AsyncSmtpConnection, SendError> {
        loop {
            let pooled = self.idle.lock().expect("smtp pool").pop();
            let Some((mut conn, since)) = pooled else {
                return self.connect().await;
            };
            if since.elapsed() < IDLE_CHECK {
                return Ok(conn);
            }
            let alive = tokio::time::timeout(self.timeout, conn.test_connected()).await;
            if alive == Ok(true) {
                return Ok(conn);
            }
        }
    }

    /// Sends one message: one try. A failure is the attempt's outcome, and the
    /// scheduler's backoff decides when the next try comes — a try again at once,
    /// on a fresh connection, made a server that deferred the message see it twice
    /// per attempt (and a server that took it but whose answer was lost, get it twice).
    /// Sends `message`; returns the server's answer.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<Response, SendError> {
        let conn = self.take().await?;
        self.send_on(conn, envelope, message).await
    }

    async fn send_on(
        &self,
        mut conn: AsyncSmtpConnection,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<Response, SendError> {
        match tokio::time::timeout(self.timeout, conn.send(envelope, message)).await {
            Ok(Ok(answer)) => {
                let mut idle = self.idle.lock().expect("smtp pool");
                if !conn.has_broken() && idle.len() < self.max_idle {
                    idle.push((conn, std::time::Instant::now()));
                }
                Ok(answer)
            }
            Ok(Err(e)) => {
                // QUIT waits for an answer: bounded like every other step.
                let _ = tokio::time::timeout(self.timeout, conn.abort()).await;
                Err(classify(e))
            }
            // A connection that went silent is in an unknown state: dropped.
            Err(_) => Err(self.timed_out("sending the message")),
        }
    }
}
