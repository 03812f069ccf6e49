//! The gRPC health service of `serve` (`grpc.health.v1.Health/Check`), on the HTTP port, for
//! gRPC probes.
//!
//! Hand-written like the rest of the app (no gRPC or protobuf crate): the request and the
//! response have one field each. It answers as grpc-go's health server: the empty service
//! name and the app's own name report the app's health (what /healthz reports), any other
//! name fails with NOT_FOUND `unknown service`. HTTP/2 only (h2c, the same port); nothing
//! here decides anything about the app's state.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};

use crate::http::{self, App, NAME_HEADER};

/// The path of the health check call.
pub const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// The largest request read; a health check request is a service name.
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// `HealthCheckResponse.ServingStatus` values sent.
const SERVING: u8 = 1;
const NOT_SERVING: u8 = 2;

/// gRPC status codes sent.
const NOT_FOUND: u32 = 5;
const INTERNAL: u32 = 13;

/// The body of a gRPC response: the message, then the trailers; neither for a
/// "Trailers-Only" response, whose headers end the stream and carry the status.
pub struct GrpcBody {
    /// The framed message, until sent.
    message: Option<Bytes>,
    /// The trailers, until sent.
    trailers: Option<HeaderMap>,
}

impl Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(message) = this.message.take() {
            return Poll::Ready(Some(Ok(Frame::data(message))));
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.message.is_none() && self.trailers.is_none()
    }
}

/// Answers one `Check` call. Requests that are not gRPC get a plain HTTP error, as grpc-go's
/// server gives them.
pub async fn check(app: &App, request: Request<Incoming>) -> Response<http::Body> {
    if request.version() != Version::HTTP_2 {
        let message = "gRPC requires HTTP/2 (h2c with prior knowledge)".to_owned();
        return http::text(app, StatusCode::BAD_REQUEST, message).map(Either::Left);
    }
    if request.method() != Method::POST {
        let message = "gRPC requires POST".to_owned();
        return http::text(app, StatusCode::METHOD_NOT_ALLOWED, message).map(Either::Left);
    }
    let content_type = request.headers().get(CONTENT_TYPE);
    if !content_type.is_some_and(|v| is_grpc_content_type(v.as_bytes())) {
        let message = "invalid gRPC request content-type".to_owned();
        return http::text(app, StatusCode::UNSUPPORTED_MEDIA_TYPE, message).map(Either::Left);
    }
    let body = match Limited::new(request.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            let message = format!("grpc: error while reading request: {error}");
            return error_response(app, INTERNAL, &message);
        }
    };
    let service = match decode_request(&body) {
        Ok(service) => service,
        Err(message) => return error_response(app, INTERNAL, &message),
    };
    if !service.is_empty() && service != app.recorder.name() {
        return error_response(app, NOT_FOUND, "unknown service");
    }
    let status = if app.healthy() { SERVING } else { NOT_SERVING };
    serving_response(app, status)
}

/// `application/grpc`, optionally followed by `+subtype` or `;parameters`.
fn is_grpc_content_type(value: &[u8]) -> bool {
    matches!(
        value.strip_prefix(b"application/grpc"),
        Some([] | [b'+' | b';', ..])
    )
}

/// The `service` of the one framed `HealthCheckRequest` in `body` (field 1, a string; other
/// fields are skipped), or the status message of why it cannot be read.
fn decode_request(body: &[u8]) -> Result<String, String> {
    const INVALID: &str = "grpc: error unmarshalling request: proto: cannot parse invalid \
                           wire-format data";
    let [flag, l0, l1, l2, l3, message @ ..] = body else {
        return Err("grpc: error while reading request: unexpected EOF".to_owned());
    };
    match flag {
        0 => {}
        1 => return Err("grpc: compressed flag set with identity or empty encoding".to_owned()),
        other => return Err(format!("grpc: received unexpected payload format {other}")),
    }
    let length = u32::from_be_bytes([*l0, *l1, *l2, *l3]) as usize;
    if message.len() != length {
        return Err(format!(
            "grpc: expected one request message of {length} bytes, got {} bytes",
            message.len()
        ));
    }
    let mut service = String::new();
    let mut rest = message;
    while !rest.is_empty() {
        let key = take_varint(&mut rest).ok_or(INVALID)?;
        match key & 7 {
            0 => {
                take_varint(&mut rest).ok_or(INVALID)?;
            }
            1 => rest = rest.get(8..).ok_or(INVALID)?,
            2 => {
                let length =
                    usize::try_from(take_varint(&mut rest).ok_or(INVALID)?).map_err(|_| INVALID)?;
                let value = rest.get(..length).ok_or(INVALID)?;
                if key >> 3 == 1 {
                    service = String::from_utf8(value.to_vec()).map_err(|_| {
                        "grpc: error unmarshalling request: proto: field \
                         grpc.health.v1.HealthCheckRequest.service contains invalid UTF-8"
                            .to_owned()
                    })?;
                }
                rest = &rest[length..];
            }
            5 => rest = rest.get(4..).ok_or(INVALID)?,
            _ => return Err(INVALID.to_owned()),
        }
    }
    Ok(service)
}

/// Reads a protobuf varint off the front of `buf`.
fn take_varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, &byte) in buf.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Some(value);
        }
    }
    None
}

/// A successful call: `HealthCheckResponse { status }` (field 1, a varint; the values sent
/// are never 0, which proto3 would omit), then `grpc-status: 0`.
fn serving_response(app: &App, status: u8) -> Response<http::Body> {
    let message = Bytes::from(vec![0, 0, 0, 0, 2, 0x08, status]);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    grpc_response(
        app,
        GrpcBody {
            message: Some(message),
            trailers: Some(trailers),
        },
    )
}

/// A failed call as a Trailers-Only response: the status in the headers, which end the
/// stream.
fn error_response(app: &App, code: u32, message: &str) -> Response<http::Body> {
    let mut response = grpc_response(
        app,
        GrpcBody {
            message: None,
            trailers: None,
        },
    );
    let headers = response.headers_mut();
    headers.insert("grpc-status", HeaderValue::from(code));
    // Percent-encoding leaves printable ASCII only, always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&encode_grpc_message(message)) {
        headers.insert("grpc-message", value);
    }
    response
}

/// A 200 response with the gRPC content type and the name header.
fn grpc_response(app: &App, body: GrpcBody) -> Response<http::Body> {
    let mut response = Response::new(Either::Right(body));
    let headers = response.headers_mut();
    headers.insert(NAME_HEADER, app.name_header.clone());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    response
}

/// gRPC's `grpc-message` encoding: bytes outside printable ASCII, and `%`, as `%XX`.
fn encode_grpc_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for &byte in message.as_bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_decode() {
        assert_eq!(decode_request(b"\x00\x00\x00\x00\x00"), Ok(String::new()));
        assert_eq!(
            decode_request(b"\x00\x00\x00\x00\x05\x0a\x03web"),
            Ok("web".to_owned())
        );
        // Unknown fields are skipped.
        assert_eq!(
            decode_request(b"\x00\x00\x00\x00\x07\x10\x01\x0a\x03web"),
            Ok("web".to_owned())
        );
        for bad in [
            &b""[..],
            b"\x00\x00\x00",
            b"\x01\x00\x00\x00\x00",
            b"\x00\x00\x00\x00\x05\x0a\x03we",
            b"\x00\x00\x00\x00\x03\x0a\x05web",
            b"\x00\x00\x00\x00\x02\x0a\x01\xff",
        ] {
            assert!(decode_request(bad).is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(encode_grpc_message("unknown service"), "unknown service");
        assert_eq!(encode_grpc_message("100% é"), "100%25 %C3%A9");
    }
}
