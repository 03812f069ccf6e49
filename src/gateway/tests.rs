//! Gateway tests with real sockets on 127.0.0.0/8: small hyper backends that count their
//! connections and record what they were sent, and hyper clients.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::http::{Request, Response, StatusCode, Version};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::*;

const SERVICE: &str = "ns/web";
const PORT: &str = "http";

// ----- backends -----

/// Which HTTP versions a test backend speaks.
#[derive(Clone, Copy, PartialEq)]
enum Speaks {
    Http1,
    H2c,
}

/// What a backend saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    version: Version,
    connection: Option<String>,
    host: Option<String>,
    forwarded_for: Option<String>,
}

#[derive(Default)]
struct Stats {
    /// Connections accepted.
    accepted: AtomicUsize,
    /// Connections open now.
    open: AtomicUsize,
    requests: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
    /// Requests waiting in `/hold`.
    held: AtomicUsize,
}

/// A test backend: answers every request with its name (body and `x-backend`); `/hold`
/// waits until `release` is called.
struct TestBackend {
    addr: SocketAddr,
    name: String,
    stats: Arc<Stats>,
    release: watch::Sender<bool>,
    _tasks: JoinSet<()>,
}

impl TestBackend {
    async fn start(name: &str, speaks: Speaks) -> TestBackend {
        TestBackend::start_on("127.0.0.1:0".parse().unwrap(), name, speaks).await
    }

    async fn start_on(addr: SocketAddr, name: &str, speaks: Speaks) -> TestBackend {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(Stats::default());
        let (release, released) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let name_owned = name.to_owned();
        let s = stats.clone();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                stream.set_nodelay(true).unwrap();
                s.accepted.fetch_add(1, Ordering::SeqCst);
                s.open.fetch_add(1, Ordering::SeqCst);
                let (s, name, released) = (s.clone(), name_owned.clone(), released.clone());
                connections.spawn(async move {
                    let service = {
                        let s = s.clone();
                        service_fn(move |request: Request<Incoming>| {
                            let (s, name, mut released) =
                                (s.clone(), name.clone(), released.clone());
                            async move {
                                s.requests.fetch_add(1, Ordering::SeqCst);
                                let header = |n: &str| {
                                    request
                                        .headers()
                                        .get(n)
                                        .map(|v| v.to_str().unwrap().to_owned())
                                };
                                s.seen.lock().unwrap().push(Seen {
                                    version: request.version(),
                                    connection: header("connection"),
                                    host: header("host"),
                                    forwarded_for: header("x-forwarded-for"),
                                });
                                if request.uri().path() == "/hold" {
                                    s.held.fetch_add(1, Ordering::SeqCst);
                                    let _ = tokio::time::timeout(
                                        Duration::from_secs(20),
                                        released.wait_for(|r| *r),
                                    )
                                    .await;
                                    s.held.fetch_sub(1, Ordering::SeqCst);
                                }
                                let body = request.into_body().collect().await.unwrap().to_bytes();
                                let mut response = Response::new(Full::new(Bytes::from(format!(
                                    "{name} {}",
                                    body.len()
                                ))));
                                response
                                    .headers_mut()
                                    .insert("x-backend", name.parse().unwrap());
                                Ok::<_, Infallible>(response)
                            }
                        })
                    };
                    let io = TokioIo::new(stream);
                    let _ = match speaks {
                        Speaks::Http1 => hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .await
                            .map_err(|e| e.to_string()),
                        Speaks::H2c => {
                            hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                                .serve_connection(io, service)
                                .await
                                .map_err(|e| e.to_string())
                        }
                    };
                    s.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        TestBackend {
            addr,
            name: name.to_owned(),
            stats,
            release,
            _tasks: tasks,
        }
    }

    fn requests(&self) -> usize {
        self.stats.requests.load(Ordering::SeqCst)
    }

    fn ready(&self) -> Endpoint {
        endpoint(self.addr, true, true, false)
    }

    fn seen(&self) -> Vec<Seen> {
        self.stats.seen.lock().unwrap().clone()
    }
}

fn endpoint(addr: SocketAddr, ready: bool, serving: bool, terminating: bool) -> Endpoint {
    Endpoint {
        addr,
        ready,
        serving,
        terminating,
        target: Some(format!("ns/pod-{}", addr.port())),
    }
}

/// An address nothing listens on (connections are refused).
fn dead_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A backend that accepts connections and closes them at once, counting them.
async fn resetting_backend() -> (SocketAddr, Arc<AtomicUsize>, JoinSet<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (addr, accepted, tasks)
}

// ----- gateway and clients -----

/// A free port on `ip`: bound, read and released (the gateway binds it right after).
fn free_addr(ip: Ipv4Addr) -> SocketAddr {
    let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
    listener.local_addr().unwrap()
}

fn spec(addrs: Vec<SocketAddr>, protocol: Protocol) -> ListenerSpec {
    ListenerSpec {
        service: SERVICE.to_owned(),
        port_name: PORT.to_owned(),
        addrs,
        protocol,
        client_ip_affinity: None,
    }
}

/// Sets a listener on a fresh port of `ip`, trying a second port if the first was taken
/// in between. Returns its address.
async fn listen(gateway: &Gateway, ip: Ipv4Addr, mut spec: ListenerSpec) -> SocketAddr {
    for attempt in 0..2 {
        let addr = free_addr(ip);
        spec.addrs = vec![addr];
        match gateway.set_listener(spec.clone()).await {
            Ok(()) => return addr,
            Err(GatewayError::Bind { error, .. })
                if error.kind() == std::io::ErrorKind::AddrInUse && attempt == 0 => {}
            Err(error) => panic!("{error}"),
        }
    }
    unreachable!()
}

fn test_config() -> GatewayConfig {
    GatewayConfig {
        connect_timeout: Duration::from_secs(1),
        drain_timeout: Duration::from_secs(2),
        ..GatewayConfig::default()
    }
}

/// One worker thread: every client connection shares one backend pool, so connection counts
/// are exact. Other tests run the default, a worker per core.
fn one_worker_config() -> GatewayConfig {
    GatewayConfig {
        workers: 1,
        ..test_config()
    }
}

/// A gateway with one HTTP listener on `ip` and the endpoints given.
async fn http_gateway(ip: Ipv4Addr, endpoints: Vec<Endpoint>) -> (Gateway, SocketAddr) {
    http_gateway_with(test_config(), ip, endpoints).await
}

async fn http_gateway_with(
    config: GatewayConfig,
    ip: Ipv4Addr,
    endpoints: Vec<Endpoint>,
) -> (Gateway, SocketAddr) {
    let gateway = Gateway::new(config).unwrap();
    let addr = listen(&gateway, ip, spec(vec![], Protocol::Http)).await;
    gateway.set_endpoints(SERVICE, PORT, endpoints);
    (gateway, addr)
}

/// One answer as a client sees it.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    backend: Option<String>,
    body: String,
}

/// A keep-alive client connection (HTTP/1.1 or h2c prior knowledge).
enum Client {
    Http1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2c(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Client {
    async fn http1(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        Client::Http1(sender)
    }

    async fn h2c(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        Client::H2c(sender)
    }

    async fn send(&mut self, method: &str, path: &str, body: &'static str) -> Reply {
        let mut builder = Request::builder().method(method);
        builder = match self {
            Client::Http1(_) => builder.uri(path).header("host", "web.test"),
            Client::H2c(_) => builder.uri(format!("http://web.test{path}")),
        };
        let request = builder
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap();
        let response = match self {
            Client::Http1(sender) => {
                sender.ready().await.unwrap();
                sender.send_request(request).await.unwrap()
            }
            Client::H2c(sender) => {
                sender.ready().await.unwrap();
                sender.send_request(request).await.unwrap()
            }
        };
        let status = response.status();
        let backend = response
            .headers()
            .get("x-backend")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            backend,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    async fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, "").await
    }
}

/// One GET on a new connection from `from` (a loopback address).
async fn get_from(from: Ipv4Addr, addr: SocketAddr) -> Reply {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind((from, 0).into()).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::get("/")
        .header("host", "web.test")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let backend = response
        .headers()
        .get("x-backend")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        backend,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Polls `check` every 5 ms until it holds, for at most 5 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn counts(replies: &[Reply]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for reply in replies {
        *counts
            .entry(reply.backend.clone().unwrap_or_default())
            .or_default() += 1;
    }
    counts
}

fn ip(a: u8, b: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 77, a, b)
}

// ----- balancing -----

#[tokio::test]
async fn sequential_requests_go_round_robin_across_three_backends() {
    let backends = [
        TestBackend::start("a", Speaks::Http1).await,
        TestBackend::start("b", Speaks::Http1).await,
        TestBackend::start("c", Speaks::Http1).await,
    ];
    let (gateway, addr) =
        http_gateway(ip(1, 1), backends.iter().map(|b| b.ready()).collect()).await;
    let mut client = Client::http1(addr).await;
    let mut replies = Vec::new();
    for _ in 0..30 {
        let reply = client.get("/").await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        replies.push(reply);
    }
    let counts = counts(&replies);
    for b in &backends {
        assert_eq!(counts.get(&b.name), Some(&10), "{counts:?}");
    }
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_backend_busy_with_a_request_gets_no_new_one_while_others_are_idle() {
    let backends = [
        TestBackend::start("a", Speaks::Http1).await,
        TestBackend::start("b", Speaks::Http1).await,
        TestBackend::start("c", Speaks::Http1).await,
    ];
    let (gateway, addr) =
        http_gateway(ip(1, 2), backends.iter().map(|b| b.ready()).collect()).await;
    let mut holder = Client::http1(addr).await;
    let hold = tokio::spawn(async move { holder.get("/hold").await });
    eventually("a held request", || {
        backends
            .iter()
            .any(|b| b.stats.held.load(Ordering::SeqCst) == 1)
    })
    .await;
    let busy = backends
        .iter()
        .find(|b| b.stats.held.load(Ordering::SeqCst) == 1)
        .unwrap();
    let before = busy.requests();
    let mut client = Client::http1(addr).await;
    let mut replies = Vec::new();
    for _ in 0..20 {
        replies.push(client.get("/").await);
    }
    assert_eq!(busy.requests(), before, "the busy backend got a request");
    let counts = counts(&replies);
    for b in backends.iter().filter(|b| b.name != busy.name) {
        assert_eq!(counts.get(&b.name), Some(&10), "{counts:?}");
    }
    busy.release.send_replace(true);
    assert_eq!(hold.await.unwrap().status, StatusCode::OK);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_removed_endpoint_gets_no_new_request() {
    let backends = [
        TestBackend::start("a", Speaks::Http1).await,
        TestBackend::start("b", Speaks::Http1).await,
        TestBackend::start("c", Speaks::Http1).await,
    ];
    let (gateway, addr) =
        http_gateway(ip(1, 3), backends.iter().map(|b| b.ready()).collect()).await;
    let mut client = Client::http1(addr).await;
    for _ in 0..6 {
        assert_eq!(client.get("/").await.status, StatusCode::OK);
    }
    gateway.set_endpoints(
        SERVICE,
        PORT,
        vec![backends[1].ready(), backends[2].ready()],
    );
    let removed_before = backends[0].requests();
    for _ in 0..30 {
        let reply = client.get("/").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_ne!(reply.backend.as_deref(), Some("a"));
    }
    assert_eq!(backends[0].requests(), removed_before);
    // Its pooled connection was closed when it left the set.
    eventually("the removed backend's connection closed", || {
        backends[0].stats.open.load(Ordering::SeqCst) == 0
    })
    .await;
    gateway.shutdown().await;
}

#[tokio::test]
async fn terminating_endpoints_get_traffic_only_when_none_is_ready() {
    let backends = [
        TestBackend::start("ready", Speaks::Http1).await,
        TestBackend::start("terminating", Speaks::Http1).await,
        TestBackend::start("notserving", Speaks::Http1).await,
    ];
    let endpoints = |ready: bool| {
        vec![
            endpoint(backends[0].addr, ready, ready, false),
            endpoint(backends[1].addr, false, true, true),
            endpoint(backends[2].addr, false, false, true),
        ]
    };
    let (gateway, addr) = http_gateway(ip(1, 4), endpoints(true)).await;
    let mut client = Client::http1(addr).await;
    for _ in 0..10 {
        assert_eq!(client.get("/").await.backend.as_deref(), Some("ready"));
    }
    gateway.set_endpoints(SERVICE, PORT, endpoints(false));
    for _ in 0..10 {
        let reply = client.get("/").await;
        assert_eq!(reply.backend.as_deref(), Some("terminating"), "{reply:?}");
    }
    assert_eq!(backends[2].requests(), 0);
    // Fallback requests ask the terminating backend to close the connection after them.
    let seen = backends[1].seen();
    assert_eq!(seen.len(), 10);
    assert!(
        seen.iter()
            .all(|s| s.connection.as_deref() == Some("close")),
        "{seen:?}"
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn without_endpoints_the_answer_is_503_naming_the_service() {
    let (gateway, addr) = http_gateway(ip(1, 5), vec![]).await;
    let mut client = Client::http1(addr).await;
    let reply = client.get("/").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.body,
        "no ready endpoints for service ns/web port http\n"
    );
    // Not ready and not serving counts as none.
    gateway.set_endpoints(
        SERVICE,
        PORT,
        vec![endpoint(dead_addr(), false, false, true)],
    );
    assert_eq!(
        client.get("/").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_refusing_backend_gives_502_with_a_clear_body() {
    let dead = dead_addr();
    let (gateway, addr) = http_gateway(ip(1, 6), vec![endpoint(dead, true, true, false)]).await;
    let mut client = Client::http1(addr).await;
    let reply = client.get("/").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert!(
        reply.body.starts_with(&format!(
            "bad gateway: service ns/web port http: endpoint ns/pod-{} ({dead}) failed: ",
            dead.port()
        )),
        "{}",
        reply.body
    );
    assert!(reply.body.contains("refused"), "{}", reply.body);
    gateway.shutdown().await;
}

#[tokio::test]
async fn get_is_retried_on_another_endpoint_when_connect_fails_post_is_not() {
    let live = TestBackend::start("live", Speaks::Http1).await;
    let gateway = Gateway::new(test_config()).unwrap();
    // The first pick of a listener is its first endpoint (round robin starts there).
    let get_addr = listen(&gateway, ip(1, 7), spec(vec![], Protocol::Http)).await;
    gateway.set_endpoints(
        SERVICE,
        PORT,
        vec![
            endpoint(dead_addr(), true, true, false),
            endpoint(dead_addr(), true, true, false),
            live.ready(),
        ],
    );
    let mut post_spec = spec(vec![], Protocol::Http);
    post_spec.port_name = "post".to_owned();
    let post_addr = listen(&gateway, ip(1, 7), post_spec).await;
    gateway.set_endpoints(
        SERVICE,
        "post",
        vec![endpoint(dead_addr(), true, true, false), live.ready()],
    );

    let reply = Client::http1(get_addr).await.get("/").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.backend.as_deref(), Some("live"));

    let reply = Client::http1(post_addr)
        .await
        .send("POST", "/", "payload")
        .await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{reply:?}");
    assert_eq!(live.requests(), 1);
    // The dead endpoint now sits out its back-off: the next POST goes to the live one.
    let reply = Client::http1(post_addr)
        .await
        .send("POST", "/", "payload")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body, "live 7");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_backend_that_resets_connections_is_backed_off_and_load_succeeds() {
    let (resetter, accepted, _tasks) = resetting_backend().await;
    let good = TestBackend::start("good", Speaks::Http1).await;
    let (gateway, addr) = http_gateway(
        ip(1, 8),
        vec![endpoint(resetter, true, true, false), good.ready()],
    )
    .await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(Client::http1(addr).await);
    }
    for round in 0..25 {
        for client in &mut clients {
            let reply = client.get("/").await;
            assert_eq!(reply.status, StatusCode::OK, "round {round}: {reply:?}");
        }
    }
    // One failure puts it out for a second: it saw a connection or two, not a hundred.
    let n = accepted.load(Ordering::SeqCst);
    assert!(
        (1..=3).contains(&n),
        "resetting backend accepted {n} connections"
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn when_every_endpoint_is_backing_off_they_are_still_tried() {
    let addr_of_a = dead_addr();
    let (gateway, addr) =
        http_gateway(ip(1, 9), vec![endpoint(addr_of_a, true, true, false)]).await;
    let mut client = Client::http1(addr).await;
    assert_eq!(client.get("/").await.status, StatusCode::BAD_GATEWAY);
    // It is backing off (for a second), but it is all there is: the next request tries it.
    let backend = TestBackend::start_on(addr_of_a, "a", Speaks::Http1).await;
    let reply = client.get("/").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(backend.requests(), 1);
    gateway.shutdown().await;
}

// ----- connections -----

#[tokio::test]
async fn keep_alive_connections_to_backends_are_reused() {
    let backends = [
        TestBackend::start("a", Speaks::Http1).await,
        TestBackend::start("b", Speaks::Http1).await,
    ];
    let (gateway, addr) = http_gateway_with(
        one_worker_config(),
        ip(2, 1),
        backends.iter().map(|b| b.ready()).collect(),
    )
    .await;
    // Two clients, each on its own connection, one after the other; bodiless answers (HEAD)
    // give their connection back too.
    for _ in 0..2 {
        let mut client = Client::http1(addr).await;
        for i in 0..50 {
            let method = if i % 5 == 0 { "HEAD" } else { "GET" };
            assert_eq!(client.send(method, "/", "").await.status, StatusCode::OK);
        }
    }
    for b in &backends {
        assert_eq!(b.requests(), 50);
        assert_eq!(
            b.stats.accepted.load(Ordering::SeqCst),
            1,
            "backend {}",
            b.name
        );
    }
    gateway.shutdown().await;
}

#[tokio::test]
async fn each_worker_keeps_its_own_pool_and_connections_spread_over_the_workers() {
    let backend = TestBackend::start("a", Speaks::Http1).await;
    let config = GatewayConfig {
        workers: 2,
        ..test_config()
    };
    let (gateway, addr) = http_gateway_with(config, ip(2, 6), vec![backend.ready()]).await;
    // Client connections one after the other, each from its own port: the kernel hashes
    // them over the two workers' sockets; a worker reuses its own pooled connection.
    for _ in 0..40 {
        let mut client = Client::http1(addr).await;
        for _ in 0..3 {
            assert_eq!(client.get("/").await.status, StatusCode::OK);
        }
    }
    assert_eq!(backend.requests(), 120);
    assert_eq!(
        backend.stats.accepted.load(Ordering::SeqCst),
        2,
        "one pooled backend connection per worker (40 client connections cannot all hash to one)"
    );
    gateway.shutdown().await;
    eventually("backend connections closed", || {
        backend.stats.open.load(Ordering::SeqCst) == 0
    })
    .await;
}

#[tokio::test]
async fn a_second_listener_on_an_address_of_ours_is_refused() {
    let backend = TestBackend::start("a", Speaks::Http1).await;
    let (gateway, addr) = http_gateway(ip(2, 7), vec![backend.ready()]).await;
    let mut other = spec(vec![addr], Protocol::Http);
    other.service = "ns/other".to_owned();
    let error = gateway.set_listener(other).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("service ns/other port http: cannot listen on {addr}: address already in use")
    );
    assert_eq!(
        Client::http1(addr).await.get("/").await.backend.as_deref(),
        Some("a")
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_terminating_backend_has_its_idle_connections_closed_and_is_sent_connection_close() {
    let backend = TestBackend::start("a", Speaks::Http1).await;
    let (gateway, addr) = http_gateway(ip(2, 2), vec![backend.ready()]).await;
    let mut client = Client::http1(addr).await;
    assert_eq!(client.get("/").await.status, StatusCode::OK);
    assert_eq!(backend.stats.open.load(Ordering::SeqCst), 1);
    assert_eq!(backend.seen()[0].connection, None);

    gateway.set_endpoints(
        SERVICE,
        PORT,
        vec![endpoint(backend.addr, false, true, true)],
    );
    eventually("the idle pooled connection closed", || {
        backend.stats.open.load(Ordering::SeqCst) == 0
    })
    .await;
    for _ in 0..3 {
        let reply = client.get("/").await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let seen = backend.seen();
    assert!(
        seen[1..]
            .iter()
            .all(|s| s.connection.as_deref() == Some("close")),
        "{seen:?}"
    );
    eventually("fallback connections closed", || {
        backend.stats.open.load(Ordering::SeqCst) == 0
    })
    .await;
    assert_eq!(backend.stats.accepted.load(Ordering::SeqCst), 4);
    gateway.shutdown().await;
}

/// A request in flight to a backend that stops being ready completes; the backend's
/// connection is not used again and closes (HTTP/1.1: not pooled; h2c: GOAWAY once idle).
async fn in_flight_request_completes(speaks: Speaks, protocol: Protocol, at: Ipv4Addr) {
    let backends = [
        TestBackend::start("a", speaks).await,
        TestBackend::start("b", speaks).await,
    ];
    let gateway = Gateway::new(test_config()).unwrap();
    let addr = listen(&gateway, at, spec(vec![], protocol)).await;
    gateway.set_endpoints(SERVICE, PORT, vec![backends[0].ready()]);
    let mut holder = Client::http1(addr).await;
    let hold = tokio::spawn(async move { holder.get("/hold").await });
    eventually("a held request", || {
        backends[0].stats.held.load(Ordering::SeqCst) == 1
    })
    .await;
    gateway.set_endpoints(
        SERVICE,
        PORT,
        vec![
            endpoint(backends[0].addr, false, true, true),
            backends[1].ready(),
        ],
    );
    let mut client = Client::http1(addr).await;
    for _ in 0..3 {
        assert_eq!(client.get("/").await.backend.as_deref(), Some("b"));
    }
    assert_eq!(backends[0].requests(), 1);
    backends[0].release.send_replace(true);
    let reply = hold.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.backend.as_deref(), Some("a"));
    eventually("a's connection closed", || {
        backends[0].stats.open.load(Ordering::SeqCst) == 0
    })
    .await;
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_request_in_flight_to_a_backend_that_starts_terminating_completes() {
    in_flight_request_completes(Speaks::Http1, Protocol::Http, ip(2, 3)).await;
}

#[tokio::test]
async fn an_h2c_stream_in_flight_to_a_backend_that_starts_terminating_completes() {
    in_flight_request_completes(Speaks::H2c, Protocol::H2c, ip(2, 4)).await;
}

// ----- protocols -----

#[tokio::test]
async fn an_h2c_client_reaches_an_http1_backend() {
    let backend = TestBackend::start("a", Speaks::Http1).await;
    let (gateway, addr) = http_gateway(ip(3, 1), vec![backend.ready()]).await;
    let mut client = Client::h2c(addr).await;
    for _ in 0..5 {
        let reply = client.send("POST", "/x?y=1", "hello").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, "a 5");
    }
    let seen = backend.seen();
    assert!(
        seen.iter().all(|s| s.version == Version::HTTP_11),
        "{seen:?}"
    );
    assert!(
        seen.iter().all(|s| s.host.as_deref() == Some("web.test")),
        "{seen:?}"
    );
    assert_eq!(seen[0].forwarded_for.as_deref(), Some("127.0.0.1"));
    assert_eq!(backend.stats.accepted.load(Ordering::SeqCst), 1);
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_h2c_listener_speaks_h2c_to_its_backends_over_one_connection_each() {
    let backends = [
        TestBackend::start("a", Speaks::H2c).await,
        TestBackend::start("b", Speaks::H2c).await,
    ];
    let gateway = Gateway::new(one_worker_config()).unwrap();
    let addr = listen(&gateway, ip(3, 2), spec(vec![], Protocol::H2c)).await;
    gateway.set_endpoints(SERVICE, PORT, backends.iter().map(|b| b.ready()).collect());
    let mut http1 = Client::http1(addr).await;
    let mut h2c = Client::h2c(addr).await;
    for _ in 0..10 {
        assert_eq!(http1.get("/").await.status, StatusCode::OK);
        assert_eq!(h2c.send("PUT", "/", "abc").await.status, StatusCode::OK);
    }
    for b in &backends {
        assert_eq!(b.requests(), 10);
        assert_eq!(b.stats.accepted.load(Ordering::SeqCst), 1);
        let seen = b.seen();
        assert!(
            seen.iter().all(|s| s.version == Version::HTTP_2),
            "{seen:?}"
        );
    }
    // Leaving the ready set releases the shared connection: it closes (GOAWAY).
    gateway.set_endpoints(SERVICE, PORT, vec![backends[1].ready()]);
    eventually("a's h2c connection closed", || {
        backends[0].stats.open.load(Ordering::SeqCst) == 0
    })
    .await;
    assert_eq!(http1.get("/").await.backend.as_deref(), Some("b"));
    gateway.shutdown().await;
}

#[tokio::test]
async fn tcp_is_proxied_with_half_close() {
    // An echo backend that answers only after the client's end of stream.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = listener.local_addr().unwrap();
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut data = Vec::new();
                stream.read_to_end(&mut data).await.unwrap();
                stream.write_all(b"echo: ").await.unwrap();
                stream.write_all(&data).await.unwrap();
            });
        }
    });
    let gateway = Gateway::new(test_config()).unwrap();
    let addr = listen(&gateway, ip(4, 1), spec(vec![], Protocol::Tcp)).await;
    gateway.set_endpoints(SERVICE, PORT, vec![endpoint(backend, true, true, false)]);
    for _ in 0..3 {
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"hello").await.unwrap();
        client.shutdown().await.unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert_eq!(answer, "echo: hello");
    }
    gateway.shutdown().await;
}

#[tokio::test]
async fn tcp_without_endpoints_closes_the_connection_and_skips_dead_ones() {
    let gateway = Gateway::new(test_config()).unwrap();
    let addr = listen(&gateway, ip(4, 2), spec(vec![], Protocol::Tcp)).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);

    // A dead endpoint first, then a live one: the connection goes to the live one.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let live = listener.local_addr().unwrap();
    gateway.set_endpoints(
        SERVICE,
        PORT,
        vec![
            endpoint(dead_addr(), true, true, false),
            endpoint(live, true, true, false),
        ],
    );
    let mut client = TcpStream::connect(addr).await.unwrap();
    let (mut accepted, _) = listener.accept().await.unwrap();
    client.write_all(b"x").await.unwrap();
    let mut one = [0u8; 1];
    accepted.read_exact(&mut one).await.unwrap();
    assert_eq!(&one, b"x");
    drop((client, accepted));
    gateway.shutdown().await;
}

// ----- affinity, barrier, listeners -----

#[tokio::test]
async fn client_ip_affinity_keeps_a_client_on_its_endpoint_while_eligible() {
    let backends = [
        TestBackend::start("a", Speaks::Http1).await,
        TestBackend::start("b", Speaks::Http1).await,
        TestBackend::start("c", Speaks::Http1).await,
    ];
    let gateway = Gateway::new(test_config()).unwrap();
    let mut s = spec(vec![], Protocol::Http);
    s.client_ip_affinity = Some(Duration::from_secs(60));
    let addr = listen(&gateway, ip(5, 1), s).await;
    gateway.set_endpoints(SERVICE, PORT, backends.iter().map(|b| b.ready()).collect());
    let first = get_from(Ipv4Addr::new(127, 0, 0, 2), addr)
        .await
        .backend
        .unwrap();
    for _ in 0..10 {
        let reply = get_from(Ipv4Addr::new(127, 0, 0, 2), addr).await;
        assert_eq!(reply.backend.as_deref(), Some(first.as_str()));
    }
    // Other clients spread.
    let others: Vec<String> =
        futures_util::future::join_all((3..9).map(|i| get_from(Ipv4Addr::new(127, 0, 0, i), addr)))
            .await
            .into_iter()
            .map(|r| r.backend.unwrap())
            .collect();
    assert!(others.iter().any(|o| *o != first), "{others:?}");
    // Its endpoint stops being ready: the client moves, and sticks to the new one.
    let remaining: Vec<Endpoint> = backends
        .iter()
        .map(|b| endpoint(b.addr, b.name != first, true, b.name == first))
        .collect();
    gateway.set_endpoints(SERVICE, PORT, remaining);
    let second = get_from(Ipv4Addr::new(127, 0, 0, 2), addr)
        .await
        .backend
        .unwrap();
    assert_ne!(second, first);
    for _ in 0..5 {
        let reply = get_from(Ipv4Addr::new(127, 0, 0, 2), addr).await;
        assert_eq!(reply.backend.as_deref(), Some(second.as_str()));
    }
    gateway.shutdown().await;
}

#[tokio::test]
async fn routes_new_traffic_to_follows_set_endpoints_and_applied_tells_when() {
    let gateway = Gateway::new(test_config()).unwrap();
    let _addr = listen(&gateway, ip(6, 1), spec(vec![], Protocol::Http)).await;
    let pod: IpAddr = "127.10.0.7".parse().unwrap();
    let other: IpAddr = "127.10.0.8".parse().unwrap();
    let mut applied = gateway.applied();
    applied.mark_unchanged();
    gateway.set_endpoints(
        SERVICE,
        PORT,
        vec![
            endpoint(SocketAddr::new(pod, 8080), true, true, false),
            endpoint(SocketAddr::new(other, 8080), true, true, false),
        ],
    );
    assert!(applied.has_changed().unwrap());
    applied.mark_unchanged();
    assert!(gateway.routes_new_traffic_to(pod));
    assert!(!gateway.routes_new_traffic_to("127.10.0.9".parse().unwrap()));

    // A waiter, as the termination barrier: woken by `applied`, no polling.
    let waiter = {
        let gateway = gateway.clone();
        let mut applied = gateway.applied();
        tokio::spawn(async move {
            while gateway.routes_new_traffic_to(pod) {
                applied.changed().await.unwrap();
            }
        })
    };
    gateway.set_endpoints(
        SERVICE,
        PORT,
        vec![
            endpoint(SocketAddr::new(pod, 8080), false, true, true),
            endpoint(SocketAddr::new(other, 8080), true, true, false),
        ],
    );
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(!gateway.routes_new_traffic_to(pod));
    assert!(gateway.routes_new_traffic_to(other));
    assert!(applied.has_changed().unwrap());
    applied.mark_unchanged();

    gateway.remove_listener(SERVICE, PORT);
    assert!(applied.has_changed().unwrap());
    assert!(!gateway.routes_new_traffic_to(other));
    gateway.shutdown().await;
}

/// The race the barrier closes: a request that picked an endpoint while it was ready but has
/// no response head yet may not have been read by the app, so stopping the app now could
/// close the connection under it. The endpoint counts as routed until the head arrives;
/// requests sent to it as a terminating fallback do not count.
#[tokio::test]
async fn a_request_picked_while_ready_holds_the_barrier_until_its_response_head() {
    let leaving = TestBackend::start_on((ip(6, 4), 0).into(), "leaving", Speaks::Http1).await;
    let staying = TestBackend::start_on((ip(6, 5), 0).into(), "staying", Speaks::Http1).await;
    let (gateway, addr) = http_gateway(ip(6, 6), vec![leaving.ready()]).await;
    let pod = leaving.addr.ip();
    let mut holder = Client::http1(addr).await;
    let hold = tokio::spawn(async move { holder.get("/hold").await });
    eventually("a held request", || {
        leaving.stats.held.load(Ordering::SeqCst) == 1
    })
    .await;

    // The pod is no longer ready: new requests go to `staying`, but the held one has not
    // had its response head.
    gateway.set_endpoints(
        SERVICE,
        PORT,
        vec![endpoint(leaving.addr, false, true, true), staying.ready()],
    );
    assert!(gateway.routes_new_traffic_to(pod));
    let waiter = {
        let gateway = gateway.clone();
        let mut applied = gateway.applied();
        tokio::spawn(async move {
            while gateway.routes_new_traffic_to(pod) {
                applied.changed().await.unwrap();
            }
        })
    };
    let mut client = Client::http1(addr).await;
    assert_eq!(client.get("/").await.backend.as_deref(), Some("staying"));
    assert!(!waiter.is_finished());
    assert!(gateway.routes_new_traffic_to(pod));

    // The head arrives: the barrier is told, without polling.
    leaving.release.send_replace(true);
    let reply = hold.await.unwrap();
    assert_eq!(reply.backend.as_deref(), Some("leaving"));
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(!gateway.routes_new_traffic_to(pod));

    // As the only (terminating, serving) endpoint it gets fallback traffic, which does not
    // hold the barrier.
    leaving.release.send_replace(false);
    gateway.set_endpoints(
        SERVICE,
        PORT,
        vec![endpoint(leaving.addr, false, true, true)],
    );
    let mut holder = Client::http1(addr).await;
    let hold = tokio::spawn(async move { holder.get("/hold").await });
    eventually("a held fallback request", || {
        leaving.stats.held.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(!gateway.routes_new_traffic_to(pod));
    leaving.release.send_replace(true);
    assert_eq!(hold.await.unwrap().status, StatusCode::OK);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_taken_address_is_an_error_that_leaves_the_listener_as_it_was() {
    let backend = TestBackend::start("a", Speaks::Http1).await;
    let (gateway, addr) = http_gateway(ip(6, 2), vec![backend.ready()]).await;
    let taken = std::net::TcpListener::bind((ip(6, 3), 0)).unwrap();
    let taken_addr = taken.local_addr().unwrap();
    let extra = free_addr(ip(6, 4));
    let error = gateway
        .set_listener(spec(vec![addr, extra, taken_addr], Protocol::Tcp))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("service ns/web port http: cannot listen on {taken_addr}: address already in use")
    );
    // Still HTTP, still on its address, with its endpoints; the extra address not bound.
    let mut client = Client::http1(addr).await;
    assert_eq!(client.get("/").await.backend.as_deref(), Some("a"));
    std::net::TcpListener::bind(extra).unwrap();
    // A reconfiguration that works keeps the endpoints and the unchanged address.
    let moved = free_addr(ip(6, 4));
    gateway
        .set_listener(spec(vec![addr, moved], Protocol::Http))
        .await
        .unwrap();
    assert_eq!(client.get("/").await.backend.as_deref(), Some("a"));
    assert_eq!(
        Client::http1(moved).await.get("/").await.backend.as_deref(),
        Some("a")
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn remove_listener_and_shutdown_close_sockets_and_leave_no_task() {
    let backend = TestBackend::start("a", Speaks::Http1).await;
    let (gateway, addr) = http_gateway(ip(6, 5), vec![backend.ready()]).await;
    let mut client = Client::http1(addr).await;
    assert_eq!(client.get("/").await.status, StatusCode::OK);
    gateway.remove_listener(SERVICE, PORT);
    eventually("the listener closed", || {
        std::net::TcpStream::connect(addr).is_err()
    })
    .await;

    let addr = listen(&gateway, ip(6, 5), spec(vec![], Protocol::Http)).await;
    gateway.set_endpoints(SERVICE, PORT, vec![backend.ready()]);
    let mut client = Client::http1(addr).await;
    assert_eq!(client.get("/").await.status, StatusCode::OK);
    gateway.shutdown().await;
    assert!(gateway.inner.shared.tasks.is_empty());
    assert!(std::net::TcpStream::connect(addr).is_err());
    eventually("backend connections closed", || {
        backend.stats.open.load(Ordering::SeqCst) == 0
    })
    .await;
    assert!(matches!(
        gateway.set_listener(spec(vec![addr], Protocol::Http)).await,
        Err(GatewayError::ShutDown)
    ));
}

#[tokio::test]
async fn metrics_count_requests_failures_and_endpoint_connections() {
    let backend = TestBackend::start("a", Speaks::Http1).await;
    let (gateway, addr) = http_gateway(ip(6, 6), vec![backend.ready()]).await;
    let mut registry = prometheus_client::registry::Registry::default();
    gateway.register_metrics(&mut registry);
    let mut client = Client::http1(addr).await;
    for _ in 0..3 {
        assert_eq!(client.get("/").await.status, StatusCode::OK);
    }
    gateway.set_endpoints(SERVICE, PORT, vec![]);
    assert_eq!(
        client.get("/").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    gateway.set_endpoints(SERVICE, PORT, vec![backend.ready()]);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for line in [
        r#"podvisor_gateway_requests_total{service="ns/web",port="http"} 4"#,
        r#"podvisor_gateway_failures_total{service="ns/web",port="http",reason="no_endpoints"} 1"#,
        r#"podvisor_gateway_failures_total{service="ns/web",port="http",reason="backend_error"} 0"#,
        r#"podvisor_gateway_request_duration_seconds_count{service="ns/web",port="http"} 4"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    let endpoint_line = format!(
        r#"podvisor_gateway_endpoint_in_flight{{service="ns/web",port="http",endpoint="{}",target="ns/pod-{}"}} 0"#,
        backend.addr,
        backend.addr.port()
    );
    assert!(
        text.lines().any(|l| l == endpoint_line),
        "{endpoint_line} not in\n{text}"
    );
    gateway.shutdown().await;
}

// ----- load -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_keep_alive_requests_while_endpoints_change_all_succeed() {
    let backends = [
        TestBackend::start("a", Speaks::Http1).await,
        TestBackend::start("b", Speaks::Http1).await,
        TestBackend::start("c", Speaks::Http1).await,
    ];
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    let (gateway, addr) =
        http_gateway(ip(7, 1), backends.iter().map(|b| b.ready()).collect()).await;
    let (done_tx, done) = watch::channel(false);
    // Every set keeps at least one endpoint ready; the others are removed, not ready, or
    // terminating.
    let changer = {
        let gateway = gateway.clone();
        let mut done = done.clone();
        tokio::spawn(async move {
            let mut n = 0usize;
            loop {
                let ready = n % 3;
                let endpoints: Vec<Endpoint> = addrs
                    .iter()
                    .enumerate()
                    .filter_map(|(i, a)| match (i == ready, (n / 3 + i) % 3) {
                        (true, _) => Some(endpoint(*a, true, true, false)),
                        (false, 0) => None,
                        (false, 1) => Some(endpoint(*a, false, true, true)),
                        (false, _) => Some(endpoint(*a, true, true, false)),
                    })
                    .collect();
                gateway.set_endpoints(SERVICE, PORT, endpoints);
                n += 1;
                // Pacing only: a change every millisecond or so, until the load is done.
                tokio::select! {
                    _ = done.wait_for(|d| *d) => break,
                    () = tokio::time::sleep(Duration::from_millis(1)) => {}
                }
            }
            n
        })
    };
    let mut load = JoinSet::new();
    for _ in 0..4 {
        load.spawn(async move {
            let mut client = Client::http1(addr).await;
            let mut failures = Vec::new();
            for _ in 0..500 {
                let reply = client.get("/").await;
                if reply.status != StatusCode::OK {
                    failures.push(reply);
                }
            }
            failures
        });
    }
    let mut failures = Vec::new();
    while let Some(result) = load.join_next().await {
        failures.extend(result.unwrap());
    }
    done_tx.send_replace(true);
    let changes = changer.await.unwrap();
    let total: usize = backends.iter().map(|b| b.requests()).sum();
    assert!(
        failures.is_empty(),
        "{} failures: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(total, 2000);
    assert!(changes > 10, "only {changes} endpoint changes");
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_address_can_be_listened_on_again_right_after_it_was_released() {
    let backend = TestBackend::start("a", Speaks::Http1).await;
    let gateway = Gateway::new(test_config()).unwrap();
    let addr = listen(&gateway, ip(6, 7), spec(vec![], Protocol::Http)).await;
    let mut other = spec(vec![addr], Protocol::Http);
    other.service = "ns/other".to_owned();
    for _ in 0..20 {
        // Removed and set again at once (a Service deleted and created with the same VIP).
        gateway.remove_listener(SERVICE, PORT);
        gateway
            .set_listener(spec(vec![addr], Protocol::Http))
            .await
            .unwrap();
        // Moved from one service port to another in two calls.
        gateway
            .set_listener(spec(vec![], Protocol::Http))
            .await
            .unwrap();
        gateway.set_listener(other.clone()).await.unwrap();
        gateway.remove_listener("ns/other", PORT);
        gateway
            .set_listener(spec(vec![addr], Protocol::Http))
            .await
            .unwrap();
    }
    gateway.set_endpoints(SERVICE, PORT, vec![backend.ready()]);
    assert_eq!(
        Client::http1(addr).await.get("/").await.status,
        StatusCode::OK
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn shutdown_cuts_what_is_still_open_after_the_drain_timeout() {
    let backend = TestBackend::start("a", Speaks::Http1).await;
    let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = Gateway::new(GatewayConfig {
        drain_timeout: Duration::from_millis(200),
        ..test_config()
    })
    .unwrap();
    let http_addr = listen(&gateway, ip(6, 8), spec(vec![], Protocol::Http)).await;
    gateway.set_endpoints(SERVICE, PORT, vec![backend.ready()]);
    let mut tcp_spec = spec(vec![], Protocol::Tcp);
    tcp_spec.port_name = "tcp".to_owned();
    let tcp_addr = listen(&gateway, ip(6, 8), tcp_spec).await;
    gateway.set_endpoints(
        SERVICE,
        "tcp",
        vec![endpoint(echo.local_addr().unwrap(), true, true, false)],
    );
    // A request that will not finish by itself and a TCP connection nobody closes.
    let mut holder = Client::http1(http_addr).await;
    let hold = tokio::spawn(async move {
        let _ = holder.get("/hold").await;
    });
    eventually("a held request", || {
        backend.stats.held.load(Ordering::SeqCst) == 1
    })
    .await;
    let mut tcp_client = TcpStream::connect(tcp_addr).await.unwrap();
    let (_tcp_backend, _) = echo.accept().await.unwrap();

    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), gateway.shutdown())
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(gateway.inner.shared.tasks.is_empty());
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp_client.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the proxied connection was cut");
    hold.abort();
    backend.release.send_replace(true);
}

// ----- header rewriting (pure) -----

fn headers(pairs: &[(&str, &str)]) -> ::http::HeaderMap {
    let mut map = ::http::HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            ::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            ::http::HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn names(map: &::http::HeaderMap) -> Vec<&str> {
    let mut names: Vec<&str> = map.keys().map(::http::HeaderName::as_str).collect();
    names.sort_unstable();
    names
}

#[test]
fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
    let mut map = headers(&[
        ("connection", "keep-alive, X-Trace"),
        ("connection", "close,upgrade"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("x-trace", "1"),
        ("te", "gzip"),
        ("host", "web.test"),
        ("content-type", "text/plain"),
    ]);
    http::strip_hop_by_hop(&mut map);
    assert_eq!(names(&map), ["content-type", "host"]);
    // A whole value of `Close` (any case) names nothing; the next value still names a header.
    let mut map = headers(&[
        ("connection", "Close"),
        ("connection", "x-gone"),
        ("x-gone", "1"),
        ("x-keep", "1"),
    ]);
    http::strip_hop_by_hop(&mut map);
    assert_eq!(names(&map), ["x-keep"]);
}

#[test]
fn te_trailers_and_end_to_end_headers_stay() {
    let mut map = headers(&[("te", "trailers"), ("content-length", "5"), ("x-keep", "1")]);
    http::strip_hop_by_hop(&mut map);
    assert_eq!(names(&map), ["content-length", "te", "x-keep"]);
    let mut map = headers(&[("connection", "keep-alive"), ("x-keep", "1")]);
    http::strip_hop_by_hop(&mut map);
    assert_eq!(names(&map), ["x-keep"]);
}

#[test]
fn the_client_is_appended_to_x_forwarded_for() {
    let client = http::Client::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)));
    let mut map = headers(&[]);
    client.append_forwarded_for(&mut map);
    assert_eq!(map["x-forwarded-for"], "127.0.0.9");
    let mut map = headers(&[("x-forwarded-for", "10.0.0.1, 10.0.0.2")]);
    client.append_forwarded_for(&mut map);
    assert_eq!(map["x-forwarded-for"], "10.0.0.1, 10.0.0.2, 127.0.0.9");
    let ipv6 = http::Client::new("::1".parse().unwrap());
    let mut map = headers(&[]);
    ipv6.append_forwarded_for(&mut map);
    assert_eq!(map["x-forwarded-for"], "::1");
}
mod wire;
