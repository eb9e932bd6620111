//! A small SMTP server over TCP for the tests: it speaks enough SMTP for lettre
//! (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), keeps what it receives, and can
//! refuse recipients (550) or go down and come back on the same port.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One received message.
#[derive(Debug, Clone)]
pub struct Received {
    /// The envelope sender (`MAIL FROM`), in lower case.
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
    /// The id its "250" named ("queued as T000001Q").
    pub queued_as: String,
}

#[derive(Default)]
struct Shared {
    messages: Vec<Received>,
    refuse: Vec<String>,
    hang: Vec<String>,
    /// While set, a message is kept (and counted) but its "250" waits.
    hold: bool,
    /// Addresses answered "451" at RCPT (try again later).
    defer: Vec<String>,
    /// Every RCPT TO address, in order.
    rcpts: Vec<String>,
    /// Messages taken so far (each one's id counts from it).
    taken: u64,
}

pub struct SmtpServer {
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SmtpServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let task = Some(tokio::spawn(serve(listener, shared.clone())));
        Self { port, shared, task }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Stops listening and drops every connection.
    pub fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.task = Some(tokio::spawn(serve(listener, self.shared.clone())));
    }

    /// Answers 550 to RCPT for `address`.
    pub fn refuse(&self, address: &str) {
        self.shared
            .lock()
            .unwrap()
            .refuse
            .push(address.to_lowercase());
    }

    /// Never answers RCPT for `address` (the connection stays open, silent).
    pub fn hang_on(&self, address: &str) {
        self.shared
            .lock()
            .unwrap()
            .hang
            .push(address.to_lowercase());
    }

    /// Answers 451 (try again later) to RCPT for `address`.
    pub fn defer(&self, address: &str) {
        self.shared
            .lock()
            .unwrap()
            .defer
            .push(address.to_lowercase());
    }

    /// How often a client named `address` at RCPT TO.
    pub fn tries_for(&self, address: &str) -> usize {
        let address = address.to_lowercase();
        let shared = self.shared.lock().unwrap();
        shared.rcpts.iter().filter(|a| **a == address).count()
    }

    /// From now on, keeps each message's "250 OK" until [`Self::release`].
    pub fn hold(&self) {
        self.shared.lock().unwrap().hold = true;
    }

    /// Answers the messages held, and every later one at once.
    pub fn release(&self) {
        self.shared.lock().unwrap().hold = false;
    }

    /// How many messages have arrived.
    pub fn count(&self) -> usize {
        self.shared.lock().unwrap().messages.len()
    }

    pub fn messages(&self) -> Vec<Received> {
        self.shared.lock().unwrap().messages.clone()
    }

    /// The last message to `address`.
    pub fn last_to(&self, address: &str) -> Option<Received> {
        self.messages()
            .into_iter()
            .rev()
            .find(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(address)))
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Mutex<Shared>>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            return;
        };
        connections.spawn(session(socket, shared.clone()));
    }
}

async fn session(socket: tokio::net::TcpStream, shared: Arc<Mutex<Shared>>) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    let _ = write.write_all(b"220 test ESMTP ready\r\n").await;
    let mut to = Vec::new();
    let mut from = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250-test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".into()
        } else if upper.starts_with("MAIL FROM") {
            to.clear();
            from = line[9..]
                .trim()
                .trim_start_matches(':')
                .split('>')
                .next()
                .unwrap_or("")
                .trim()
                .trim_start_matches('<')
                .to_lowercase();
            "250 OK\r\n".into()
        } else if upper.starts_with("RCPT TO") {
            let address = line[8..]
                .trim()
                .trim_start_matches(':')
                .trim()
                .trim_matches(['<', '>'])
                .to_lowercase();
            shared.lock().unwrap().rcpts.push(address.clone());
            if shared.lock().unwrap().hang.contains(&address) {
                std::future::pending::<()>().await;
            }
            if shared.lock().unwrap().refuse.contains(&address) {
                "550 5.1.1 No such user here\r\n".into()
            } else if shared.lock().unwrap().defer.contains(&address) {
                "451 4.3.0 Try again later\r\n".into()
            } else {
                to.push(address);
                "250 OK\r\n".into()
            }
        } else if upper == "DATA" {
            let _ = write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await;
            let mut data = String::new();
            while let Ok(Some(l)) = lines.next_line().await {
                if l == "." {
                    break;
                }
                data.push_str(
                    l.strip_prefix('.')
                        .filter(|_| l.starts_with(".."))
                        .unwrap_or(&l),
                );
                data.push('\n');
            }
            let queued_as = {
                let mut shared = shared.lock().unwrap();
                shared.taken += 1;
                let queued_as = format!("T{:06}Q", shared.taken);
                shared.messages.push(Received {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data,
                    queued_as: queued_as.clone(),
                });
                queued_as
            };
            while shared.lock().unwrap().hold {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            format!("250 2.0.0 Ok: queued as {queued_as}\r\n")
        } else if upper == "QUIT" {
            let _ = write.write_all(b"221 Bye\r\n").await;
            return;
        } else {
            "250 OK\r\n".into()
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A mail server that accepts connections and then never says a word; it holds
/// them until dropped. Returns its `smtp://` URL.
pub struct BlackHole {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl BlackHole {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        Self { url, task }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The decoded text/plain part of a MIME message.
pub fn text_part(data: &str) -> String {
    let lower = data.to_ascii_lowercase();
    let start = lower
        .find("content-type: text/plain")
        .expect("a text/plain part");
    let part = &data[start..];
    let header_end = part.find("\n\n").expect("part headers");
    let headers = part[..header_end].to_ascii_lowercase();
    let body = &part[header_end + 2..];
    let body = &body[..body.find("\n--").unwrap_or(body.len())];
    if headers.contains("quoted-printable") {
        decode_qp(body)
    } else if headers.contains("base64") {
        use std::io::Read;
        let compact: String = body.split_whitespace().collect();
        let mut out = Vec::new();
        base64_decode(&compact, &mut out);
        let mut s = String::new();
        out.as_slice().read_to_string(&mut s).unwrap();
        s
    } else {
        body.to_string()
    }
}

fn decode_qp(body: &str) -> String {
    let joined = body.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn base64_decode(input: &str, out: &mut Vec<u8>) {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut buf = 0u32;
    let mut bits = 0;
    for c in input.bytes() {
        let Some(v) = ALPHABET.iter().position(|a| *a == c) else {
            continue;
        };
        buf = (buf << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
}

/// The password line of a password email ("    <password>" after "password for").
pub fn password_in(data: &str) -> String {
    let text = text_part(data);
    let mut lines = text
        .lines()
        .skip_while(|l| !l.contains("here is your new password"));
    lines.next();
    lines
        .find(|l| !l.trim().is_empty())
        .expect("password line")
        .trim()
        .to_string()
}
