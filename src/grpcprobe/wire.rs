//! The bytes of one health check and what grpc-go's client makes of them: gRPC message
//! framing, the two protobuf messages of `grpc.health.v1`, gRPC status codes, the checks of
//! grpc-go's HTTP/2 client transport (`http2_client.go` › `operateHeaders`) and of its unary
//! receive path (`rpc_util.go`, `stream.go`), and Go's formatting of durations.
//!
//! Pure: no IO, no tokio, no clock.

use std::fmt;
use std::num::IntErrorKind;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};

use crate::model::validation::go_quote;

/// The `:path` of the health check call.
pub(super) const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// grpc-go's default limit on a received message (`defaultClientMaxReceiveMessageSize`).
pub(super) const MAX_RECEIVE_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// The length of a gRPC message prefix: 1 byte compressed flag, 4 bytes big-endian length.
const PREFIX_BYTES: usize = 5;

/// `HealthCheckResponse.ServingStatus.SERVING`.
pub(super) const SERVING: i32 = 1;

/// gRPC status codes used here by number (`google.golang.org/grpc/codes`).
pub(super) mod code {
    pub const OK: u32 = 0;
    pub const UNKNOWN: u32 = 2;
    pub const DEADLINE_EXCEEDED: u32 = 4;
    pub const RESOURCE_EXHAUSTED: u32 = 8;
    pub const UNIMPLEMENTED: u32 = 12;
    pub const INTERNAL: u32 = 13;
    pub const UNAVAILABLE: u32 = 14;
}

/// A gRPC status other than OK, as grpc-go's `status.Status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RpcStatus {
    /// The status code (`grpc-status`).
    pub code: u32,
    /// The status message (`grpc-message`, percent-decoded).
    pub message: String,
}

impl RpcStatus {
    pub(super) fn new(code: u32, message: impl Into<String>) -> RpcStatus {
        RpcStatus {
            code,
            message: message.into(),
        }
    }
}

/// grpc-go's `status.Error(…).Error()`: `rpc error: code = NotFound desc = unknown service`.
impl fmt::Display for RpcStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rpc error: code = {} desc = {}",
            code_name(self.code),
            self.message
        )
    }
}

/// The name of a status code as grpc-go's `codes.Code.String()` prints it.
pub(super) fn code_name(code: u32) -> String {
    let name = match code {
        0 => "OK",
        1 => "Canceled",
        2 => "Unknown",
        3 => "InvalidArgument",
        4 => "DeadlineExceeded",
        5 => "NotFound",
        6 => "AlreadyExists",
        7 => "PermissionDenied",
        8 => "ResourceExhausted",
        9 => "FailedPrecondition",
        10 => "Aborted",
        11 => "OutOfRange",
        12 => "Unimplemented",
        13 => "Internal",
        14 => "Unavailable",
        15 => "DataLoss",
        16 => "Unauthenticated",
        other => return format!("Code({other})"),
    };
    name.to_owned()
}

/// The name of a `HealthCheckResponse.ServingStatus` as protobuf-go's `String()` prints it: the
/// enum name, or the number for a value the enum does not define.
pub(super) fn serving_status_name(status: i32) -> String {
    match status {
        0 => "UNKNOWN".to_owned(),
        1 => "SERVING".to_owned(),
        2 => "NOT_SERVING".to_owned(),
        3 => "SERVICE_UNKNOWN".to_owned(),
        other => other.to_string(),
    }
}

/// The framed request body: `HealthCheckRequest { service }` (field 1, a string; omitted when
/// empty, as proto3 does) behind the uncompressed gRPC message prefix.
pub(super) fn encode_request(service: &str) -> Bytes {
    let mut message = Vec::with_capacity(service.len() + 6);
    if !service.is_empty() {
        // Field 1, wire type 2 (length-delimited).
        message.push(0x0a);
        put_varint(&mut message, service.len() as u64);
        message.extend_from_slice(service.as_bytes());
    }
    let mut framed = BytesMut::with_capacity(PREFIX_BYTES + message.len());
    framed.put_u8(0);
    // A service name comes from a validated manifest; it is far below 4 GiB.
    framed.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    framed.extend_from_slice(&message);
    framed.freeze()
}

/// grpc-go's `encodeTimeout`: the `grpc-timeout` header for the time left, in the finest unit
/// whose value has at most 8 digits, rounded up.
pub(super) fn encode_timeout(left: Duration) -> String {
    const MAX_VALUE: u128 = 100_000_000 - 1;
    let nanos = left.as_nanos();
    if nanos == 0 {
        return "0n".to_owned();
    }
    let units: [(u128, char); 5] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
    ];
    for (unit, suffix) in units {
        let value = nanos.div_ceil(unit);
        if value <= MAX_VALUE {
            return format!("{value}{suffix}");
        }
    }
    format!("{}H", nanos.div_ceil(3_600_000_000_000))
}

/// Go's `time.Duration.String()`: `200ms`, `1s`, `1.5s`, `1m30s`, `1h0m0s`.
pub(super) fn go_duration(duration: Duration) -> String {
    // Go's durations are nanoseconds in an int64.
    let nanos = u64::try_from(duration.as_nanos())
        .unwrap_or(u64::MAX)
        .min(i64::MAX as u64);
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000_000_000 {
        let (unit, precision) = match nanos {
            0..1_000 => ("ns", 0),
            1_000..1_000_000 => ("µs", 3),
            _ => ("ms", 6),
        };
        let (whole, fraction) = split_fraction(nanos, precision);
        return format!("{whole}{fraction}{unit}");
    }
    let (seconds, fraction) = split_fraction(nanos, 9);
    let minutes = seconds / 60;
    let hours = minutes / 60;
    match (hours, minutes) {
        (0, 0) => format!("{seconds}{fraction}s"),
        (0, _) => format!("{minutes}m{}{fraction}s", seconds % 60),
        _ => format!("{hours}h{}m{}{fraction}s", minutes % 60, seconds % 60),
    }
}

/// Go's `fmtFrac`: splits `value` into `value / 10^precision` and its fraction written as
/// `.123` without trailing zeros (nothing when the fraction is zero).
fn split_fraction(value: u64, precision: u32) -> (u64, String) {
    let scale = 10u64.pow(precision);
    let fraction = value % scale;
    if fraction == 0 {
        return (value / scale, String::new());
    }
    let digits = format!("{fraction:0width$}", width = precision as usize);
    (value / scale, format!(".{}", digits.trim_end_matches('0')))
}

/// Go's `net.JoinHostPort`: brackets a host that contains a colon (IPv6).
pub(super) fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The checks grpc-go's client makes on the response headers (`operateHeaders`): HTTP status
/// 200, a gRPC content type and, if present, a well-formed `grpc-status`. A response that
/// fails them ends the call with the status grpc-go derives from the HTTP status.
pub(super) fn check_response_head(
    status: StatusCode,
    headers: &HeaderMap,
) -> Result<(), RpcStatus> {
    if let Some(value) = headers.get("grpc-status") {
        parse_grpc_status(value)?;
    }
    let http_status_error = (status != StatusCode::OK).then(|| {
        format!(
            "unexpected HTTP status code received from server: {} ({})",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
    });
    let content_type_error = match headers.get(CONTENT_TYPE) {
        None => Some("malformed header: missing HTTP content-type".to_owned()),
        Some(value) if is_grpc_content_type(value.as_bytes()) => None,
        Some(value) => Some(format!(
            "transport: received unexpected content-type {}",
            go_quote(&String::from_utf8_lossy(value.as_bytes()))
        )),
    };
    if http_status_error.is_none() && content_type_error.is_none() {
        return Ok(());
    }
    let message = [http_status_error, content_type_error]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ");
    Err(RpcStatus::new(code_for_http_status(status), message))
}

/// grpc-go's `grpcutil.ContentSubtype` validity: `application/grpc`, optionally followed by
/// `+subtype` or `;parameters`. Case-sensitive, as grpc-go.
fn is_grpc_content_type(value: &[u8]) -> bool {
    const BASE: &[u8] = b"application/grpc";
    matches!(value.strip_prefix(BASE), Some([] | [b'+' | b';', ..]))
}

/// grpc-go's `HTTPStatusConvTab`, with `Unknown` for any status not in it (200 included).
fn code_for_http_status(status: StatusCode) -> u32 {
    match status.as_u16() {
        400 => code::INTERNAL,
        401 => 16,
        403 => 7,
        404 => code::UNIMPLEMENTED,
        429 | 502 | 503 | 504 => code::UNAVAILABLE,
        _ => code::UNKNOWN,
    }
}

/// A complete response after its headers passed [`check_response_head`].
#[derive(Debug, Clone, Default)]
pub(super) struct ResponseBody {
    /// The response headers ended the stream (a gRPC "Trailers-Only" response): they carry
    /// the status.
    pub trailers_only: bool,
    /// The headers of the response, for a trailers-only status.
    pub headers: HeaderMap,
    /// Every DATA byte received (the framed messages).
    pub data: Bytes,
    /// The trailers, if the server sent any.
    pub trailers: Option<HeaderMap>,
}

/// What grpc-go's unary call returns for a complete response: the `status` field of the one
/// `HealthCheckResponse`, or the status error.
///
/// The order of checks is grpc-go's: the first message is read and decoded (an error there
/// wins), then a second message is a cardinality violation, then the final status applies.
pub(super) fn finish_call(body: &ResponseBody) -> Result<i32, RpcStatus> {
    let final_status = || -> Result<(), RpcStatus> {
        let fields = if body.trailers_only {
            &body.headers
        } else {
            match &body.trailers {
                Some(trailers) => trailers,
                None => {
                    return Err(RpcStatus::new(
                        code::INTERNAL,
                        "server closed the stream without sending trailers",
                    ));
                }
            }
        };
        match status_from_fields(fields)? {
            None => Ok(()),
            Some(status) => Err(status),
        }
    };
    let data = &body.data[..];
    let (payload, rest) = match split_message(data)? {
        None => {
            final_status()?;
            return Err(RpcStatus::new(
                code::INTERNAL,
                "cardinality violation: received no response message from non-server-streaming RPC",
            ));
        }
        Some(split) => split,
    };
    let status = decode_response(payload).map_err(|reason| {
        RpcStatus::new(
            code::INTERNAL,
            format!("grpc: failed to unmarshal the received message: {reason}"),
        )
    })?;
    if split_message(rest)?.is_some() {
        return Err(RpcStatus::new(
            code::INTERNAL,
            "cardinality violation: expected <EOF> for non server-streaming RPCs, but received another message",
        ));
    }
    final_status()?;
    Ok(status)
}

/// A message prefix announcing more than grpc-go accepts, checked while the body is still
/// arriving so a huge body is not read: grpc-go's `ResourceExhausted` status.
pub(super) fn oversized_message(data: &[u8]) -> Option<RpcStatus> {
    let length = announced_length(data)?;
    (length > MAX_RECEIVE_MESSAGE_BYTES).then(|| {
        RpcStatus::new(
            code::RESOURCE_EXHAUSTED,
            format!(
                "grpc: received message larger than max ({length} vs. {MAX_RECEIVE_MESSAGE_BYTES})"
            ),
        )
    })
}

/// The length in a message prefix, once the 5 bytes are there.
fn announced_length(data: &[u8]) -> Option<usize> {
    let prefix: [u8; 4] = data.get(1..PREFIX_BYTES)?.try_into().ok()?;
    Some(u32::from_be_bytes(prefix) as usize)
}

/// The payload of the first message in some DATA bytes, and the bytes after it.
type Split<'a> = (&'a [u8], &'a [u8]);

/// Splits the first message off `data`: `None` when `data` is empty; the payload and the
/// rest otherwise. A partial message is grpc-go's `io.ErrUnexpectedEOF`; a compressed or
/// unknown payload format fails as grpc-go's `checkRecvPayload` (no decompressor is
/// installed, and none was asked for).
fn split_message(data: &[u8]) -> Result<Option<Split<'_>>, RpcStatus> {
    if data.is_empty() {
        return Ok(None);
    }
    let unexpected_eof = || RpcStatus::new(code::INTERNAL, "unexpected EOF");
    let length = announced_length(data).ok_or_else(unexpected_eof)?;
    if let Some(status) = oversized_message(data) {
        return Err(status);
    }
    match data[0] {
        0 => {}
        1 => {
            return Err(RpcStatus::new(
                code::INTERNAL,
                "grpc: compressed flag set with identity or empty encoding",
            ));
        }
        other => {
            return Err(RpcStatus::new(
                code::INTERNAL,
                format!("grpc: received unexpected payload format {other}"),
            ));
        }
    }
    let end = PREFIX_BYTES + length;
    if data.len() < end {
        return Err(unexpected_eof());
    }
    Ok(Some((&data[PREFIX_BYTES..end], &data[end..])))
}

/// The status carried by `grpc-status` and `grpc-message` (trailers, or the headers of a
/// trailers-only response): `None` for OK. A missing `grpc-status` is `Unknown`, as in
/// grpc-go.
fn status_from_fields(fields: &HeaderMap) -> Result<Option<RpcStatus>, RpcStatus> {
    let code = match fields.get("grpc-status") {
        Some(value) => parse_grpc_status(value)?,
        None => code::UNKNOWN,
    };
    if code == code::OK {
        return Ok(None);
    }
    let message = fields
        .get("grpc-message")
        .map(|value| decode_grpc_message(&String::from_utf8_lossy(value.as_bytes())))
        .unwrap_or_default();
    Ok(Some(RpcStatus::new(code, message)))
}

/// `grpc-status` as grpc-go reads it: `strconv.ParseInt(v, 10, 32)` converted to a `uint32`
/// code; a malformed value is an `Internal` status with Go's parse error.
fn parse_grpc_status(value: &HeaderValue) -> Result<u32, RpcStatus> {
    let text = String::from_utf8_lossy(value.as_bytes());
    match text.parse::<i32>() {
        // Go converts the int32 to a uint32 code, so -1 becomes Code(4294967295).
        Ok(code) => Ok(code as u32),
        Err(error) => {
            let reason = match error.kind() {
                IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => "value out of range",
                _ => "invalid syntax",
            };
            Err(RpcStatus::new(
                code::INTERNAL,
                format!(
                    "transport: malformed grpc-status: strconv.ParseInt: parsing {}: {reason}",
                    go_quote(&text)
                ),
            ))
        }
    }
}

/// grpc-go's `decodeGrpcMessage`: `%XX` escapes are decoded, anything else is kept as is.
fn decode_grpc_message(message: &str) -> String {
    let bytes = message.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes `HealthCheckResponse` as protobuf-go does: field 1 (`status`, an enum, so a
/// varint truncated to int32; the last occurrence wins); other fields, and field 1 with
/// another wire type, are unknown fields and skipped. The error is protobuf-go's text.
pub(super) fn decode_response(message: &[u8]) -> Result<i32, &'static str> {
    const INVALID: &str = "proto: cannot parse invalid wire-format data";
    let mut status = 0;
    let mut rest = message;
    while !rest.is_empty() {
        let key = take_varint(&mut rest).ok_or(INVALID)?;
        let (field, wire_type) = (key >> 3, key & 7);
        if field == 0 || field > (1 << 29) - 1 {
            return Err(INVALID);
        }
        match wire_type {
            0 => {
                let value = take_varint(&mut rest).ok_or(INVALID)?;
                if field == 1 {
                    // Go converts the varint to int32 by truncation.
                    status = value as i32;
                }
            }
            1 => rest = rest.get(8..).ok_or(INVALID)?,
            2 => {
                let length = take_varint(&mut rest).ok_or(INVALID)?;
                let length = usize::try_from(length).map_err(|_| INVALID)?;
                rest = rest.get(length..).ok_or(INVALID)?;
            }
            5 => rest = rest.get(4..).ok_or(INVALID)?,
            // Groups (3, 4) are long deprecated and no health server sends them; 6 and 7 are
            // not wire types.
            _ => return Err(INVALID),
        }
    }
    Ok(status)
}

/// Reads a protobuf varint (at most 10 bytes, the last one at most 1) off the front of `buf`.
fn take_varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, &byte) in buf.iter().enumerate().take(10) {
        if i == 9 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Some(value);
        }
    }
    None
}

/// Appends `value` as a protobuf varint.
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}
