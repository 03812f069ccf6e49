//! The part of Go's `net/url` that upstream's request building and redirect handling rely on.
//!
//! The kubelet builds an httpGet URL with `url.Parse(path)`, overwrites its scheme and host,
//! renders it with `URL.String()` and parses that again in `http.NewRequest`. The rendered
//! string is what users see in events and error messages (`Get "http://…": …`), and the
//! parsed one decides what goes on the wire. Porting the few functions involved keeps both
//! identical to upstream, including the odd cases ("foo#frag", "%zz", "a:b").
//!
//! Paths, queries and fragments are treated as bytes, as Go strings are; a decoded path may
//! hold bytes that are not UTF-8 (`%ff`).

use std::fmt;

/// A URL as Go's `url.URL` holds it (the fields that matter here).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GoUrl {
    /// Lower-cased scheme, without the colon; empty for a relative reference.
    pub scheme: String,
    /// Encoded opaque data (`scheme:opaque`), set when the part after the scheme is rootless.
    pub opaque: String,
    /// Raw user information before the `@`, kept only so the URL renders as Go renders it.
    pub user: Option<String>,
    /// `host` or `host:port`, IPv6 addresses in brackets.
    pub host: String,
    /// The URL had a scheme and a path but an empty authority (`http:/x`).
    pub omit_host: bool,
    /// Decoded path.
    pub path: Vec<u8>,
    /// The path as written, when that differs from the default encoding of `path`.
    pub raw_path: String,
    /// A `?` with nothing after it was written.
    pub force_query: bool,
    /// Encoded query, without the `?`.
    pub raw_query: String,
    /// Decoded fragment, without the `#`.
    pub fragment: Vec<u8>,
    /// The fragment as written, when that differs from the default encoding of `fragment`.
    pub raw_fragment: String,
}

/// Which part of a URL a byte is escaped for (Go's `encoding`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Fragment,
}

impl GoUrl {
    /// Go's `url.Parse`. The error reads like Go's `*url.Error`: `parse "raw": reason`.
    pub fn parse(raw: &str) -> Result<GoUrl, String> {
        let (before_fragment, fragment) = match raw.split_once('#') {
            Some((u, f)) => (u, Some(f)),
            None => (raw, None),
        };
        let mut url =
            parse_reference(before_fragment).map_err(|e| parse_error(before_fragment, &e))?;
        if let Some(fragment) = fragment.filter(|f| !f.is_empty()) {
            let decoded = unescape(fragment, Mode::Fragment).map_err(|e| parse_error(raw, &e))?;
            url.raw_fragment = if escape(&decoded, Mode::Fragment) == fragment {
                String::new()
            } else {
                fragment.to_owned()
            };
            url.fragment = decoded;
        }
        Ok(url)
    }

    /// Go's `URL.Hostname`: the host without port and brackets.
    pub fn hostname(&self) -> &str {
        split_host_port(&self.host).0
    }

    /// Go's `URL.Port`: the port, or "" when the host has none.
    pub fn port(&self) -> &str {
        split_host_port(&self.host).1
    }

    /// Go's `URL.IsAbs`: whether the URL has a scheme.
    pub fn is_abs(&self) -> bool {
        !self.scheme.is_empty()
    }

    /// Go's `URL.EscapedPath`.
    pub fn escaped_path(&self) -> String {
        if !self.raw_path.is_empty()
            && valid_encoded(&self.raw_path, Mode::Path)
            && unescape(&self.raw_path, Mode::Path).is_ok_and(|p| p == self.path)
        {
            return self.raw_path.clone();
        }
        if self.path == b"*" {
            return "*".to_owned();
        }
        escape(&self.path, Mode::Path)
    }

    /// Go's `URL.EscapedFragment`.
    fn escaped_fragment(&self) -> String {
        if !self.raw_fragment.is_empty()
            && valid_encoded(&self.raw_fragment, Mode::Fragment)
            && unescape(&self.raw_fragment, Mode::Fragment).is_ok_and(|f| f == self.fragment)
        {
            return self.raw_fragment.clone();
        }
        escape(&self.fragment, Mode::Fragment)
    }

    /// Go's `URL.RequestURI`: the request target of an HTTP/1.1 request line.
    pub fn request_uri(&self) -> String {
        let mut result = if self.opaque.is_empty() {
            let path = self.escaped_path();
            if path.is_empty() {
                "/".to_owned()
            } else {
                path
            }
        } else if self.opaque.starts_with("//") {
            format!("{}:{}", self.scheme, self.opaque)
        } else {
            self.opaque.clone()
        };
        if self.force_query || !self.raw_query.is_empty() {
            result.push('?');
            result.push_str(&self.raw_query);
        }
        result
    }

    /// Go's `URL.ResolveReference` (what `URL.Parse` does with a Location header).
    pub fn resolve(&self, reference: &GoUrl) -> GoUrl {
        let mut url = reference.clone();
        if reference.scheme.is_empty() {
            url.scheme = self.scheme.clone();
        }
        if !reference.scheme.is_empty() || !reference.host.is_empty() || reference.user.is_some() {
            // The "absoluteURI" or "net_path" cases.
            url.set_path(&resolve_path(&reference.escaped_path(), ""));
            return url;
        }
        if !reference.opaque.is_empty() {
            url.user = None;
            url.host = String::new();
            url.path = Vec::new();
            return url;
        }
        if reference.path.is_empty() && !reference.force_query && reference.raw_query.is_empty() {
            url.raw_query = self.raw_query.clone();
            if reference.fragment.is_empty() {
                url.fragment = self.fragment.clone();
                url.raw_fragment = self.raw_fragment.clone();
            }
        }
        if reference.path.is_empty() && !self.opaque.is_empty() {
            url.opaque = self.opaque.clone();
            url.user = None;
            url.host = String::new();
            url.path = Vec::new();
            return url;
        }
        // The "abs_path" or "rel_path" cases.
        url.host = self.host.clone();
        url.user = self.user.clone();
        url.set_path(&resolve_path(
            &self.escaped_path(),
            &reference.escaped_path(),
        ));
        url
    }

    /// Go's `URL.setPath` for a path known to be validly escaped.
    fn set_path(&mut self, escaped: &str) {
        // Only called with the output of `escaped_path`/`resolve_path`, which always decodes.
        let path = unescape(escaped, Mode::Path).unwrap_or_else(|_| escaped.as_bytes().to_vec());
        self.raw_path = if escape(&path, Mode::Path) == escaped {
            String::new()
        } else {
            escaped.to_owned()
        };
        self.path = path;
    }
}

impl fmt::Display for GoUrl {
    /// Go's `URL.String`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = String::new();
        if !self.scheme.is_empty() {
            buf.push_str(&self.scheme);
            buf.push(':');
        }
        if !self.opaque.is_empty() {
            buf.push_str(&self.opaque);
        } else {
            let has_authority =
                !self.scheme.is_empty() || !self.host.is_empty() || self.user.is_some();
            let omit_empty_host = self.omit_host && self.host.is_empty() && self.user.is_none();
            if has_authority && !omit_empty_host {
                if !self.host.is_empty() || !self.path.is_empty() || self.user.is_some() {
                    buf.push_str("//");
                }
                if let Some(user) = &self.user {
                    buf.push_str(user);
                    buf.push('@');
                }
                buf.push_str(&escape(self.host.as_bytes(), Mode::Host));
            }
            let path = self.escaped_path();
            if !path.is_empty() && !path.starts_with('/') && !self.host.is_empty() {
                buf.push('/');
            }
            if buf.is_empty() {
                // RFC 3986 §4.2: a first segment with a colon would read as a scheme.
                let segment = path.split('/').next().unwrap_or_default();
                if segment.contains(':') {
                    buf.push_str("./");
                }
            }
            buf.push_str(&path);
        }
        if self.force_query || !self.raw_query.is_empty() {
            buf.push('?');
            buf.push_str(&self.raw_query);
        }
        if !self.fragment.is_empty() {
            buf.push('#');
            buf.push_str(&self.escaped_fragment());
        }
        f.write_str(&buf)
    }
}

/// Upstream's `formatURL(scheme, host, port, path)` (pkg/probe/http/request.go): parse the
/// path as a URL reference (or keep it as a plain path when it does not parse), then set the
/// scheme and `JoinHostPort(host, port)`.
pub(crate) fn format_url(scheme: &str, host: &str, port: u16, path: &str) -> GoUrl {
    let mut url = GoUrl::parse(path).unwrap_or_else(|_| GoUrl {
        path: path.as_bytes().to_vec(),
        ..GoUrl::default()
    });
    url.scheme = scheme.to_owned();
    url.host = join_host_port(host, &port.to_string());
    url
}

/// Go's `net.JoinHostPort`: brackets a host that contains a colon.
pub(crate) fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Quotes a string the way Go's `%q` does for the strings met here.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn parse_error(raw: &str, reason: &str) -> String {
    format!("parse {}: {reason}", go_quote(raw))
}

/// Go's unexported `parse(rawURL, viaRequest=false)`: everything but the fragment.
fn parse_reference(raw: &str) -> Result<GoUrl, String> {
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("net/url: invalid control character in URL".to_owned());
    }
    let mut url = GoUrl::default();
    if raw == "*" {
        url.path = b"*".to_vec();
        return Ok(url);
    }
    let (scheme, rest) = get_scheme(raw)?;
    url.scheme = scheme.to_ascii_lowercase();
    let mut rest = rest;
    if rest.ends_with('?') && rest.matches('?').count() == 1 {
        url.force_query = true;
        rest = &rest[..rest.len() - 1];
    } else if let Some((before, query)) = rest.split_once('?') {
        url.raw_query = query.to_owned();
        rest = before;
    }
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            // Rootless paths after a scheme are opaque (RFC 3986).
            url.opaque = rest.to_owned();
            return Ok(url);
        }
        let segment = rest.split('/').next().unwrap_or_default();
        if segment.contains(':') {
            return Err("first path segment in URL cannot contain colon".to_owned());
        }
    }
    if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let authority = &rest[2..];
        let (authority, path) = match authority.find('/') {
            Some(i) => (&authority[..i], &authority[i..]),
            None => (authority, ""),
        };
        let (user, host) = parse_authority(authority)?;
        url.user = user;
        url.host = host;
        rest = path;
    } else if !url.scheme.is_empty() && rest.starts_with('/') {
        url.omit_host = true;
    }
    url.path = unescape(rest, Mode::Path)?;
    url.raw_path = if escape(&url.path, Mode::Path) == rest {
        String::new()
    } else {
        rest.to_owned()
    };
    Ok(url)
}

/// Go's `getScheme`: splits a leading `scheme:` off, if there is a valid one.
fn get_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' => {
                if i == 0 {
                    return Ok(("", raw));
                }
            }
            b':' => {
                if i == 0 {
                    return Err("missing protocol scheme".to_owned());
                }
                return Ok((&raw[..i], &raw[i + 1..]));
            }
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// Go's `parseAuthority`, keeping the user information raw.
fn parse_authority(authority: &str) -> Result<(Option<String>, String), String> {
    match authority.rfind('@') {
        None => Ok((None, parse_host(authority)?)),
        Some(i) => {
            let host = parse_host(&authority[i + 1..])?;
            let user = &authority[..i];
            if !user.bytes().all(valid_userinfo_byte) {
                return Err("net/url: invalid userinfo".to_owned());
            }
            Ok((Some(user.to_owned()), host))
        }
    }
}

fn valid_userinfo_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._:~!$&'()*+,;=%@".contains(&b)
}

/// Go's `parseHost`, without IPv6 zone decoding (a zone is kept as written).
fn parse_host(host: &str) -> Result<String, String> {
    if host.starts_with('[') {
        let Some(close) = host.rfind(']') else {
            return Err("missing ']' in host".to_owned());
        };
        let colon_port = &host[close + 1..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {} after host", go_quote(colon_port)));
        }
        return Ok(host.to_owned());
    }
    if let Some(i) = host.rfind(':') {
        let colon_port = &host[i..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {} after host", go_quote(colon_port)));
        }
    }
    let decoded = unescape(host, Mode::Host)?;
    Ok(String::from_utf8_lossy(&decoded).into_owned())
}

/// Go's `validOptionalPort`: "" or ":" followed by digits.
fn valid_optional_port(port: &str) -> bool {
    if port.is_empty() {
        return true;
    }
    match port.strip_prefix(':') {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// Go's unexported `splitHostPort` (used by `Hostname` and `Port`).
fn split_host_port(host_port: &str) -> (&str, &str) {
    let mut host = host_port;
    let mut port = "";
    if let Some(colon) = host.rfind(':')
        && valid_optional_port(&host[colon..])
    {
        port = &host[colon + 1..];
        host = &host[..colon];
    }
    if host.len() >= 2 && host.starts_with('[') && host.ends_with(']') {
        host = &host[1..host.len() - 1];
    }
    (host, port)
}

/// Go's `resolvePath`: merges a reference path into a base path and removes dot segments.
fn resolve_path(base: &str, reference: &str) -> String {
    let full = if reference.is_empty() {
        base.to_owned()
    } else if !reference.starts_with('/') {
        let keep = base.rfind('/').map_or(0, |i| i + 1);
        format!("{}{}", &base[..keep], reference)
    } else {
        reference.to_owned()
    };
    if full.is_empty() {
        return String::new();
    }
    let mut dst = String::from("/");
    let mut first = true;
    let mut last = "";
    for elem in full.split('/') {
        last = elem;
        match elem {
            "." => first = false,
            ".." => {
                let written = dst[1..].to_owned();
                dst = String::from("/");
                match written.rfind('/') {
                    Some(index) => dst.push_str(&written[..index]),
                    None => first = true,
                }
            }
            _ => {
                if !first {
                    dst.push('/');
                }
                dst.push_str(elem);
                first = false;
            }
        }
    }
    if last == "." || last == ".." {
        dst.push('/');
    }
    if dst.len() > 1 && dst.as_bytes()[1] == b'/' {
        dst.remove(0);
    }
    dst
}

/// Go's `shouldEscape` for the modes used here.
fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if mode == Mode::Host && b"!$&'()*+,;=:[]<>\"".contains(&c) {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => return false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            Mode::Path => return c == b'?',
            Mode::Fragment => return false,
            Mode::Host => {}
        },
        _ => {}
    }
    if mode == Mode::Fragment && b"!()*".contains(&c) {
        return false;
    }
    true
}

/// Go's `escape` for the modes used here.
fn escape(s: &[u8], mode: Mode) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &c in s {
        if should_escape(c, mode) {
            out.push('%');
            out.push(HEX[usize::from(c >> 4)] as char);
            out.push(HEX[usize::from(c & 15)] as char);
        } else {
            out.push(c as char);
        }
    }
    out
}

/// Go's `unescape` for the modes used here; errors read like Go's.
fn unescape(s: &str, mode: Mode) -> Result<Vec<u8>, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) {
                    // In a host, %-encoding is only allowed for non-ASCII bytes, and "%25"
                    // for IPv6 zones (RFC 3986 §3.2.2, RFC 6874).
                    (Some(hi), Some(_))
                        if mode == Mode::Host && hi < 8 && &s[i..i + 3] != "%25" =>
                    {
                        return Err(format!("invalid URL escape {}", go_quote(&s[i..i + 3])));
                    }
                    (Some(hi), Some(lo)) => {
                        // Both digits are below 16, so the byte fits.
                        out.push(((hi << 4) | lo) as u8);
                        i += 3;
                    }
                    _ => {
                        let end = (i + 3).min(bytes.len());
                        let bad = String::from_utf8_lossy(&bytes[i..end]);
                        return Err(format!("invalid URL escape {}", go_quote(&bad)));
                    }
                }
            }
            c => {
                if mode == Mode::Host && c < 0x80 && should_escape(c, mode) {
                    return Err(format!(
                        "invalid character {} in host name",
                        go_quote(&(c as char).to_string())
                    ));
                }
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Go's `validEncoded`: whether `s` is a valid encoding for `mode` as written.
fn valid_encoded(s: &str, mode: Mode) -> bool {
    s.bytes()
        .all(|c| b"!$&'()*+,;=:@[]%".contains(&c) || !should_escape(c, mode))
}
