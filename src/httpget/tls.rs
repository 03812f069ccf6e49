//! TLS for httpGet hooks and probes: like upstream's `tls.Config{InsecureSkipVerify: true}`.
//!
//! The server's certificate chain and name are not verified (the kubelet has nothing to verify
//! them against), but the handshake itself is checked: the server must prove it holds the key
//! of the certificate it sent, with the signature algorithms of the ring provider, as Go does
//! when it skips verification.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{AlertDescription, ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::error::Cause;

/// How many leading bytes of the server's answer are kept to recognise a plain-HTTP answer.
const SNIFF_LEN: usize = 5;

/// Performs the TLS handshake over `tcp` for a URL whose host name is `hostname`.
///
/// SNI is sent when `hostname` is a DNS name, not for IP addresses (as Go does).
pub(super) async fn handshake(
    tcp: TcpStream,
    hostname: &str,
) -> Result<TlsStream<Sniff<TcpStream>>, Cause> {
    let config = client_config().map_err(|e| Cause::Tls(format!("tls: {e}")))?;
    let server_name = match ServerName::try_from(hostname.to_owned()) {
        Ok(name) => name,
        // Not a name rustls can put into SNI: connect without SNI, as for an IP address.
        // The name is not verified, so which placeholder is used does not matter.
        Err(_) => ServerName::IpAddress(IpAddr::V4(Ipv4Addr::UNSPECIFIED).into()),
    };
    let connector = TlsConnector::from(config);
    match connector
        .connect(server_name, Sniff::new(tcp))
        .into_fallible()
        .await
    {
        Ok(stream) => Ok(stream),
        Err((error, io)) => Err(handshake_error(&error, io.first_bytes())),
    }
}

/// The client configuration shared by every request (built once).
fn client_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, rustls::Error>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = SkipVerification {
                algorithms: provider.signature_verification_algorithms,
            };
            let mut config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth();
            // Go's default client keeps no session cache; neither do we.
            config.resumption = rustls::client::Resumption::disabled();
            Ok(Arc::new(config))
        })
        .clone()
}

/// Maps a failed handshake to Go's wording.
///
/// `first` holds the first bytes the server sent. Go's `http.Client` turns a TLS record
/// header reading `HTTP/` into "server gave HTTP response to HTTPS client", and any other
/// record that is neither a handshake nor an alert into "first record does not look like a
/// TLS handshake".
fn handshake_error(error: &io::Error, first: &[u8]) -> Cause {
    if first == b"HTTP/" {
        return Cause::SchemeMismatch;
    }
    if let Some(&byte) = first.first()
        && byte != 0x15
        && byte != 0x16
    {
        return Cause::Tls("tls: first record does not look like a TLS handshake".to_owned());
    }
    if let Some(tls) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        return Cause::Tls(match tls {
            rustls::Error::AlertReceived(alert) => {
                format!("remote error: tls: {}", alert_text(*alert))
            }
            other => format!("tls: {}", lowercase_first(&other.to_string())),
        });
    }
    Cause::Tls(match error.kind() {
        io::ErrorKind::UnexpectedEof => "EOF".to_owned(),
        _ => lowercase_first(&error.to_string()),
    })
}

/// Go's `tls.alert` texts for the alerts a server is likely to send.
fn alert_text(alert: AlertDescription) -> String {
    let text = match alert {
        AlertDescription::CloseNotify => "close notify",
        AlertDescription::UnexpectedMessage => "unexpected message",
        AlertDescription::BadRecordMac => "bad record MAC",
        AlertDescription::RecordOverflow => "record overflow",
        AlertDescription::HandshakeFailure => "handshake failure",
        AlertDescription::BadCertificate => "bad certificate",
        AlertDescription::UnsupportedCertificate => "unsupported certificate",
        AlertDescription::CertificateRevoked => "revoked certificate",
        AlertDescription::CertificateExpired => "expired certificate",
        AlertDescription::CertificateUnknown => "unknown certificate",
        AlertDescription::IllegalParameter => "illegal parameter",
        AlertDescription::UnknownCA => "unknown certificate authority",
        AlertDescription::AccessDenied => "access denied",
        AlertDescription::DecodeError => "error decoding message",
        AlertDescription::DecryptError => "error decrypting message",
        AlertDescription::ProtocolVersion => "protocol version not supported",
        AlertDescription::InsufficientSecurity => "insufficient security level",
        AlertDescription::InternalError => "internal error",
        AlertDescription::InappropriateFallback => "inappropriate fallback",
        AlertDescription::UserCanceled => "user canceled",
        AlertDescription::NoRenegotiation => "no renegotiation",
        AlertDescription::MissingExtension => "missing extension",
        AlertDescription::UnsupportedExtension => "unsupported extension",
        AlertDescription::UnrecognisedName => "unrecognized name",
        AlertDescription::NoApplicationProtocol => "no application protocol",
        AlertDescription::CertificateRequired => "certificate required",
        other => return format!("alert({})", u8::from(other)),
    };
    text.to_owned()
}

/// Lower-cases the first character, turning Rust's "Connection refused" into Go's style.
pub(super) fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Accepts any certificate but checks handshake signatures (Go's `InsecureSkipVerify`).
#[derive(Debug)]
struct SkipVerification {
    /// The ring provider's signature verification algorithms.
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for SkipVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A stream that remembers the first bytes read from it, to recognise a server that
/// answers a TLS ClientHello in plain HTTP.
#[derive(Debug)]
pub(super) struct Sniff<T> {
    /// The wrapped stream.
    inner: T,
    /// The first bytes read, up to [`SNIFF_LEN`].
    first: [u8; SNIFF_LEN],
    /// How many bytes of `first` are filled.
    len: usize,
}

impl<T> Sniff<T> {
    fn new(inner: T) -> Self {
        Sniff {
            inner,
            first: [0; SNIFF_LEN],
            len: 0,
        }
    }

    /// The first bytes read so far (at most [`SNIFF_LEN`]).
    fn first_bytes(&self) -> &[u8] {
        &self.first[..self.len]
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Sniff<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if this.len < SNIFF_LEN {
            let new = &buf.filled()[before..];
            let n = new.len().min(SNIFF_LEN - this.len);
            this.first[this.len..this.len + n].copy_from_slice(&new[..n]);
            this.len += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Sniff<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
