//! A mail server's address (`smtp_url`): the one parser `check-config` and
//! `serve` share, so what one accepts the other does too.

/// How the connection to the mail server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP (`smtp://`).
    None,
    /// STARTTLS, refusing to send without it (`smtp://…?tls=required`).
    Required,
    /// STARTTLS when the server offers it (`smtp://…?tls=opportunistic`).
    Opportunistic,
    /// TLS from the first byte (`smtps://`).
    Wrapper,
}

/// A mail server's address: the one parser `check-config` and `serve` share, so
/// what one accepts the other does too.
#[derive(Debug, Clone)]
pub struct SmtpUrl {
    pub url: url::Url,
    pub host: String,
    pub tls: SmtpTls,
}

impl SmtpUrl {
    /// Parses `smtp://[user:password@]host[:port][?tls=required|opportunistic]` or
    /// `smtps://…`; the reason when it is not one.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = url::Url::parse(raw).map_err(|_| "not a URL".to_string())?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("the URL names no host")?
            .to_string();
        let mut tls = None;
        for (key, value) in url.query_pairs() {
            match (key.as_ref(), tls) {
                ("tls", None) => tls = Some(value.into_owned()),
                ("tls", Some(_)) => return Err("tls= is given twice".into()),
                (other, _) => {
                    return Err(format!("unknown parameter {other:?} (only tls= is known)"));
                }
            }
        }
        let tls = match (url.scheme(), tls.as_deref()) {
            ("smtp", None) => SmtpTls::None,
            ("smtp", Some("required")) => SmtpTls::Required,
            ("smtp", Some("opportunistic")) => SmtpTls::Opportunistic,
            ("smtps", None | Some("required")) => SmtpTls::Wrapper,
            ("smtp", Some(other)) => {
                return Err(format!(
                    "tls={other} is not known: use tls=required or tls=opportunistic"
                ));
            }
            ("smtps", Some(_)) => {
                return Err("smtps:// is TLS from the first byte: leave tls= out".into());
            }
            _ => return Err("expected an smtp:// or smtps:// URL".into()),
        };
        Ok(Self { url, host, tls })
    }

    /// The user and password in the URL (percent-decoded), if it names a user.
    pub fn credentials(&self) -> Option<(String, String)> {
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        (!self.url.username().is_empty()).then(|| {
            (
                decode(self.url.username()),
                decode(self.url.password().unwrap_or("")),
            )
        })
    }

    /// The port in the URL, else the usual one for its kind of TLS.
    pub fn port(&self) -> u16 {
        self.url.port().unwrap_or(match self.tls {
            SmtpTls::None => 25,
            SmtpTls::Required | SmtpTls::Opportunistic => 587,
            SmtpTls::Wrapper => 465,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_are_parsed_once_for_every_command() {
        let tls = |raw| SmtpUrl::parse(raw).map(|u| u.tls);
        assert_eq!(tls("smtp://mail.example"), Ok(SmtpTls::None));
        assert_eq!(
            tls("smtp://u:p@mail.example:587?tls=required"),
            Ok(SmtpTls::Required)
        );
        assert_eq!(
            tls("smtp://mail.example?tls=opportunistic"),
            Ok(SmtpTls::Opportunistic)
        );
        assert_eq!(tls("smtps://mail.example"), Ok(SmtpTls::Wrapper));
        for bad in [
            "smtp://mail.example?tls=maybe",
            "smtp://mail.example?tls=required&tls=required",
            "smtp://mail.example?ssl=1",
            "smtps://mail.example?tls=opportunistic",
            "http://mail.example",
            "smtp://",
        ] {
            assert!(SmtpUrl::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
