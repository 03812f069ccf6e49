//! Tests of the gRPC health probe, after upstream's `pkg/probe/grpc/grpc_test.go`.
//!
//! Servers are real sockets on 127.0.0.1 (port 0): an h2c server made with hyper that plays
//! a gRPC health service (or a broken one), a plain HTTP/1 server, and raw TCP listeners.
//! The wire rules (framing, protobuf, statuses, Go's formatting) are checked as pure functions.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http::HeaderMap;
use http_body_util::{BodyExt, Either, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::wire::{self, ResponseBody, RpcStatus, code};
use super::*;

/// The timeout of probes that are expected to time out.
const SHORT: Duration = Duration::from_millis(200);

/// The timeout of probes that are expected to finish on their own.
const LONG: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// Against a gRPC health server (grpc_test.go TestGrpcProber_Probe).

#[tokio::test]
async fn serving_is_a_success() {
    let server = H2Server::start(Reply::Status(1)).await;
    assert_eq!(
        check("127.0.0.1", server.port(), "", LONG).await,
        (ProbeOutcome::Success, "service healthy".to_owned())
    );
}

#[tokio::test]
async fn the_request_is_what_grpc_go_sends() {
    let mut server = H2Server::start(Reply::Status(1)).await;
    let port = server.port();

    check("127.0.0.1", port, "my-service", LONG).await;
    let seen = server.seen.recv().await.unwrap();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.version, hyper::Version::HTTP_2);
    assert_eq!(
        seen.uri,
        format!("http://127.0.0.1:{port}/grpc.health.v1.Health/Check")
    );
    assert_eq!(seen.header("content-type"), Some("application/grpc"));
    assert_eq!(seen.header("te"), Some("trailers"));
    assert_eq!(seen.header("user-agent"), Some("kube-probe/1.32"));
    // The time left of the 5 s, in microseconds (grpc-go's unit for 0.1 s to 100 s).
    let timeout = seen.header("grpc-timeout").unwrap();
    let micros: u64 = timeout.strip_suffix('u').unwrap().parse().unwrap();
    assert!(micros > 100_000 && micros <= 5_000_000, "{timeout}");
    // Prefix (uncompressed, length 12), then field 1 (tag 0x0a), length 10, the name.
    assert_eq!(&seen.body[..], b"\x00\x00\x00\x00\x0c\x0a\x0amy-service");

    // The empty service is an empty message (proto3 omits empty strings).
    check("127.0.0.1", port, "", LONG).await;
    let seen = server.seen.recv().await.unwrap();
    assert_eq!(&seen.body[..], b"\x00\x00\x00\x00\x00");
}

#[tokio::test]
async fn other_statuses_are_failures_named_as_protobuf_go_names_them() {
    for (status, name) in [
        (2, "NOT_SERVING"),
        (3, "SERVICE_UNKNOWN"),
        (0, "UNKNOWN"),
        (7, "7"),
    ] {
        let server = H2Server::start(Reply::Status(status)).await;
        assert_eq!(
            check("127.0.0.1", server.port(), "", LONG).await,
            (
                ProbeOutcome::Failure,
                format!("service unhealthy (responded with \"{name}\")")
            ),
            "status {status}"
        );
    }
}

#[tokio::test]
async fn grpc_errors_use_upstream_messages() {
    for (grpc_status, grpc_message, want) in [
        // grpc-go's health server for a service it does not know.
        (
            5,
            "unknown service",
            "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service",
        ),
        // A gRPC server without the health service.
        (
            12,
            "unknown service grpc.health.v1.Health",
            "error: this server does not implement the grpc health protocol \
             (grpc.health.v1.Health): unknown service grpc.health.v1.Health",
        ),
        // The server gave up on the deadline it was sent.
        (
            4,
            "context deadline exceeded",
            "timeout: health rpc did not complete within 5s",
        ),
        // grpc-message is percent-encoded on the wire.
        (
            14,
            "going%20away%3A 100%",
            "error: health rpc probe failed: rpc error: code = Unavailable desc = going away: 100%",
        ),
        (
            42,
            "",
            "error: health rpc probe failed: rpc error: code = Code(42) desc = ",
        ),
    ] {
        let server = H2Server::start(Reply::Error(grpc_status, grpc_message)).await;
        assert_eq!(
            check("127.0.0.1", server.port(), "", LONG).await,
            (ProbeOutcome::Failure, want.to_owned()),
        );
    }
}

#[tokio::test]
async fn an_h2c_server_that_is_not_grpc_fails_as_grpc_go_reports_it() {
    for (status, content_type, want) in [
        (
            404,
            "text/plain",
            "error: this server does not implement the grpc health protocol \
             (grpc.health.v1.Health): unexpected HTTP status code received from server: \
             404 (Not Found); transport: received unexpected content-type \"text/plain\"",
        ),
        (
            503,
            "text/plain",
            "error: health rpc probe failed: rpc error: code = Unavailable desc = unexpected \
             HTTP status code received from server: 503 (Service Unavailable); transport: \
             received unexpected content-type \"text/plain\"",
        ),
        (
            200,
            "text/html",
            "error: health rpc probe failed: rpc error: code = Unknown desc = transport: \
             received unexpected content-type \"text/html\"",
        ),
        (
            200,
            "",
            "error: health rpc probe failed: rpc error: code = Unknown desc = malformed \
             header: missing HTTP content-type",
        ),
    ] {
        let server = H2Server::start(Reply::Http(status, content_type)).await;
        assert_eq!(
            check("127.0.0.1", server.port(), "", LONG).await,
            (ProbeOutcome::Failure, want.to_owned()),
            "{status} {content_type}"
        );
    }
}

#[tokio::test]
async fn broken_responses_fail_with_grpc_go_statuses() {
    let ok = Some(vec![("grpc-status", "0")]);
    for (data, trailers, want) in [
        (
            message(&[0x08, 0x01]),
            None,
            "code = Internal desc = server closed the stream without sending trailers",
        ),
        (
            Vec::new(),
            ok.clone(),
            "code = Internal desc = cardinality violation: received no response message from \
             non-server-streaming RPC",
        ),
        (
            message(&[0x08]),
            ok.clone(),
            "code = Internal desc = grpc: failed to unmarshal the received message: proto: \
             cannot parse invalid wire-format data",
        ),
        (
            message(&[0x08, 0x01])[..6].to_vec(),
            ok.clone(),
            "code = Internal desc = unexpected EOF",
        ),
        (
            message(&[0x08, 0x01]),
            Some(vec![("grpc-message", "no status")]),
            "code = Unknown desc = no status",
        ),
        (
            message(&[0x08, 0x01]),
            Some(vec![("grpc-status", "x")]),
            "code = Internal desc = transport: malformed grpc-status: strconv.ParseInt: \
             parsing \"x\": invalid syntax",
        ),
    ] {
        let server = H2Server::start(Reply::Raw { data, trailers }).await;
        assert_eq!(
            check("127.0.0.1", server.port(), "", LONG).await,
            (
                ProbeOutcome::Failure,
                format!("error: health rpc probe failed: rpc error: {want}")
            ),
        );
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_in_the_rpc() {
    let server = H2Server::start(Reply::Never).await;
    // Long enough that connecting surely fits in it, even on a loaded machine.
    let timeout = Duration::from_secs(1);
    let started = Instant::now();
    assert_eq!(
        check("127.0.0.1", server.port(), "", timeout).await,
        (
            ProbeOutcome::Failure,
            "timeout: health rpc did not complete within 1s".to_owned()
        )
    );
    assert!(started.elapsed() >= timeout);
}

// ---------------------------------------------------------------------------------------
// Connecting: grpc-go's blocking dial.

#[tokio::test]
async fn connection_refused_is_retried_until_the_timeout() {
    let port = free_port().await;
    let started = Instant::now();
    assert_eq!(
        check("127.0.0.1", port, "", SHORT).await,
        (
            ProbeOutcome::Failure,
            format!(
                "timeout: failed to connect service \"127.0.0.1:{port}\" within 200ms: \
                 context deadline exceeded"
            )
        )
    );
    // Like grpc-go, the refusal does not end the probe early.
    assert!(started.elapsed() >= SHORT);
}

#[tokio::test]
async fn an_empty_host_is_the_local_system() {
    // grpc_test.go: "Should: failed but return nil error because cant find host".
    let port = free_port().await;
    assert_eq!(
        check("", port, "", Duration::from_secs(1)).await,
        (
            ProbeOutcome::Failure,
            format!(
                "timeout: failed to connect service \":{port}\" within 1s: context deadline \
                 exceeded"
            )
        )
    );
    let server = H2Server::start(Reply::Status(1)).await;
    assert_eq!(
        check("", server.port(), "", LONG).await.0,
        ProbeOutcome::Success
    );
}

#[tokio::test]
async fn ipv6_addresses_are_bracketed() {
    let port = free_port().await;
    let (outcome, output) = check("::1", port, "", SHORT).await;
    assert_eq!(outcome, ProbeOutcome::Failure);
    assert!(
        output.starts_with(&format!(
            "timeout: failed to connect service \"[::1]:{port}\" within 200ms"
        )),
        "{output}"
    );
}

#[tokio::test]
async fn a_plain_http1_server_never_becomes_a_connection() {
    // grpc_test.go: "Should: return nil error because connection closed". grpc-go reads
    // the HTTP/1 answer as a bad server preface and keeps redialing until the deadline.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(
                TokioIo::new(stream),
                service_fn(|_request: Request<Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("res"))))
                }),
            ));
        }
    });
    assert_eq!(
        check("127.0.0.1", port, "", SHORT).await,
        (
            ProbeOutcome::Failure,
            format!(
                "timeout: failed to connect service \"127.0.0.1:{port}\" within 200ms: \
                 context deadline exceeded"
            )
        )
    );
}

#[tokio::test]
async fn a_silent_server_never_becomes_a_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (outcome, output) = tokio::select! {
        result = check("127.0.0.1", port, "", SHORT) => result,
        _ = hold_connections(&listener) => unreachable!(),
    };
    assert_eq!(outcome, ProbeOutcome::Failure);
    assert_eq!(
        output,
        format!(
            "timeout: failed to connect service \"127.0.0.1:{port}\" within 200ms: context \
             deadline exceeded"
        )
    );
}

#[tokio::test]
async fn a_failed_attempt_is_retried_after_the_backoff() {
    // The first connection is closed at once; the second is served.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = async {
        drop(listener.accept().await.unwrap());
        let (stream, _) = listener.accept().await.unwrap();
        let (seen, _rx) = mpsc::unbounded_channel();
        serve_h2(stream, Reply::Status(1), seen).await;
        std::future::pending::<()>().await;
    };
    let started = Instant::now();
    let result = tokio::select! {
        result = check("127.0.0.1", port, "", LONG) => result,
        () = server => unreachable!(),
    };
    assert_eq!(
        result,
        (ProbeOutcome::Success, "service healthy".to_owned())
    );
    assert!(started.elapsed() >= BASE_BACKOFF, "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_zero_timeout_fails_before_connecting() {
    let server = H2Server::start(Reply::Status(1)).await;
    let port = server.port();
    assert_eq!(
        check("127.0.0.1", port, "", Duration::ZERO).await,
        (
            ProbeOutcome::Failure,
            format!(
                "timeout: failed to connect service \"127.0.0.1:{port}\" within 0s: context \
                 deadline exceeded"
            )
        )
    );
}

#[tokio::test]
async fn dropping_the_probe_closes_its_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut probe = Box::pin(check("127.0.0.1", port, "", LONG));
    let (mut stream, _) = tokio::select! {
        _ = &mut probe => unreachable!("the server never answers"),
        accepted = listener.accept() => accepted.unwrap(),
    };
    // The client preface (24 bytes) shows the connection is being driven.
    let mut preface = [0u8; 24];
    tokio::select! {
        _ = &mut probe => unreachable!("the server never answers"),
        read = stream.read_exact(&mut preface) => read.unwrap(),
    };
    assert_eq!(&preface, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

    drop(probe);
    // Nothing of the probe outlives it: the socket is closed (what was written is read,
    // then end of stream).
    let mut rest = Vec::new();
    tokio::time::timeout(LONG, stream.read_to_end(&mut rest))
        .await
        .expect("the connection is closed when the probe is dropped")
        .unwrap();
}

#[tokio::test]
async fn the_connection_is_closed_after_the_probe() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (seen, _rx) = mpsc::unbounded_channel();
    let server = async {
        let (stream, _) = listener.accept().await.unwrap();
        serve_h2(stream, Reply::Status(1), seen).await;
    };
    let (result, ()) = tokio::join!(check("127.0.0.1", port, "", LONG), async {
        // The connection's future ends only when the client closed it.
        tokio::time::timeout(LONG, server)
            .await
            .expect("the probe closes its connection");
    });
    assert_eq!(result.0, ProbeOutcome::Success);
}

#[test]
fn the_probe_future_can_be_spawned() {
    fn assert_send<T: Send + 'static>(_: &T) {}
    let probe = async { check("127.0.0.1", 1, "svc", SHORT).await };
    assert_send(&probe);
}

#[tokio::test]
async fn the_preface_watch_tells_settings_from_anything_else() {
    for (first_bytes, ready) in [
        // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
        (&b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"[..], true),
        // A SETTINGS acknowledgement is not a preface.
        (b"\x00\x00\x00\x04\x01\x00\x00\x00\x00", false),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", false),
        (b"", false),
    ] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let (mut server, _) = accepted.unwrap();
        // Written in two parts, so the header is assembled across reads.
        let split = first_bytes.len().min(4);
        tokio::io::AsyncWriteExt::write_all(&mut server, &first_bytes[..split])
            .await
            .unwrap();
        let (verdict_tx, verdict_rx) = tokio::sync::oneshot::channel();
        let mut watch = conn::PrefaceWatch::new(client.unwrap(), verdict_tx);
        let mut buf = [0u8; 64];
        if split > 0 {
            assert!(watch.read(&mut buf).await.unwrap() > 0);
        }
        tokio::io::AsyncWriteExt::write_all(&mut server, &first_bytes[split..])
            .await
            .unwrap();
        drop(server);
        while watch.read(&mut buf).await.unwrap() > 0 {}
        let verdict = verdict_rx.await.unwrap();
        assert_eq!(verdict.is_ok(), ready, "{first_bytes:02x?}: {verdict:?}");
    }
}

// ---------------------------------------------------------------------------------------
// The wire rules, as pure functions.

#[test]
fn durations_print_as_go_prints_them() {
    for (duration, want) in [
        (Duration::ZERO, "0s"),
        (Duration::from_nanos(1), "1ns"),
        (Duration::from_nanos(1_100), "1.1µs"),
        (Duration::from_millis(200), "200ms"),
        (Duration::from_micros(2_500), "2.5ms"),
        (Duration::from_secs(1), "1s"),
        (Duration::from_millis(1_500), "1.5s"),
        (Duration::from_secs(60), "1m0s"),
        (Duration::from_secs(90), "1m30s"),
        (Duration::from_secs(3_600), "1h0m0s"),
        (Duration::from_secs(3_723), "1h2m3s"),
        (Duration::from_nanos(61_000_000_001), "1m1.000000001s"),
    ] {
        assert_eq!(wire::go_duration(duration), want, "{duration:?}");
    }
}

#[test]
fn grpc_timeouts_are_encoded_as_grpc_go_encodes_them() {
    for (left, want) in [
        (Duration::ZERO, "0n"),
        (Duration::from_nanos(99_999_999), "99999999n"),
        (Duration::from_millis(100), "100000u"),
        (Duration::from_nanos(1_000_000_001), "1000001u"),
        (Duration::from_secs(100), "100000m"),
        (Duration::from_secs(100_000), "100000S"),
        (Duration::from_secs(100_000_000), "1666667M"),
        (Duration::from_secs(6_000_000_000), "1666667H"),
    ] {
        assert_eq!(wire::encode_timeout(left), want, "{left:?}");
    }
}

#[test]
fn requests_are_framed_protobuf() {
    assert_eq!(&wire::encode_request("")[..], b"\x00\x00\x00\x00\x00");
    assert_eq!(
        &wire::encode_request("a")[..],
        b"\x00\x00\x00\x00\x03\x0a\x01a"
    );
    // A name of 200 bytes has a two-byte length varint (0xc8 0x01).
    let long = "x".repeat(200);
    let framed = wire::encode_request(&long);
    assert_eq!(&framed[..8], b"\x00\x00\x00\x00\xcb\x0a\xc8\x01");
    assert_eq!(framed.len(), 5 + 3 + 200);
}

#[test]
fn responses_decode_as_protobuf_go_decodes_them() {
    for (message, want) in [
        (&b""[..], Ok(0)),
        (b"\x08\x01", Ok(1)),
        (b"\x08\x02", Ok(2)),
        // The last occurrence wins.
        (b"\x08\x01\x08\x02", Ok(2)),
        // Unknown fields of every wire type are skipped, as is field 1 with another type.
        (
            b"\x10\x05\x19\x00\x00\x00\x00\x00\x00\x00\x00\x22\x02ab\x2d\x00\x00\x00\x00\x08\x01",
            Ok(1),
        ),
        (b"\x0a\x01x", Ok(0)),
        // An enum is an int32: a negative value is a ten-byte varint.
        (b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", Ok(-1)),
        (b"\x08", Err(())),
        (b"\x08\x80", Err(())),
        (b"\x22\x05ab", Err(())),
        (b"\x00\x01", Err(())),
        (b"\x0b", Err(())),
        (b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", Err(())),
    ] {
        assert_eq!(
            wire::decode_response(message).map_err(|_| ()),
            want,
            "{message:02x?}"
        );
    }
}

#[test]
fn oversized_and_compressed_messages_fail() {
    let mut header = vec![0u8];
    header.extend_from_slice(&(4 * 1024 * 1024 + 1u32).to_be_bytes());
    assert_eq!(
        wire::oversized_message(&header),
        Some(RpcStatus::new(
            code::RESOURCE_EXHAUSTED,
            "grpc: received message larger than max (4194305 vs. 4194304)"
        ))
    );
    assert_eq!(wire::oversized_message(&header[..4]), None);

    let mut compressed = message(&[0x08, 0x01]);
    compressed[0] = 1;
    let body = ResponseBody {
        data: compressed.into(),
        trailers: Some(HeaderMap::new()),
        ..Default::default()
    };
    assert_eq!(
        wire::finish_call(&body),
        Err(RpcStatus::new(
            code::INTERNAL,
            "grpc: compressed flag set with identity or empty encoding"
        ))
    );

    let mut two = message(&[0x08, 0x01]);
    two.extend(message(&[0x08, 0x01]));
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    let body = ResponseBody {
        data: two.into(),
        trailers: Some(trailers),
        ..Default::default()
    };
    assert_eq!(
        wire::finish_call(&body).unwrap_err().message,
        "cardinality violation: expected <EOF> for non server-streaming RPCs, but received \
         another message"
    );
}

#[test]
fn grpc_status_codes_have_grpc_go_names() {
    let names: Vec<String> = (0..=17).map(wire::code_name).collect();
    assert_eq!(
        names,
        [
            "OK",
            "Canceled",
            "Unknown",
            "InvalidArgument",
            "DeadlineExceeded",
            "NotFound",
            "AlreadyExists",
            "PermissionDenied",
            "ResourceExhausted",
            "FailedPrecondition",
            "Aborted",
            "OutOfRange",
            "Unimplemented",
            "Internal",
            "Unavailable",
            "DataLoss",
            "Unauthenticated",
            "Code(17)",
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Test servers.

/// What the test server answers to a call.
#[derive(Debug, Clone)]
enum Reply {
    /// A gRPC answer: one `HealthCheckResponse { status }`, then `grpc-status: 0`.
    Status(i32),
    /// A trailers-only gRPC error.
    Error(u32, &'static str),
    /// A plain HTTP answer with this status and content type ("" for none).
    Http(u16, &'static str),
    /// Status 200, `content-type: application/grpc`, these DATA bytes and these trailers
    /// (`None`: the body ends without trailers).
    Raw {
        data: Vec<u8>,
        trailers: Option<Vec<(&'static str, &'static str)>>,
    },
    /// No answer at all.
    Never,
}

/// A request as the server saw it.
#[derive(Debug)]
struct Seen {
    method: String,
    version: hyper::Version,
    uri: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// An h2c server on 127.0.0.1 answering every request with one [`Reply`].
struct H2Server {
    addr: SocketAddr,
    /// Every request, in order.
    seen: mpsc::UnboundedReceiver<Seen>,
    /// The accept loop; aborted with the server.
    task: tokio::task::JoinHandle<()>,
}

impl H2Server {
    async fn start(reply: Reply) -> H2Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(serve_h2(stream, reply.clone(), seen_tx.clone()));
            }
        });
        H2Server { addr, seen, task }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for H2Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A body of given frames, or none at all (the response headers end the stream).
type TestBody = Either<
    StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>,
    Empty<Bytes>,
>;

/// Serves one h2c connection until the client closes it.
async fn serve_h2(stream: tokio::net::TcpStream, reply: Reply, seen: mpsc::UnboundedSender<Seen>) {
    let service = service_fn(move |request: Request<Incoming>| {
        let reply = reply.clone();
        let seen = seen.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            // Why the result is ignored: a test that does not look at requests dropped the
            // receiver.
            let _ = seen.send(Seen {
                method: parts.method.to_string(),
                version: parts.version,
                uri: parts.uri.to_string(),
                headers: parts.headers,
                body,
            });
            Ok::<_, Infallible>(respond(reply).await)
        }
    });
    // Why the result is ignored: clients closing connections is what these tests do.
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn respond(reply: Reply) -> Response<TestBody> {
    let grpc = |frames: Vec<Frame<Bytes>>| {
        let body = if frames.is_empty() {
            Either::Right(Empty::new())
        } else {
            Either::Left(StreamBody::new(stream::iter(
                frames.into_iter().map(Ok).collect::<Vec<_>>(),
            )))
        };
        let mut response = Response::new(body);
        response
            .headers_mut()
            .insert("content-type", "application/grpc".parse().unwrap());
        response
    };
    match reply {
        Reply::Status(status) => {
            let mut payload = vec![0x08];
            let mut value = status as u64;
            while value >= 0x80 {
                payload.push((value as u8) | 0x80);
                value >>= 7;
            }
            payload.push(value as u8);
            grpc(vec![
                Frame::data(message(&payload).into()),
                Frame::trailers(fields(&[("grpc-status", "0")])),
            ])
        }
        Reply::Error(status, message) => {
            let mut response = grpc(Vec::new());
            let headers = response.headers_mut();
            headers.insert("grpc-status", status.to_string().parse().unwrap());
            if !message.is_empty() {
                headers.insert("grpc-message", message.parse().unwrap());
            }
            response
        }
        Reply::Http(status, content_type) => {
            let mut response = grpc(vec![Frame::data(Bytes::from("not found"))]);
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            response.headers_mut().remove("content-type");
            if !content_type.is_empty() {
                response
                    .headers_mut()
                    .insert("content-type", content_type.parse().unwrap());
            }
            response
        }
        Reply::Raw { data, trailers } => {
            let mut frames = Vec::new();
            if !data.is_empty() {
                frames.push(Frame::data(data.into()));
            }
            if let Some(trailers) = trailers {
                frames.push(Frame::trailers(fields(&trailers)));
            }
            grpc(frames)
        }
        Reply::Never => std::future::pending().await,
    }
}

/// A framed, uncompressed gRPC message.
fn message(payload: &[u8]) -> Vec<u8> {
    let mut framed = vec![0];
    framed.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    framed.extend_from_slice(payload);
    framed
}

fn fields(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(name, value)| (name.parse().unwrap(), value.parse().unwrap()))
        .collect()
}

/// A port nothing listens on (bound, then released).
async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Accepts connections and keeps them open without a byte of answer.
async fn hold_connections(listener: &TcpListener) {
    let mut held = Vec::new();
    loop {
        held.push(listener.accept().await.unwrap());
    }
}
