//! Building the request: upstream's `NewRequestForHTTPGetAction` and `newProbeRequest`
//! (pkg/probe/http/request.go), with Go's `http.Header` semantics.

use super::error::HttpGetError;
use super::url::{GoUrl, format_url};
use super::{HttpGetRequest, Kind};

/// A request ready to send: the parsed URL, the Host override and the header set.
#[derive(Debug, Clone)]
pub(super) struct Prepared {
    /// The URL, as `http.NewRequest` parses the rendered string.
    pub url: GoUrl,
    /// The URL rendered as Go renders it (used in error messages).
    pub url_string: String,
    /// Go's `req.Host`: the first `Host` header value, or "" to use the URL's host.
    pub host: String,
    /// Headers, including the defaults (User-Agent, Accept).
    pub header: Header,
}

impl Prepared {
    /// Builds the request the way upstream does for an httpGet handler.
    pub fn new(req: &HttpGetRequest) -> Result<Prepared, HttpGetError> {
        let url_string = request_url(req).to_string();
        // Go renders the URL and parses it again in `http.NewRequest`; do the same, so the
        // request that is sent is exactly the one upstream would send.
        let url =
            GoUrl::parse(&url_string).map_err(|message| HttpGetError::InvalidUrl { message })?;

        let mut header = Header::default();
        for (name, value) in &req.headers {
            header.add(name, value);
        }
        if !header.has("User-Agent") {
            header.set("User-Agent", &req.kind.user_agent());
        }
        match header.get("Accept") {
            None => header.set("Accept", "*/*"),
            // An Accept header that is present but empty removes the default.
            Some("") => header.del("Accept"),
            Some(_) => {}
        }
        let host = header.get("Host").unwrap_or_default().to_owned();
        Ok(Prepared {
            url,
            url_string,
            host,
            header,
        })
    }

    /// The retry of upstream's HTTPS→HTTP fallback for hooks: the same request over plain
    /// HTTP, without the `Authorization` header.
    pub fn http_fallback(&self) -> Prepared {
        let mut retry = self.clone();
        retry.url.scheme = "http".to_owned();
        retry.url_string = retry.url.to_string();
        retry.header.del("Authorization");
        retry
    }
}

/// Upstream's URL for an httpGet action: scheme lower-cased ("" means http), then
/// `formatURL(scheme, host, port, path)`.
pub(super) fn request_url(req: &HttpGetRequest) -> GoUrl {
    let scheme = match req.scheme.to_ascii_lowercase() {
        s if s.is_empty() => "http".to_owned(),
        s => s,
    };
    format_url(&scheme, &req.host, req.port, &req.path)
}

/// Go's `http.Header`: canonical names, each with its values in the order added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Header {
    /// Canonical name and values, in the order the names were first added.
    entries: Vec<(String, Vec<String>)>,
}

impl Header {
    /// Go's `Header.Add`.
    pub fn add(&mut self, name: &str, value: &str) {
        let key = canonical_key(name);
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(value.to_owned()),
            None => self.entries.push((key, vec![value.to_owned()])),
        }
    }

    /// Go's `Header.Set`.
    pub fn set(&mut self, name: &str, value: &str) {
        let key = canonical_key(name);
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => *values = vec![value.to_owned()],
            None => self.entries.push((key, vec![value.to_owned()])),
        }
    }

    /// Go's `Header.Get`: the first value, `None` when the name is absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        let key = canonical_key(name);
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, values)| values.first())
            .map(String::as_str)
    }

    /// Whether the name is present (even with an empty value).
    pub fn has(&self, name: &str) -> bool {
        let key = canonical_key(name);
        self.entries.iter().any(|(k, _)| *k == key)
    }

    /// Go's `Header.Del`.
    pub fn del(&mut self, name: &str) {
        let key = canonical_key(name);
        self.entries.retain(|(k, _)| *k != key);
    }

    /// Entries sorted by name, the order in which Go writes headers.
    pub fn sorted(&self) -> Vec<(&str, &[String])> {
        let mut entries: Vec<(&str, &[String])> = self
            .entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        entries
    }
}

/// Go's `textproto.CanonicalMIMEHeaderKey`: "x-forwarded-for" → "X-Forwarded-For". Names
/// with bytes that are not token characters are returned unchanged.
pub(super) fn canonical_key(name: &str) -> String {
    if !name.bytes().all(is_token_byte) {
        return name.to_owned();
    }
    let mut upper = true;
    name.bytes()
        .map(|b| {
            let c = if upper {
                b.to_ascii_uppercase()
            } else {
                b.to_ascii_lowercase()
            };
            upper = c == b'-';
            char::from(c)
        })
        .collect()
}

/// RFC 7230 token characters (Go's `validHeaderFieldByte`).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Kind {
    /// The default User-Agent: `kube-lifecycle/1.32` for hooks, `kube-probe/1.32` for probes.
    pub fn user_agent(self) -> String {
        let purpose = match self {
            Kind::Hook => "lifecycle",
            Kind::Probe => "probe",
        };
        format!("kube-{purpose}/{}", super::KUBE_VERSION)
    }
}
