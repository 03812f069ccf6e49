//! Tests of the httpGet client, ported from upstream's `pkg/probe/http/request_test.go`,
//! `http_test.go` and `pkg/kubelet/lifecycle/handlers_test.go` (spec §10.3 U-LH-03..11).
//!
//! Servers are real sockets on 127.0.0.1 (port 0): a small hyper server, a TLS one with a
//! self-signed certificate, and raw TCP servers where the exact bytes matter.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::request::{Header, Prepared, canonical_key};
use super::url::{GoUrl, format_url};
use super::*;

// ---------------------------------------------------------------------------------------
// Request building (request_test.go, handlers_test.go TestRunHTTPHandler).

fn request(scheme: &str, host: &str, port: u16, path: &str) -> HttpGetRequest {
    HttpGetRequest {
        scheme: scheme.to_owned(),
        host: host.to_owned(),
        port,
        path: path.to_owned(),
        headers: Vec::new(),
        kind: Kind::Hook,
        timeout: None,
    }
}

#[test]
fn url_is_rendered_as_upstream_renders_it() {
    let cases = [
        // TestRunHandlerHttp, TestRunHandlerHttps, TestRunHandlerHTTPPort.
        ("", "foo", 8080, "bar", "http://foo:8080/bar"),
        ("HTTPS", "foo", 70, "bar", "https://foo:70/bar"),
        // TestFormatURL.
        ("http", "localhost", 93, "", "http://localhost:93"),
        (
            "https",
            "localhost",
            93,
            "/path",
            "https://localhost:93/path",
        ),
        ("http", "localhost", 93, "?foo", "http://localhost:93?foo"),
        (
            "https",
            "localhost",
            93,
            "/path?bar",
            "https://localhost:93/path?bar",
        ),
        // TestRunHTTPHandler.
        (
            "http",
            "example.test",
            42,
            "foo",
            "http://example.test:42/foo",
        ),
        (
            "http",
            "233.252.0.1",
            42,
            "/foo",
            "http://233.252.0.1:42/foo",
        ),
        (
            "https",
            "233.252.0.1",
            4430,
            "foo",
            "https://233.252.0.1:4430/foo",
        ),
        ("baz", "233.252.0.1", 80, "foo", "baz://233.252.0.1:80/foo"),
        (
            "http",
            "233.252.0.1",
            80,
            "foo?k=v",
            "http://233.252.0.1:80/foo?k=v",
        ),
        (
            "http",
            "233.252.0.1",
            80,
            "foo#frag",
            "http://233.252.0.1:80/foo#frag",
        ),
        // IPv6 hosts are bracketed (net.JoinHostPort).
        ("http", "::1", 8080, "/healthz", "http://[::1]:8080/healthz"),
        ("http", "fd00::5", 80, "x", "http://[fd00::5]:80/x"),
        // Go's url.Parse and URL.String on odd paths.
        ("http", "h", 1, "/a b", "http://h:1/a%20b"),
        ("http", "h", 1, "/a%2Fb", "http://h:1/a%2Fb"),
        ("http", "h", 1, "/a!b*(c)", "http://h:1/a!b*(c)"),
        ("http", "h", 1, "/caf\u{e9}", "http://h:1/caf%C3%A9"),
        ("http", "h", 1, "%zz", "http://h:1/%25zz"),
        ("http", "h", 1, "/x?a b", "http://h:1/x?a b"),
        ("http", "h", 1, "//evil/x", "http://h:1/x"),
        ("http", "h", 1, "http://evil:9/x", "http://h:1/x"),
        ("http", "h", 1, "a:b", "http:b"),
        ("http", "h", 1, "/x?", "http://h:1/x?"),
        ("http", "h", 1, "/x#a b", "http://h:1/x#a%20b"),
    ];
    for (scheme, host, port, path, want) in cases {
        assert_eq!(
            request(scheme, host, port, path).url(),
            want,
            "{scheme} {host} {port} {path:?}"
        );
    }
}

#[test]
fn request_target_leaves_out_the_fragment() {
    // As `http.NewRequest` does, the rendered URL is parsed again before it is sent.
    let target = |path: &str| {
        let rendered = format_url("http", "h", 1, path).to_string();
        GoUrl::parse(&rendered).unwrap().request_uri()
    };
    assert_eq!(target("foo?k=v#frag"), "/foo?k=v");
    assert_eq!(target(""), "/");
    assert_eq!(target("/a b"), "/a%20b");
    assert_eq!(target("/x?"), "/x?");
}

#[test]
fn redirect_locations_resolve_as_in_go() {
    let base = GoUrl::parse("http://127.0.0.1:8080/dir/redirect?loc=x#f").unwrap();
    let cases = [
        ("/new", "http://127.0.0.1:8080/new"),
        ("new", "http://127.0.0.1:8080/dir/new"),
        ("../up", "http://127.0.0.1:8080/up"),
        ("./a/./b/../c", "http://127.0.0.1:8080/dir/a/c"),
        ("?q=1", "http://127.0.0.1:8080/dir/redirect?q=1"),
        ("#g", "http://127.0.0.1:8080/dir/redirect?loc=x#g"),
        ("//other:9/x", "http://other:9/x"),
        ("https://other/x/../y", "https://other/y"),
    ];
    for (location, want) in cases {
        let reference = GoUrl::parse(location).unwrap();
        assert_eq!(base.resolve(&reference).to_string(), want, "{location}");
    }
    let other = GoUrl::parse("http://[::1]:9/x").unwrap();
    assert_eq!(other.hostname(), "::1");
    assert_eq!(other.port(), "9");
    assert_eq!(
        GoUrl::parse("http://h:x/").unwrap_err(),
        r#"parse "http://h:x/": invalid port ":x" after host"#
    );
    assert_eq!(
        GoUrl::parse("/%zz").unwrap_err(),
        r#"parse "/%zz": invalid URL escape "%zz""#
    );
}

#[test]
fn header_names_are_canonicalised_like_go() {
    // Test_v1HeaderToHTTPHeader and TestHeaderConversion.
    assert_eq!(canonical_key("HOST"), "Host");
    assert_eq!(canonical_key("FOO-bAR"), "Foo-Bar");
    assert_eq!(canonical_key("x-forwarded-for"), "X-Forwarded-For");
    assert_eq!(canonical_key("bad name"), "bad name");

    let mut header = Header::default();
    for (name, value) in [
        ("accept", "application/json"),
        ("Accept", "*/*"),
        ("pragma", "no-cache"),
        ("X-forwarded-for", "username"),
    ] {
        header.add(name, value);
    }
    let sorted: Vec<(&str, Vec<&str>)> = header
        .sorted()
        .into_iter()
        .map(|(k, v)| (k, v.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        sorted,
        [
            ("Accept", vec!["application/json", "*/*"]),
            ("Pragma", vec!["no-cache"]),
            ("X-Forwarded-For", vec!["username"]),
        ]
    );
}

fn prepared_headers(kind: Kind, headers: &[(&str, &str)]) -> (Vec<(String, Vec<String>)>, String) {
    let mut req = request("http", "233.252.0.1", 80, "foo");
    req.kind = kind;
    req.headers = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let prepared = Prepared::new(&req).unwrap();
    let sorted = prepared
        .header
        .sorted()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_vec()))
        .collect();
    (sorted, prepared.host)
}

fn entries(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect()
}

#[test]
fn default_headers_and_overrides() {
    // TestRunHTTPHandler: defaults, custom header, Host header.
    assert_eq!(
        prepared_headers(Kind::Hook, &[]),
        (
            entries(&[
                ("Accept", &["*/*"]),
                ("User-Agent", &["kube-lifecycle/1.32"])
            ]),
            String::new()
        )
    );
    assert_eq!(
        prepared_headers(Kind::Probe, &[("Foo", "bar")]).0,
        entries(&[
            ("Accept", &["*/*"]),
            ("Foo", &["bar"]),
            ("User-Agent", &["kube-probe/1.32"])
        ])
    );
    assert_eq!(
        prepared_headers(Kind::Hook, &[("Host", "from.header")]),
        (
            entries(&[
                ("Accept", &["*/*"]),
                ("Host", &["from.header"]),
                ("User-Agent", &["kube-lifecycle/1.32"])
            ]),
            "from.header".to_owned()
        )
    );
    // A user User-Agent or Accept replaces the default; an empty Accept removes it; an empty
    // User-Agent stays in the set and is not written (checked on the wire below).
    assert_eq!(
        prepared_headers(
            Kind::Probe,
            &[("user-agent", "foo/1.0"), ("accept", "application/json")]
        )
        .0,
        entries(&[
            ("Accept", &["application/json"]),
            ("User-Agent", &["foo/1.0"])
        ])
    );
    assert_eq!(
        prepared_headers(Kind::Probe, &[("Accept", ""), ("User-Agent", "")]).0,
        entries(&[("User-Agent", &[""])])
    );
}

#[test]
fn schemes_parse_case_insensitively() {
    assert_eq!(Scheme::parse("HTTP"), Some(Scheme::Http));
    assert_eq!(Scheme::parse(""), Some(Scheme::Http));
    assert_eq!(Scheme::parse("hTtPs"), Some(Scheme::Https));
    assert_eq!(Scheme::parse("baz"), None);
    assert_eq!(Scheme::Https.as_str(), "https");
}

#[test]
fn probe_results_map_status_codes_like_do_http_probe() {
    let response = |status: u16, body: &'static str| {
        Ok(HttpGetResponse {
            status,
            body: Bytes::from_static(body.as_bytes()),
            location: None,
            fell_back_to_http: false,
        })
    };
    assert_eq!(
        probe_result(response(200, "ok body")),
        (ProbeOutcome::Success, "ok body".to_owned())
    );
    assert_eq!(
        probe_result(response(302, "moved")),
        (
            ProbeOutcome::Warning,
            "Probe terminated redirects, Response body: moved".to_owned()
        )
    );
    assert_eq!(
        probe_result(response(404, "")),
        (
            ProbeOutcome::Failure,
            "HTTP probe failed with statuscode: 404".to_owned()
        )
    );
    assert_eq!(
        probe_result(response(500, "fail body")),
        (
            ProbeOutcome::Failure,
            "HTTP probe failed with statuscode: 500".to_owned()
        )
    );
    assert_eq!(probe_result(response(199, "")).0, ProbeOutcome::Failure);
    assert!(hook_result(response(500, "")).is_ok());
}

// ---------------------------------------------------------------------------------------
// Test servers.

/// What a test server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    /// Path and query of the request target.
    target: String,
    /// The Host header.
    host: String,
    /// Headers other than Host, names lower-cased by hyper.
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Response<Full<Bytes>> + Send + Sync>;

/// A hyper HTTP/1.1 server (optionally behind TLS) on 127.0.0.1, alive while it is.
struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// SNI of each TLS connection.
    sni: Arc<Mutex<Vec<Option<String>>>>,
    _tasks: JoinSet<()>,
}

impl Server {
    async fn start(
        handler: impl Fn(&Seen) -> Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> Server {
        Server::start_inner(Arc::new(handler), None).await
    }

    async fn start_tls(
        handler: impl Fn(&Seen) -> Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> Server {
        Server::start_inner(Arc::new(handler), Some(tls_acceptor(rustls::ALL_VERSIONS))).await
    }

    async fn start_inner(handler: Handler, tls: Option<tokio_rustls::TlsAcceptor>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sni = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = JoinSet::new();
        let (seen2, sni2) = (seen.clone(), sni.clone());
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (handler, seen, sni, tls) =
                    (handler.clone(), seen2.clone(), sni2.clone(), tls.clone());
                connections.spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let record = Seen {
                            target: req
                                .uri()
                                .path_and_query()
                                .map(|p| p.to_string())
                                .unwrap_or_default(),
                            host: req
                                .headers()
                                .get("host")
                                .map(|v| v.to_str().unwrap().to_owned())
                                .unwrap_or_default(),
                            headers: req
                                .headers()
                                .iter()
                                .filter(|(k, _)| *k != "host")
                                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                                .collect(),
                        };
                        seen.lock().unwrap().push(record.clone());
                        let response = handler(&record);
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                        }
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(tcp).await else {
                                return;
                            };
                            sni.lock()
                                .unwrap()
                                .push(stream.get_ref().1.server_name().map(str::to_owned));
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Server {
            addr,
            seen,
            sni,
            _tasks: tasks,
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A TLS acceptor with a fresh self-signed certificate for "localhost".
fn tls_acceptor(
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> tokio_rustls::TlsAcceptor {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

fn respond(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(body.into()))
        .unwrap()
}

fn redirect(status: u16, location: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("location", location)
        .body(Full::new(Bytes::from_static(b"redirecting")))
        .unwrap()
}

/// A raw TCP server that answers each connection with `answer` after reading the request
/// head, and reports the heads it read.
struct RawServer {
    addr: SocketAddr,
    heads: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    _tasks: JoinSet<()>,
}

impl RawServer {
    /// `answer` is written after the request head; with `hold`, the connection then stays
    /// open until the server is dropped.
    async fn start(answer: &'static [u8], hold: bool) -> RawServer {
        RawServer::start_seq(&[answer], hold).await
    }

    /// Like [`RawServer::start`], the n-th connection answered with `answers[n]` (the last
    /// answer for the connections after those).
    async fn start_seq(answers: &[&'static [u8]], hold: bool) -> RawServer {
        let answers = answers.to_vec();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, heads) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            let mut n = 0;
            while let Ok((mut tcp, _)) = listener.accept().await {
                let answer = answers[n.min(answers.len() - 1)];
                n += 1;
                let tx = tx.clone();
                connections.spawn(async move {
                    let head = read_head(&mut tcp).await;
                    let _ = tx.send(head);
                    let _ = tcp.write_all(answer).await;
                    if hold {
                        std::future::pending::<()>().await;
                    }
                });
            }
        });
        RawServer {
            addr,
            heads,
            _tasks: tasks,
        }
    }
}

/// Reads until the end of an HTTP request head (or of the stream, or the first TLS record).
async fn read_head(tcp: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let Ok(n) = tcp.read(&mut buf).await else {
            return head;
        };
        head.extend_from_slice(&buf[..n]);
        if n == 0 || head.windows(4).any(|w| w == b"\r\n\r\n") || head.first() == Some(&0x16) {
            return head;
        }
    }
}

fn probe(scheme: &str, port: u16, path: &str) -> HttpGetRequest {
    HttpGetRequest {
        scheme: scheme.to_owned(),
        host: "127.0.0.1".to_owned(),
        port,
        path: path.to_owned(),
        headers: Vec::new(),
        kind: Kind::Probe,
        timeout: Some(Duration::from_secs(5)),
    }
}

fn hook(scheme: &str, port: u16, path: &str) -> HttpGetRequest {
    HttpGetRequest {
        kind: Kind::Hook,
        timeout: None,
        ..probe(scheme, port, path)
    }
}

fn with_headers(mut req: HttpGetRequest, headers: &[(&str, &str)]) -> HttpGetRequest {
    req.headers = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    req
}

/// A port on 127.0.0.1 that nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------
// On the wire.

#[tokio::test]
async fn request_is_written_as_go_writes_it() {
    let mut server =
        RawServer::start(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false).await;
    let req = with_headers(
        probe("HTTP", server.addr.port(), "healthz?k=v#frag"),
        &[("x-custom-header", " value\t"), ("Accept", "text/plain")],
    );
    let response = get(&req).await.unwrap();
    assert_eq!((response.status, &response.body[..]), (200, &b"ok"[..]));
    let head = server.heads.recv().await.unwrap();
    let want = format!(
        "GET /healthz?k=v HTTP/1.1\r\n\
         Host: 127.0.0.1:{}\r\n\
         User-Agent: kube-probe/1.32\r\n\
         Accept: text/plain\r\n\
         X-Custom-Header: value\r\n\
         Connection: close\r\n\r\n",
        server.addr.port()
    );
    assert_eq!(String::from_utf8(head).unwrap(), want);
}

#[tokio::test]
async fn empty_user_agent_and_accept_are_not_sent() {
    let mut server = RawServer::start(b"HTTP/1.1 204 No Content\r\n\r\n", false).await;
    let req = with_headers(
        hook("http", server.addr.port(), "/"),
        &[("User-Agent", ""), ("accept", "")],
    );
    assert_eq!(get(&req).await.unwrap().status, 204);
    let head = String::from_utf8(server.heads.recv().await.unwrap()).unwrap();
    assert_eq!(
        head,
        format!(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            server.addr.port()
        )
    );
}

#[tokio::test]
async fn headers_reach_the_server() {
    // TestHTTPProbeChecker's header cases and TestRunHandlerHttpWithHeaders.
    let server = Server::start(|_| respond(200, "ok")).await;
    let port = server.port();
    // (headers sent, header checked, its value at the server, User-Agent at the server)
    type Case = (
        &'static [(&'static str, &'static str)],
        &'static str,
        Option<&'static str>,
        &'static str,
    );
    let cases: [Case; 4] = [
        (
            &[("X-Muffins-Or-Cupcakes", "muffins")],
            "x-muffins-or-cupcakes",
            Some("muffins"),
            "kube-probe/1.32",
        ),
        (&[("Foo", "bar")], "foo", Some("bar"), "kube-probe/1.32"),
        (
            &[("User-Agent", "foo/1.0")],
            "user-agent",
            Some("foo/1.0"),
            "foo/1.0",
        ),
        (&[], "accept", Some("*/*"), "kube-probe/1.32"),
    ];
    for (i, (headers, name, value, user_agent)) in cases.into_iter().enumerate() {
        let (outcome, output) =
            probe_result(get(&with_headers(probe("http", port, "/"), headers)).await);
        assert_eq!((outcome, output.as_str()), (ProbeOutcome::Success, "ok"));
        let seen = &server.seen()[i];
        assert_eq!(seen.header(name), value, "{headers:?}");
        assert_eq!(seen.header("user-agent"), Some(user_agent), "{headers:?}");
        assert_eq!(seen.host, format!("127.0.0.1:{port}"));
    }
}

#[tokio::test]
async fn host_header_sets_the_request_host() {
    let server = Server::start(|seen| respond(200, seen.host.clone())).await;
    let req = with_headers(
        probe("http", server.port(), "/"),
        &[("host", "muffins.cupcakes.org")],
    );
    assert_eq!(
        probe_result(get(&req).await),
        (ProbeOutcome::Success, "muffins.cupcakes.org".to_owned())
    );
    // The hook user agent is kube-lifecycle.
    let req = hook("http", server.port(), "/");
    get(&req).await.unwrap();
    assert_eq!(
        server.seen()[1].header("user-agent"),
        Some("kube-lifecycle/1.32")
    );
}

// ---------------------------------------------------------------------------------------
// Status codes and redirects (TestHTTPProbeChecker, TestHTTPProbeChecker_NonLocalRedirects,
// TestHTTPProbeChecker_HostHeaderPreservedAfterRedirect).

#[tokio::test]
async fn probe_status_codes() {
    let server = Server::start(|seen| match seen.target.as_str() {
        "/ok" => respond(200, "ok body"),
        "/missing" => respond(404, "not here"),
        "/broken" => respond(500, "fail body"),
        _ => respond(400, ""),
    })
    .await;
    let port = server.port();
    assert_eq!(
        probe_result(get(&probe("http", port, "/ok")).await),
        (ProbeOutcome::Success, "ok body".to_owned())
    );
    assert_eq!(
        probe_result(get(&probe("http", port, "/missing")).await),
        (
            ProbeOutcome::Failure,
            "HTTP probe failed with statuscode: 404".to_owned()
        )
    );
    assert_eq!(
        probe_result(get(&probe("http", port, "/broken")).await),
        (
            ProbeOutcome::Failure,
            "HTTP probe failed with statuscode: 500".to_owned()
        )
    );
}

#[tokio::test]
async fn hooks_succeed_on_any_status() {
    let server = Server::start(|_| respond(500, "boom")).await;
    let response = hook_result(get(&hook("http", server.port(), "/stop")).await).unwrap();
    assert_eq!(response.status, 500);
    assert!(!response.fell_back_to_http);
}

#[tokio::test]
async fn local_redirects_are_followed() {
    for status in [301, 302, 307, 308] {
        for bad in [false, true] {
            let server = Server::start(move |seen| match seen.target.as_str() {
                "/" => redirect(status, "/new"),
                "/new" if bad => respond(500, ""),
                _ => respond(200, "arrived"),
            })
            .await;
            let (outcome, _) = probe_result(get(&probe("http", server.port(), "/")).await);
            let want = if bad {
                ProbeOutcome::Failure
            } else {
                ProbeOutcome::Success
            };
            assert_eq!(outcome, want, "{status} bad={bad}");
            let seen = server.seen();
            assert_eq!(seen.len(), 2);
            // Go sends the previous URL as Referer on a followed redirect.
            assert_eq!(
                seen[1].header("referer"),
                Some(format!("http://127.0.0.1:{}/", server.port()).as_str())
            );
        }
    }
}

#[tokio::test]
async fn redirect_policy() {
    let other = Server::start(|seen| match seen.target.as_str() {
        "/success" => respond(200, ""),
        _ => respond(500, ""),
    })
    .await;
    let redirector = |other_port: u16| {
        move |seen: &Seen| {
            let (path, query) = seen.target.split_once('?').unwrap_or((&seen.target, ""));
            match path {
                "/redirect" => {
                    let loc = query.strip_prefix("loc=").unwrap_or_default();
                    redirect(302, &loc.replace("OTHER", &other_port.to_string()))
                }
                "/loop" => redirect(302, "/loop"),
                "/success" => respond(200, ""),
                _ => respond(500, ""),
            }
        }
    };
    let server = Server::start(redirector(other.port())).await;
    let cases = [
        ("local success", "/success", ProbeOutcome::Success),
        ("local fail", "/fail", ProbeOutcome::Failure),
        (
            "newport success",
            "http://127.0.0.1:OTHER/success",
            ProbeOutcome::Success,
        ),
        (
            "newport fail",
            "http://127.0.0.1:OTHER/fail",
            ProbeOutcome::Failure,
        ),
        (
            "bogus nonlocal",
            "http://0.0.0.0/fail",
            ProbeOutcome::Warning,
        ),
        ("redirect loop", "/loop", ProbeOutcome::Failure),
    ];
    for (name, loc, want) in cases {
        let (outcome, _) = probe_result(
            get(&probe(
                "http",
                server.port(),
                &format!("/redirect?loc={loc}"),
            ))
            .await,
        );
        assert_eq!(outcome, want, "{name}");
    }
}

#[tokio::test]
async fn non_local_redirect_is_a_warning_with_the_body() {
    let server = Server::start(|_| redirect(302, "http://example.test/elsewhere")).await;
    let result = get(&probe("http", server.port(), "/")).await;
    let response = result.as_ref().unwrap();
    assert_eq!(response.status, 302);
    assert_eq!(
        response.location.as_deref(),
        Some("http://example.test/elsewhere")
    );
    assert_eq!(
        probe_result(result),
        (
            ProbeOutcome::Warning,
            "Probe terminated redirects, Response body: redirecting".to_owned()
        )
    );
    assert_eq!(server.seen().len(), 1);
    // Hooks use the same redirect policy (upstream's RedirectChecker(false)).
    let response = hook_result(get(&hook("http", server.port(), "/")).await).unwrap();
    assert_eq!(response.status, 302);
}

#[tokio::test]
async fn redirect_loop_stops_after_ten() {
    let server = Server::start(|_| redirect(302, "/loop")).await;
    let (outcome, output) = probe_result(get(&probe("http", server.port(), "/loop")).await);
    assert_eq!(
        (outcome, output.as_str()),
        (
            ProbeOutcome::Failure,
            r#"Get "/loop": stopped after 10 redirects"#
        )
    );
    assert_eq!(server.seen().len(), 10);
}

#[tokio::test]
async fn host_header_survives_relative_redirects() {
    let server = Server::start(|seen| match seen.target.as_str() {
        "/redirect" => redirect(302, "/success"),
        "/success" if seen.host == "www.success.com" => respond(200, ""),
        "/success" => respond(400, ""),
        _ => respond(500, ""),
    })
    .await;
    for (host, want) in [
        ("www.success.com", ProbeOutcome::Success),
        ("www.fail.com", ProbeOutcome::Failure),
    ] {
        let req = with_headers(probe("http", server.port(), "/redirect"), &[("Host", host)]);
        assert_eq!(probe_result(get(&req).await).0, want, "{host}");
    }
}

// ---------------------------------------------------------------------------------------
// Bodies (TestHTTPProbeChecker_PayloadTruncated, _PayloadNormal).

#[tokio::test]
async fn body_is_capped_at_10_kib() {
    let server = Server::start(|seen| match seen.target.as_str() {
        "/big" => respond(200, vec![b'a'; MAX_BODY_BYTES + 1]),
        "/huge" => respond(200, vec![b'a'; 1 << 20]),
        _ => respond(200, vec![b'a'; MAX_BODY_BYTES - 1]),
    })
    .await;
    for (path, len) in [
        ("/big", MAX_BODY_BYTES),
        ("/huge", MAX_BODY_BYTES),
        ("/normal", MAX_BODY_BYTES - 1),
    ] {
        let (outcome, output) = probe_result(get(&probe("http", server.port(), path)).await);
        assert_eq!(outcome, ProbeOutcome::Success, "{path}");
        assert_eq!(output, "a".repeat(len), "{path}");
    }
}

#[tokio::test]
async fn truncated_body_fails_probes_but_not_hooks() {
    let server = RawServer::start(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..",
        false,
    )
    .await;
    let port = server.addr.port();
    assert_eq!(
        probe_result(get(&probe("http", port, "/")).await),
        (ProbeOutcome::Failure, "unexpected EOF".to_owned())
    );
    let response = hook_result(get(&hook("http", port, "/")).await).unwrap();
    assert_eq!(
        (response.status, &response.body[..]),
        (200, &b"only ten.."[..])
    );
}

// ---------------------------------------------------------------------------------------
// Transport errors, worded as Go words them.

#[tokio::test]
async fn connection_refused() {
    let port = closed_port().await;
    let want = format!(
        r#"Get "http://127.0.0.1:{port}/healthz": dial tcp 127.0.0.1:{port}: connect: connection refused"#
    );
    assert_eq!(
        probe_result(get(&probe("http", port, "healthz")).await),
        (ProbeOutcome::Failure, want.clone())
    );
    let error = hook_result(get(&hook("http", port, "healthz")).await).unwrap_err();
    assert_eq!(error.to_string(), want);
}

#[tokio::test]
async fn timeout_while_awaiting_headers() {
    // A listener that never accepts: the kernel completes the handshake, nobody answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut req = probe("http", port, "/");
    req.timeout = Some(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let result = get(&req).await;
    let elapsed = started.elapsed();
    assert_eq!(
        probe_result(result),
        (
            ProbeOutcome::Failure,
            format!(
                r#"Get "http://127.0.0.1:{port}/": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"#
            )
        )
    );
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    drop(listener);
}

#[tokio::test]
async fn timeout_while_reading_the_body() {
    let server = RawServer::start(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", true).await;
    let mut req = probe("http", server.addr.port(), "/");
    req.timeout = Some(Duration::from_millis(200));
    assert_eq!(
        probe_result(get(&req).await),
        (
            ProbeOutcome::Failure,
            "context deadline exceeded (Client.Timeout or context cancellation while reading body)"
                .to_owned()
        )
    );
}

#[tokio::test]
async fn server_closing_without_answer_is_eof() {
    let server = RawServer::start(b"", false).await;
    let port = server.addr.port();
    assert_eq!(
        probe_result(get(&probe("http", port, "/")).await).1,
        format!(r#"Get "http://127.0.0.1:{port}/": EOF"#)
    );
}

#[tokio::test]
async fn unsupported_scheme_fails_without_connecting() {
    let port = closed_port().await;
    let error = get(&hook("baz", port, "foo")).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(r#"Get "baz://127.0.0.1:{port}/foo": unsupported protocol scheme "baz""#)
    );
}

#[tokio::test]
async fn invalid_header_name_fails_before_connecting() {
    let port = closed_port().await;
    let req = with_headers(probe("http", port, "/"), &[("bad name", "v")]);
    assert_eq!(
        get(&req).await.unwrap_err().to_string(),
        format!(
            r#"Get "http://127.0.0.1:{port}/": net/http: invalid header field name "bad name""#
        )
    );
    let req = with_headers(probe("http", port, "/"), &[("X-Ok", "a\nb")]);
    assert_eq!(
        get(&req).await.unwrap_err().to_string(),
        format!(
            r#"Get "http://127.0.0.1:{port}/": net/http: invalid header field value for "X-Ok""#
        )
    );
}

#[tokio::test]
async fn ipv6_hosts_are_bracketed() {
    let Ok(listener) = TcpListener::bind("[::1]:0").await else {
        // No IPv6 loopback on this machine; the URL form is covered by the unit test.
        return;
    };
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut req = probe("http", port, "/healthz");
    req.host = "::1".to_owned();
    assert_eq!(
        get(&req).await.unwrap_err().to_string(),
        format!(
            r#"Get "http://[::1]:{port}/healthz": dial tcp [::1]:{port}: connect: connection refused"#
        )
    );
}

// ---------------------------------------------------------------------------------------
// TLS (TestRunHandlerHttpsFailureFallback, TestIsHTTPResponseError).

#[tokio::test]
async fn https_with_a_self_signed_certificate() {
    let server = Server::start_tls(|seen| respond(200, format!("tls {}", seen.target))).await;
    let mut req = probe("HTTPS", server.port(), "/secure");
    assert_eq!(
        probe_result(get(&req).await),
        (ProbeOutcome::Success, "tls /secure".to_owned())
    );
    req.host = "localhost".to_owned();
    assert_eq!(probe_result(get(&req).await).0, ProbeOutcome::Success);
    // SNI is sent for DNS names only.
    assert_eq!(
        *server.sni.lock().unwrap(),
        [None, Some("localhost".to_owned())]
    );
}

#[tokio::test]
async fn https_with_tls_1_2() {
    // TLS 1.2 checks the ServerKeyExchange signature through the other verifier method.
    let server = Server::start_inner(
        Arc::new(|_: &Seen| respond(200, "tls12")),
        Some(tls_acceptor(&[&rustls::version::TLS12])),
    )
    .await;
    assert_eq!(
        probe_result(get(&probe("https", server.port(), "/")).await),
        (ProbeOutcome::Success, "tls12".to_owned())
    );
}

#[tokio::test]
async fn https_hook_falls_back_to_http_without_authorization() {
    let server = Server::start(|_| respond(200, "plain")).await;
    let req = with_headers(
        hook("https", server.port(), "bar"),
        &[("Authorization", "secret"), ("X-Other", "kept")],
    );
    let response = hook_result(get(&req).await).unwrap();
    assert!(response.fell_back_to_http);
    assert_eq!(&response.body[..], b"plain");
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "the TLS attempt never reaches the handler");
    assert_eq!(seen[0].target, "/bar");
    assert_eq!(seen[0].header("authorization"), None);
    assert_eq!(seen[0].header("x-other"), Some("kept"));
    assert_eq!(
        fallback_event_message(&req),
        format!(
            "request to HTTPS lifecycle hook 127.0.0.1:{} got HTTP response, retry with HTTP succeeded",
            server.port()
        )
    );
}

#[tokio::test]
async fn https_probe_to_plain_http_fails() {
    let server = Server::start(|_| respond(200, "plain")).await;
    let port = server.port();
    let error = get(&probe("https", port, "/")).await.unwrap_err();
    assert!(error.is_http_response_error());
    assert_eq!(
        error.to_string(),
        format!(
            r#"Get "https://127.0.0.1:{port}/": http: server gave HTTP response to HTTPS client"#
        )
    );
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn https_hook_fallback_keeps_the_first_error_when_the_retry_fails() {
    // The ClientHello is answered in plain HTTP; the plain retry is closed unanswered.
    let server = RawServer::start_seq(&[b"HTTP/1.1 400 Bad Request\r\n\r\n", b""], false).await;
    let port = server.addr.port();
    let error = hook_result(get(&hook("https", port, "/")).await).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            r#"Get "https://127.0.0.1:{port}/": http: server gave HTTP response to HTTPS client"#
        )
    );

    // Any status on the retry is a success for a hook.
    let server = RawServer::start(b"HTTP/1.1 400 Bad Request\r\n\r\n", false).await;
    let response = hook_result(get(&hook("https", server.addr.port(), "/")).await).unwrap();
    assert!(response.fell_back_to_http);
    assert_eq!(response.status, 400);

    // Other failures are not retried.
    let port = closed_port().await;
    let error = get(&hook("https", port, "/")).await.unwrap_err();
    assert!(!error.is_http_response_error());
    assert!(
        error.to_string().ends_with("connect: connection refused"),
        "{error}"
    );
}

#[tokio::test]
async fn tls_to_a_non_http_non_tls_server() {
    let server = RawServer::start(b"SSH-2.0-OpenSSH\r\n", false).await;
    let port = server.addr.port();
    assert_eq!(
        get(&probe("https", port, "/"))
            .await
            .unwrap_err()
            .to_string(),
        format!(
            r#"Get "https://127.0.0.1:{port}/": tls: first record does not look like a TLS handshake"#
        )
    );
}

#[tokio::test]
async fn requests_do_not_share_connections() {
    let connections = Arc::new(Mutex::new(HashMap::<SocketAddr, usize>::new()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let counted = connections.clone();
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        while let Ok((tcp, peer)) = listener.accept().await {
            let counted = counted.clone();
            let service = service_fn(move |_req: Request<Incoming>| {
                *counted.lock().unwrap().entry(peer).or_default() += 1;
                async { Ok::<_, Infallible>(respond(200, "")) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        }
    });
    for _ in 0..3 {
        get(&probe("http", port, "/")).await.unwrap();
    }
    let connections = connections.lock().unwrap();
    assert_eq!(connections.len(), 3);
    assert!(connections.values().all(|n| *n == 1));
}

#[tokio::test]
async fn dropping_the_future_closes_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (accepted_tx, accepted_rx) = oneshot::channel();
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let _ = read_head(&mut tcp).await;
        let _ = accepted_tx.send(tcp);
    });
    let req = hook("http", port, "/stop");
    let mut request = Box::pin(get(&req));
    // Drive the request until the server holds it, then drop it (a preStop hook cut off by
    // the grace period).
    let mut tcp = tokio::select! {
        _ = request.as_mut() => panic!("the server never answers"),
        tcp = accepted_rx => tcp.unwrap(),
    };
    drop(request);
    let mut buf = [0u8; 1];
    assert_eq!(
        tcp.read(&mut buf).await.unwrap(),
        0,
        "client closed the connection"
    );
}

#[tokio::test]
async fn host_that_does_not_parse_back_is_an_invalid_url() {
    // Go renders the space as %20 and `http.NewRequest` then rejects it.
    let mut req = probe("http", 80, "");
    req.host = "my host".to_owned();
    let error = get(&req).await.unwrap_err();
    assert!(matches!(error, HttpGetError::InvalidUrl { .. }));
    assert_eq!(
        error.to_string(),
        r#"parse "http://my%20host:80": invalid URL escape "%20""#
    );
}

#[tokio::test]
async fn request_target_the_http_crate_refuses() {
    let port = closed_port().await;
    let error = get(&probe("http", port, "/x?a b")).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(r#"Get "http://127.0.0.1:{port}/x?a b": invalid request target "/x?a b""#)
    );
}
