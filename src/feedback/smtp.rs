//! The inbound SMTP server for bounces and complaints: a small receiver of
//! Herald's own (no server crate is well kept), meant to sit behind the mail
//! server that takes the bounce domain's mail. It takes mail only for that domain
//! (any other recipient gets 550: it is never a relay), bounds the message size,
//! the time of every read and the number of connections, and answers a message
//! once it is stored — or 451 when the database cannot take it, so the sending
//! server tries again and nothing is lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::clock::Clock;
use crate::db::Db;
use crate::deliveries::BounceAddresses;
use crate::feedback::take::{self, Received};

/// The largest message taken.
pub const MAX_MESSAGE: usize = 10 * 1024 * 1024;
/// Connections served at once; more are told to come back later.
pub const MAX_CONNECTIONS: usize = 64;
/// The longest wait for one command or one line of a message.
pub const READ_DEADLINE: Duration = Duration::from_secs(60);
/// The longest a whole message may take to arrive.
pub const DATA_DEADLINE: Duration = Duration::from_secs(600);
/// The longest command line taken.
const MAX_COMMAND: usize = 2048;
/// Recipients per message.
const MAX_RECIPIENTS: usize = 100;
/// Unknown or out-of-order commands before the connection is closed.
const MAX_ERRORS: usize = 10;

/// What the server needs.
#[derive(Clone)]
pub struct Inbound {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub bounces: BounceAddresses,
    /// The settings (the bounce domain, the rules), read at most once a second.
    pub settings: Arc<crate::settings::Cached>,
    /// The name it greets with.
    pub hostname: String,
}

/// Serves `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, inbound: Inbound) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let inbound = Arc::new(inbound);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "inbound smtp: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                let inbound = inbound.clone();
                tokio::spawn(async move {
                    if let Err(e) = session(stream, &inbound).await {
                        tracing::debug!(%peer, error = %e, "inbound smtp: connection ended");
                    }
                    drop(slot);
                });
            }
            Err(_) => {
                tokio::spawn(async move {
                    let mut stream = stream;
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        stream.write_all(b"421 4.3.2 Too many connections, try again later\r\n"),
                    )
                    .await;
                });
            }
        }
    }
}

/// The domains mail is taken for: the bounce domain, or (without one) the
/// sender address's.
async fn accepted_domain(inbound: &Inbound) -> Result<String, sqlx::Error> {
    let settings = inbound.settings.load(&inbound.db).await?;
    Ok(match settings.bounce_domain() {
        Some(d) => d.to_string(),
        None => settings
            .sender_address
            .rsplit_once('@')
            .map_or(String::new(), |(_, d)| d.to_ascii_lowercase()),
    })
}

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no command within the deadline")]
    Timeout,
    #[error("the client closed the connection")]
    Closed,
}

/// One line: read within [`READ_DEADLINE`], at most `max` bytes (more is
/// `Ok(None)`: the rest of the line is read and dropped).
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<Option<()>, Ended> {
    buf.clear();
    let n = tokio::time::timeout(
        READ_DEADLINE,
        (&mut *r).take(max as u64).read_until(b'\n', buf),
    )
    .await
    .map_err(|_| Ended::Timeout)??;
    if n == 0 {
        return Err(Ended::Closed);
    }
    if buf.ends_with(b"\n") {
        return Ok(Some(()));
    }
    // Too long: drop the rest of the line, bounded by the same deadline.
    loop {
        let mut rest = Vec::new();
        let n = tokio::time::timeout(
            READ_DEADLINE,
            (&mut *r).take(64 * 1024).read_until(b'\n', &mut rest),
        )
        .await
        .map_err(|_| Ended::Timeout)??;
        if n == 0 {
            return Err(Ended::Closed);
        }
        if rest.ends_with(b"\n") {
            return Ok(None);
        }
    }
}

/// The address in `MAIL FROM:<a>` / `RCPT TO:<a>` after `prefix`, and the rest
/// (parameters); `None` when the command is not of that form.
fn path_of<'a>(line: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let head = line.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = line[prefix.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let (address, params) = rest.split_once('>')?;
    Some((address.trim(), params.trim()))
}

/// The domain of `address`, lower case.
fn domain_of(address: &str) -> Option<String> {
    let (local, domain) = address.rsplit_once('@')?;
    (!local.is_empty() && !domain.is_empty()).then(|| domain.to_ascii_lowercase())
}

async fn session(stream: TcpStream, inbound: &Inbound) -> Result<(), Ended> {
    let (read, mut write) = stream.into_split();
    let mut r = BufReader::new(read);
    let reply = async |w: &mut tokio::net::tcp::OwnedWriteHalf, text: &str| {
        tokio::time::timeout(READ_DEADLINE, w.write_all(text.as_bytes()))
            .await
            .map_err(|_| Ended::Timeout)?
            .map_err(Ended::Io)
    };
    reply(
        &mut write,
        &format!(
            "220 {} Herald ESMTP (bounces and complaints)\r\n",
            inbound.hostname
        ),
    )
    .await?;
    let mut line = Vec::new();
    let mut greeted = false;
    let mut sender: Option<String> = None;
    let mut recipients: Vec<String> = Vec::new();
    let mut errors = 0;
    loop {
        let answer: String = match read_line(&mut r, &mut line, MAX_COMMAND).await? {
            None => "500 5.5.2 Line too long\r\n".into(),
            Some(()) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\r', '\n']);
                let verb = text
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase();
                match verb.as_str() {
                    "EHLO" => {
                        greeted = true;
                        (sender, recipients) = (None, Vec::new());
                        format!(
                            "250-{}\r\n250-SIZE {MAX_MESSAGE}\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n",
                            inbound.hostname
                        )
                    }
                    "HELO" => {
                        greeted = true;
                        (sender, recipients) = (None, Vec::new());
                        format!("250 {}\r\n", inbound.hostname)
                    }
                    "MAIL" if !greeted => "503 5.5.1 Say EHLO first\r\n".into(),
                    "MAIL" if sender.is_some() => "503 5.5.1 Nested MAIL command\r\n".into(),
                    "MAIL" => match path_of(text, "MAIL FROM:") {
                        None => "501 5.5.4 Syntax: MAIL FROM:<address>\r\n".into(),
                        Some((_, params)) if too_big(params) => {
                            "552 5.3.4 Message too big\r\n".into()
                        }
                        Some((address, _)) => {
                            sender = Some(address.to_string());
                            "250 2.1.0 Ok\r\n".into()
                        }
                    },
                    "RCPT" if sender.is_none() => "503 5.5.1 Need MAIL first\r\n".into(),
                    "RCPT" if recipients.len() >= MAX_RECIPIENTS => {
                        "452 4.5.3 Too many recipients\r\n".into()
                    }
                    "RCPT" => match path_of(text, "RCPT TO:") {
                        None => "501 5.5.4 Syntax: RCPT TO:<address>\r\n".into(),
                        Some((address, _)) => {
                            let wanted = match accepted_domain(inbound).await {
                                Ok(d) => d,
                                Err(e) => {
                                    tracing::warn!(error = %e, "inbound smtp: reading the settings failed");
                                    reply(&mut write, "451 4.3.0 Try again later\r\n").await?;
                                    continue;
                                }
                            };
                            match domain_of(address) {
                                Some(d) if !wanted.is_empty() && d == wanted => {
                                    recipients.push(address.to_string());
                                    "250 2.1.5 Ok\r\n".into()
                                }
                                _ => format!(
                                    "550 5.7.1 Relaying denied: this server takes mail for {} only\r\n",
                                    if wanted.is_empty() {
                                        "no domain"
                                    } else {
                                        &wanted
                                    }
                                ),
                            }
                        }
                    },
                    "DATA" if recipients.is_empty() => "503 5.5.1 Need RCPT first\r\n".into(),
                    "DATA" => {
                        reply(&mut write, "354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                        let message = tokio::time::timeout(DATA_DEADLINE, read_data(&mut r))
                            .await
                            .map_err(|_| Ended::Timeout)??;
                        let from = sender.take().unwrap_or_default();
                        let to = std::mem::take(&mut recipients);
                        match message {
                            None => "552 5.3.4 Message too big (10 MiB at most)\r\n".into(),
                            Some(raw) => stored(inbound, &from, &to, &raw).await,
                        }
                    }
                    "RSET" => {
                        (sender, recipients) = (None, Vec::new());
                        "250 2.0.0 Ok\r\n".into()
                    }
                    "NOOP" => "250 2.0.0 Ok\r\n".into(),
                    "VRFY" => "252 2.5.2 Cannot verify\r\n".into(),
                    "QUIT" => {
                        reply(&mut write, "221 2.0.0 Bye\r\n").await?;
                        return Ok(());
                    }
                    _ => "502 5.5.2 Command not recognised\r\n".into(),
                }
            }
        };
        if answer.starts_with('5') && !answer.starts_with("552") && !answer.starts_with("550") {
            errors += 1;
        }
        reply(&mut write, &answer).await?;
        if errors >= MAX_ERRORS {
            reply(&mut write, "421 4.7.0 Too many errors\r\n").await?;
            return Ok(());
        }
    }
}

/// Whether `MAIL FROM` parameters announce a message over [`MAX_MESSAGE`].
fn too_big(params: &str) -> bool {
    params.split_whitespace().any(|p| {
        p.get(..5).is_some_and(|k| k.eq_ignore_ascii_case("SIZE="))
            && p[5..].parse::<u64>().is_ok_and(|n| n > MAX_MESSAGE as u64)
    })
}

/// The message after DATA, dots unstuffed, up to the line with one dot; `None`
/// when it is larger than [`MAX_MESSAGE`] (it is read to its end all the same).
async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
) -> Result<Option<Vec<u8>>, Ended> {
    let mut message = Vec::new();
    let mut too_big = false;
    let mut line = Vec::new();
    loop {
        // Lines are bounded by what may still fit (and 64 KiB once it does not).
        let room = if too_big {
            64 * 1024
        } else {
            MAX_MESSAGE + 3 - message.len()
        };
        if read_line(r, &mut line, room.max(3)).await?.is_none() {
            too_big = true;
            continue;
        }
        if line == b".\r\n" || line == b".\n" {
            break;
        }
        if too_big {
            continue;
        }
        let body = line.strip_prefix(b".").unwrap_or(&line);
        if message.len() + body.len() > MAX_MESSAGE {
            too_big = true;
            message = Vec::new();
            continue;
        }
        message.extend_from_slice(body);
    }
    Ok((!too_big).then_some(message))
}

/// Takes a message in; the answer to its DATA.
async fn stored(inbound: &Inbound, sender: &str, recipients: &[String], raw: &[u8]) -> String {
    let received = Received {
        sender,
        recipients,
        raw,
    };
    let now = inbound.clock.now_ms();
    let settings = match inbound.settings.load(&inbound.db).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "inbound smtp: reading the settings failed");
            return "451 4.3.0 Could not store the message, try again later\r\n".into();
        }
    };
    match take::take(&inbound.db, &inbound.bounces, &settings, now, received).await {
        Ok(t) if t.too_early => {
            "451 4.3.0 The email this report is about is not recorded yet, try again later\r\n"
                .into()
        }
        Ok(t) if t.matched > 0 => "250 2.0.0 Ok: recorded\r\n".into(),
        Ok(_) => "250 2.0.0 Ok: kept, it matched no email\r\n".into(),
        Err(e) => {
            tracing::warn!(error = %e, "inbound smtp: storing a report failed");
            "451 4.3.0 Could not store the message, try again later\r\n".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_sizes_read_from_commands() {
        assert_eq!(
            path_of("MAIL FROM:<> SIZE=100", "MAIL FROM:"),
            Some(("", "SIZE=100"))
        );
        assert_eq!(
            path_of("rcpt to: <bounces+x@b.example>", "RCPT TO:"),
            Some(("bounces+x@b.example", ""))
        );
        assert_eq!(path_of("RCPT TO:bounces@b.example", "RCPT TO:"), None);
        assert_eq!(path_of("RC", "RCPT TO:"), None);
        assert!(too_big("SIZE=20971520 BODY=8BITMIME"));
        assert!(!too_big("size=1000"));
        assert_eq!(domain_of("a@B.Example").as_deref(), Some("b.example"));
        assert_eq!(domain_of("postmaster"), None);
    }
}
