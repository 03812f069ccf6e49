//! Errors of an HTTP GET, worded like Go's `net/http` so users recognise them.
//!
//! Upstream puts these texts verbatim into probe events (`Liveness probe failed: Get
//! "http://…": dial tcp …: connect: connection refused`) and into hook failure messages, and
//! users search for them. That is why the outer message starts with Go's capitalised `Get`
//! (the `Op` of Go's `*url.Error`), an exception to the lowercase rule for error messages.

use super::HttpGetResponse;
use super::url::go_quote;

/// Why an HTTP GET did not produce a complete response.
#[derive(Debug, thiserror::Error)]
pub enum HttpGetError {
    /// The URL built from the request does not parse (Go's `http.NewRequest` failing).
    /// The message reads `parse "URL": reason`.
    #[error("{message}")]
    InvalidUrl {
        /// Go's `*url.Error` text for the parse failure.
        message: String,
    },
    /// No response header arrived: dial, TLS, protocol, redirect or timeout failure.
    /// The message reads `Get "URL": cause`, plus Go's note when the timeout fired.
    #[error("Get {}: {cause}{}", go_quote(.url), timeout_note(.timed_out))]
    Request {
        /// The URL of the request that failed (after redirects, the redirect target; for
        /// "stopped after 10 redirects", the Location as written, as Go reports it).
        url: String,
        /// What went wrong.
        cause: Cause,
        /// The request's timeout fired; Go appends
        /// ` (Client.Timeout exceeded while awaiting headers)`.
        timed_out: bool,
    },
    /// The response header arrived but reading the body failed. Go reports the bare body
    /// error here (`unexpected EOF`), without the `Get "URL":` prefix.
    #[error("{cause}")]
    Body {
        /// The URL of the request whose body failed.
        url: String,
        /// The response as far as it was read.
        response: Box<HttpGetResponse>,
        /// What went wrong while reading the body.
        cause: BodyError,
    },
}

impl HttpGetError {
    /// Upstream's `isHTTPResponseError`: the server answered an HTTPS request in plain HTTP
    /// ("server gave HTTP response to HTTPS client"). Hooks retry such requests over HTTP.
    pub fn is_http_response_error(&self) -> bool {
        matches!(
            self,
            HttpGetError::Request {
                cause: Cause::SchemeMismatch,
                ..
            }
        )
    }
}

/// What made a request fail before a response header arrived, in Go's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Cause {
    /// The scheme is neither `http` nor `https` (upstream passes `baz` through to here).
    #[error("unsupported protocol scheme {}", go_quote(.0))]
    UnsupportedScheme(String),
    /// The URL has no host.
    #[error("http: no Host in request URL")]
    NoHost,
    /// A header name is not an HTTP token (the name as given, or in Go's canonical form).
    #[error("net/http: invalid header field name {}", go_quote(.0))]
    InvalidHeaderName(String),
    /// A header value holds a control character.
    #[error("net/http: invalid header field value for {}", go_quote(.0))]
    InvalidHeaderValue(String),
    /// The request target cannot be written on a request line. Go sends targets with spaces
    /// or quotes in the query as they are; the `http` crate refuses them, so this message is
    /// podvisor's own.
    #[error("invalid request target {}", go_quote(.0))]
    InvalidRequestTarget(String),
    /// The host name did not resolve.
    #[error("dial tcp: lookup {host}: {reason}")]
    Lookup {
        /// The name looked up.
        host: String,
        /// Go's wording: `no such host`, `i/o timeout`, …
        reason: String,
    },
    /// The URL's port is not a port number (only possible after a redirect).
    #[error("dial tcp: address {port}: invalid port")]
    InvalidPort {
        /// The port as written in the URL.
        port: String,
    },
    /// The TCP connection could not be made.
    #[error("dial tcp {addr}: {reason}")]
    Dial {
        /// The address dialled, `ip:port` (IPv6 bracketed).
        addr: String,
        /// Go's wording: `connect: connection refused`, `i/o timeout`, …
        reason: String,
    },
    /// The server answered an HTTPS request in plain HTTP.
    #[error("http: server gave HTTP response to HTTPS client")]
    SchemeMismatch,
    /// The TLS handshake failed (`tls: first record does not look like a TLS handshake`,
    /// `remote error: tls: handshake failure`, `EOF`, …).
    #[error("{0}")]
    Tls(String),
    /// The timeout fired after the connection was made and before the response header.
    #[error("context deadline exceeded")]
    DeadlineExceeded,
    /// The connection failed or the response was malformed (`EOF`, `read tcp …`, …).
    #[error("{0}")]
    Transport(String),
    /// Ten redirects were followed and the server asked for another.
    #[error("stopped after 10 redirects")]
    TooManyRedirects,
    /// A redirect's Location header does not parse as a URL.
    #[error("failed to parse Location header {}: {reason}", go_quote(.location))]
    BadLocation {
        /// The Location header as received.
        location: String,
        /// Go's `*url.Error` text.
        reason: String,
    },
}

/// What made reading a response body fail, in Go's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The connection closed before the announced body was complete.
    #[error("unexpected EOF")]
    UnexpectedEof,
    /// The request's timeout fired while the body was being read.
    #[error(
        "context deadline exceeded (Client.Timeout or context cancellation while reading body)"
    )]
    Timeout,
    /// The connection failed otherwise.
    #[error("{0}")]
    Transport(String),
}

/// Go's note on errors caused by `http.Client.Timeout`.
fn timeout_note(timed_out: &bool) -> &'static str {
    if *timed_out {
        " (Client.Timeout exceeded while awaiting headers)"
    } else {
        ""
    }
}
