//! Wire-level tests of the HTTP/1.1 proxy: hand-written backends and clients on raw sockets,
//! so that every test controls the framing byte for byte (RFC 9110, RFC 9112).
//!
//! Gateways listen on 127.77.40.x, clients that need a known address bind 127.77.41.x,
//! backends listen on 127.0.0.1.

use std::future::Future;
use std::io;

use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::*;

/// How long a client waits for any one read or write before the test fails as hung.
const STEP: Duration = Duration::from_secs(10);

// ----- messages -----

/// The head of one HTTP/1.1 message: its start line and its fields, names lowercased.
#[derive(Clone, Debug)]
struct Head {
    start: String,
    fields: Vec<(String, String)>,
}

impl Head {
    fn parse(bytes: &[u8]) -> io::Result<Head> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "head is not UTF-8"))?;
        let mut lines = text.split("\r\n");
        let start = lines.next().unwrap_or_default().to_owned();
        let mut fields = Vec::new();
        for line in lines {
            let (name, value) = line.split_once(':').ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("bad field {line:?}"))
            })?;
            fields.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        Ok(Head { start, fields })
    }

    fn word(&self, i: usize) -> &str {
        self.start.splitn(3, ' ').nth(i).unwrap_or_default()
    }

    /// The status code of a response.
    fn status(&self) -> u16 {
        self.word(1).parse().unwrap_or(0)
    }

    /// The method of a request.
    fn method(&self) -> &str {
        self.word(0)
    }

    /// The request target of a request.
    fn target(&self) -> &str {
        self.word(1)
    }

    /// The first value of a field.
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The comma-separated tokens of every value of a field, lowercased.
    fn tokens(&self, name: &str) -> Vec<String> {
        self.all(name)
            .iter()
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect()
    }
}

/// How a message's body was delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Framing {
    /// No body by the rules (a request without length, HEAD, 1xx, 204, 304).
    Empty,
    Length,
    Chunked,
    /// Until the connection closed.
    Close,
}

/// One message as read off the wire, its body decoded.
#[derive(Clone, Debug)]
struct Message {
    head: Head,
    body: Vec<u8>,
    framing: Framing,
    trailers: Vec<(String, String)>,
}

impl Message {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

fn eof(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, what.to_owned())
}

// ----- connections -----

/// The reading side of a connection, with what was read and not yet consumed.
struct Reader {
    read: OwnedReadHalf,
    buf: Vec<u8>,
    /// Clients fail the test when the peer sends nothing for `STEP`; backends wait.
    deadline: bool,
}

impl Reader {
    /// Reads more; `Ok(0)` at the end of the stream.
    async fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = vec![0u8; 64 * 1024];
        let n = if self.deadline {
            match tokio::time::timeout(STEP, self.read.read(&mut chunk)).await {
                Ok(result) => result?,
                Err(_) => panic!("nothing came for {STEP:?}: the gateway hangs"),
            }
        } else {
            self.read.read(&mut chunk).await?
        };
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads a head; `None` if the stream ended cleanly before its first byte.
    async fn head(&mut self) -> io::Result<Option<Head>> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = Head::parse(&self.buf[..end]);
                self.buf.drain(..end + 4);
                return head.map(Some);
            }
            if self.fill().await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(eof("the stream ended in a head"))
                };
            }
        }
    }

    async fn exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill().await? == 0 {
                return Err(eof(&format!(
                    "the stream ended after {} of {n} body bytes",
                    self.buf.len()
                )));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// A line without its CRLF.
    async fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                return Ok(line);
            }
            if self.fill().await? == 0 {
                return Err(eof("the stream ended in a chunked body"));
            }
        }
    }

    /// A chunked body, decoded, and its trailer fields.
    async fn chunked(&mut self) -> io::Result<(Vec<u8>, Vec<(String, String)>)> {
        let mut body = Vec::new();
        loop {
            let line = self.line().await?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| invalid(format!("bad chunk size line {line:?}")))?;
            if size == 0 {
                break;
            }
            body.extend(self.exact(size).await?);
            if self.exact(2).await? != b"\r\n" {
                return Err(invalid("a chunk not followed by CRLF"));
            }
        }
        let mut trailers = Vec::new();
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                return Ok((body, trailers));
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid(format!("bad trailer {line:?}")))?;
            trailers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
    }

    async fn until_close(&mut self) -> io::Result<Vec<u8>> {
        while self.fill().await? > 0 {}
        Ok(std::mem::take(&mut self.buf))
    }

    /// The body after `head` (RFC 9112 §6.3); `response` selects the rule for a message
    /// without length (a response reads until close, a request has none).
    async fn body(&mut self, head: Head, response: bool) -> io::Result<Message> {
        let codings = head.tokens("transfer-encoding");
        let lengths = head.all("content-length");
        let (body, framing, trailers) = if !codings.is_empty() {
            if codings.last().map(String::as_str) == Some("chunked") {
                let (body, trailers) = self.chunked().await?;
                (body, Framing::Chunked, trailers)
            } else if response {
                (self.until_close().await?, Framing::Close, Vec::new())
            } else {
                return Err(invalid("a request whose last coding is not chunked"));
            }
        } else if let Some(first) = lengths.first() {
            if lengths.iter().any(|l| l != first) {
                return Err(invalid("differing Content-Length values"));
            }
            let n: usize = first
                .parse()
                .map_err(|_| invalid(format!("bad Content-Length {first:?}")))?;
            (self.exact(n).await?, Framing::Length, Vec::new())
        } else if response {
            (self.until_close().await?, Framing::Close, Vec::new())
        } else {
            (Vec::new(), Framing::Empty, Vec::new())
        };
        Ok(Message {
            head,
            body,
            framing,
            trailers,
        })
    }

    /// One request; `None` if the connection closed between requests.
    async fn request(&mut self) -> io::Result<Option<Message>> {
        match self.head().await? {
            Some(head) => self.body(head, false).await.map(Some),
            None => Ok(None),
        }
    }

    /// One response (1xx included) to a request with `method`.
    async fn response(&mut self, method: &str) -> io::Result<Message> {
        let head = self
            .head()
            .await?
            .ok_or_else(|| eof("the connection closed before a response"))?;
        let status = head.status();
        if method == "HEAD" || (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(Message {
                head,
                body: Vec::new(),
                framing: Framing::Empty,
                trailers: Vec::new(),
            });
        }
        self.body(head, true).await
    }

    /// The final response to a request with `method`, after any 1xx.
    async fn final_response(&mut self, method: &str) -> io::Result<Message> {
        loop {
            let response = self.response(method).await?;
            if !(100..200).contains(&response.head.status()) {
                return Ok(response);
            }
        }
    }
}

/// One side of a TCP connection.
struct Conn {
    reader: Reader,
    writer: OwnedWriteHalf,
}

impl Conn {
    fn new(stream: TcpStream, deadline: bool) -> Conn {
        stream.set_nodelay(true).unwrap();
        let (read, writer) = stream.into_split();
        Conn {
            reader: Reader {
                read,
                buf: Vec::new(),
                deadline,
            },
            writer,
        }
    }

    /// A client connection to the gateway.
    async fn connect(addr: SocketAddr) -> Conn {
        Conn::new(TcpStream::connect(addr).await.unwrap(), true)
    }

    /// A client connection to the gateway from the loopback address `from`.
    async fn connect_from(from: Ipv4Addr, addr: SocketAddr) -> Conn {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind((from, 0).into()).unwrap();
        Conn::new(socket.connect(addr).await.unwrap(), true)
    }

    async fn try_write(&mut self, bytes: &[u8]) -> io::Result<()> {
        write_all(&mut self.writer, bytes).await
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.try_write(bytes).await.unwrap();
    }

    /// Sends a request and reads its final response, which must be complete.
    async fn exchange(&mut self, request: &[u8]) -> Message {
        self.write(request).await;
        let method = std::str::from_utf8(request)
            .unwrap_or_default()
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_owned();
        self.reader.final_response(&method).await.unwrap()
    }

    /// Asserts that the peer closes the connection (FIN or reset) without sending more.
    async fn assert_closed(&mut self) {
        assert!(
            self.reader.buf.is_empty(),
            "unexpected bytes: {:?}",
            String::from_utf8_lossy(&self.reader.buf)
        );
        match self.reader.fill().await {
            Ok(0) | Err(_) => {}
            Ok(_) => panic!(
                "the connection stayed open and sent {:?}",
                String::from_utf8_lossy(&self.reader.buf)
            ),
        }
    }
}

async fn write_all(writer: &mut OwnedWriteHalf, bytes: &[u8]) -> io::Result<()> {
    match tokio::time::timeout(STEP, writer.write_all(bytes)).await {
        Ok(result) => result,
        Err(_) => panic!("could not write for {STEP:?}: the gateway reads nothing"),
    }
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: web.test\r\n\r\n").into_bytes()
}

/// A 200 with `body` and its length.
fn ok(body: &[u8]) -> Vec<u8> {
    let mut response =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    response.extend_from_slice(body);
    response
}

/// `n` bytes of a pattern that does not repeat every 256 bytes.
fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| ((i % 251) as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

// ----- backends -----

/// Every request a backend read, in order.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Message>>>);

impl Log {
    fn push(&self, message: Message) {
        self.0.lock().unwrap().push(message);
    }

    fn all(&self) -> Vec<Message> {
        self.0.lock().unwrap().clone()
    }

    fn only(&self) -> Message {
        let all = self.all();
        assert_eq!(all.len(), 1, "{all:?}");
        all.into_iter().next().unwrap()
    }

    fn targets(&self) -> Vec<String> {
        self.all()
            .iter()
            .map(|m| m.head.target().to_owned())
            .collect()
    }
}

/// A hand-written backend on 127.0.0.1.
struct RawBackend {
    addr: SocketAddr,
    /// Connections accepted.
    accepted: Arc<AtomicUsize>,
    /// Connections whose handler returned (it closed its side).
    closed: Arc<AtomicUsize>,
    log: Log,
    _tasks: JoinSet<()>,
}

impl RawBackend {
    /// Hands every accepted connection to `serve` with the backend's log.
    async fn start<F, Fut>(serve: F) -> RawBackend
    where
        F: Fn(Conn, Log) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let log = Log::default();
        let mut tasks = JoinSet::new();
        let (a, c, l) = (accepted.clone(), closed.clone(), log.clone());
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                a.fetch_add(1, Ordering::SeqCst);
                let handler = serve(Conn::new(stream, false), l.clone());
                let c = c.clone();
                connections.spawn(async move {
                    handler.await;
                    c.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        RawBackend {
            addr,
            accepted,
            closed,
            log,
            _tasks: tasks,
        }
    }

    /// A keep-alive backend that logs each request and answers what `respond` writes; it
    /// closes the connection after a response that says `Connection: close`.
    async fn answering(respond: fn(&Message) -> Vec<u8>) -> RawBackend {
        RawBackend::start(move |mut conn, log| async move {
            while let Ok(Some(request)) = conn.reader.request().await {
                let response = respond(&request);
                log.push(request);
                if conn.try_write(&response).await.is_err() {
                    return;
                }
                let head_end = response
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .unwrap_or(response.len());
                let head = Head::parse(&response[..head_end]).unwrap();
                if head.tokens("connection").iter().any(|t| t == "close") {
                    return;
                }
            }
        })
        .await
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Answers 200 with the request target as the body.
fn echo_target(request: &Message) -> Vec<u8> {
    ok(request.head.target().as_bytes())
}

/// Answers 200 with the request body.
fn echo_body(request: &Message) -> Vec<u8> {
    ok(&request.body)
}

/// A gateway on `at` with `backend` as its one ready endpoint.
async fn gateway_to(at: Ipv4Addr, backend: &RawBackend) -> (Gateway, SocketAddr) {
    http_gateway(at, vec![endpoint(backend.addr, true, true, false)]).await
}

fn gateway_ip(n: u8) -> Ipv4Addr {
    ip(40, n)
}

fn client_ip(n: u8) -> Ipv4Addr {
    ip(41, n)
}

// ----- framing -----

#[tokio::test]
async fn two_pipelined_requests_in_one_write_get_two_responses_in_order() {
    let backend = RawBackend::answering(echo_target).await;
    let (gateway, addr) = gateway_to(gateway_ip(1), &backend).await;
    let mut client = Conn::connect(addr).await;
    client.write(&[get("/one"), get("/two")].concat()).await;
    for path in ["/one", "/two"] {
        let response = client.reader.final_response("GET").await.unwrap();
        assert_eq!(response.head.status(), 200, "{response:?}");
        assert_eq!(response.text(), path);
    }
    assert_eq!(backend.log.targets(), ["/one", "/two"]);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_chunked_request_body_reaches_the_backend_whole() {
    let backend = RawBackend::answering(echo_body).await;
    let (gateway, addr) = gateway_to(gateway_ip(2), &backend).await;
    let mut client = Conn::connect(addr).await;
    let response = client
        .exchange(
            b"POST /up HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;name=value\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n",
        )
        .await;
    assert_eq!(response.head.status(), 200, "{response:?}");
    assert_eq!(response.text(), "hello world");
    let seen = backend.log.only();
    assert_eq!(seen.text(), "hello world");
    // Forwarded chunked with its trailer fields; never made into header fields.
    assert_eq!(
        seen.trailers,
        [("x-trailer".to_owned(), "t".to_owned())],
        "{seen:?}"
    );
    assert!(!seen.head.has("x-trailer"), "{seen:?}");
    assert_eq!(seen.framing, Framing::Chunked, "{seen:?}");
    assert!(
        !(seen.head.has("content-length") && seen.head.has("transfer-encoding")),
        "{seen:?}"
    );
    // The connection goes on.
    assert_eq!(client.exchange(&get("/next")).await.text(), "");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_chunked_response_body_reaches_the_client_whole_and_the_connection_goes_on() {
    fn respond(request: &Message) -> Vec<u8> {
        if request.head.target() == "/chunked" {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\n\r\n"
                .to_vec()
        } else {
            echo_target(request)
        }
    }
    let backend = RawBackend::answering(respond).await;
    let (gateway, addr) = gateway_to(gateway_ip(3), &backend).await;
    let mut client = Conn::connect(addr).await;
    let response = client.exchange(&get("/chunked")).await;
    assert_eq!(response.head.status(), 200, "{response:?}");
    assert_eq!(response.text(), "abcdefg");
    assert_ne!(response.framing, Framing::Close, "{response:?}");
    assert_eq!(client.exchange(&get("/after")).await.text(), "/after");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_response_delimited_by_close_reaches_the_client_whole() {
    let body = pattern(100_000, 1);
    let backend = {
        let body = body.clone();
        RawBackend::start(move |mut conn, log| {
            let body = body.clone();
            async move {
                let Ok(Some(request)) = conn.reader.request().await else {
                    return;
                };
                log.push(request);
                let mut response = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n".to_vec();
                response.extend_from_slice(&body);
                let _ = conn.try_write(&response).await;
                // Dropping both halves closes the connection: the end of the body.
            }
        })
        .await
    };
    let (gateway, addr) = gateway_to(gateway_ip(4), &backend).await;
    let mut client = Conn::connect(addr).await;
    let response = client.exchange(&get("/")).await;
    assert_eq!(response.head.status(), 200, "{response:?}");
    assert!(response.body == body, "the body differs");
    // Passed on delimited by the close, as it came (HTTP/1.1 allows it to any client).
    assert_eq!(response.framing, Framing::Close);
    client.assert_closed().await;
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_http_1_0_request_without_keep_alive_is_answered_and_the_connection_closed() {
    let backend = RawBackend::answering(echo_target).await;
    let (gateway, addr) = gateway_to(gateway_ip(5), &backend).await;
    let mut client = Conn::connect(addr).await;
    let response = client
        .exchange(b"GET /old HTTP/1.0\r\nHost: web.test\r\n\r\n")
        .await;
    assert_eq!(response.head.status(), 200, "{response:?}");
    assert_eq!(response.text(), "/old");
    client.assert_closed().await;
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_http_1_0_request_with_keep_alive_keeps_its_connection() {
    let backend = RawBackend::answering(echo_target).await;
    let (gateway, addr) = gateway_to(gateway_ip(6), &backend).await;
    let mut client = Conn::connect(addr).await;
    let request = |path: &str| {
        format!("GET {path} HTTP/1.0\r\nHost: web.test\r\nConnection: keep-alive\r\n\r\n")
            .into_bytes()
    };
    let response = client.exchange(&request("/one")).await;
    assert_eq!(response.head.status(), 200, "{response:?}");
    assert_eq!(response.text(), "/one");
    // An HTTP/1.0 connection persists when the response says `keep-alive` (RFC 9112 §9.3)
    // and the body has a length.
    assert!(
        response
            .head
            .tokens("connection")
            .contains(&"keep-alive".to_owned())
    );
    assert_eq!(response.framing, Framing::Length);
    assert_eq!(client.exchange(&request("/two")).await.text(), "/two");
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_http_1_0_client_never_gets_a_chunked_response() {
    fn respond(_: &Message) -> Vec<u8> {
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
            .to_vec()
    }
    let backend = RawBackend::answering(respond).await;
    let (gateway, addr) = gateway_to(gateway_ip(7), &backend).await;
    let mut client = Conn::connect(addr).await;
    let response = client
        .exchange(b"GET / HTTP/1.0\r\nHost: web.test\r\n\r\n")
        .await;
    assert_eq!(response.head.status(), 200, "{response:?}");
    // RFC 9112 §6.1: no Transfer-Encoding in a response to an HTTP/1.0 request.
    assert!(!response.head.has("transfer-encoding"), "{response:?}");
    assert_eq!(response.text(), "abcde");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_head_response_with_content_length_has_no_body_and_the_connection_goes_on() {
    fn respond(request: &Message) -> Vec<u8> {
        if request.head.method() == "HEAD" {
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec()
        } else {
            echo_target(request)
        }
    }
    let backend = RawBackend::answering(respond).await;
    let (gateway, addr) = gateway_to(gateway_ip(8), &backend).await;
    let mut client = Conn::connect(addr).await;
    let response = client
        .exchange(b"HEAD /head HTTP/1.1\r\nHost: web.test\r\n\r\n")
        .await;
    assert_eq!(response.head.status(), 200, "{response:?}");
    assert_eq!(
        response.head.get("content-length"),
        Some("1000"),
        "{response:?}"
    );
    // Any body byte sent after the HEAD response would be read as the next status line.
    let next = client.exchange(&get("/next")).await;
    assert_eq!(next.head.status(), 200, "{next:?}");
    assert_eq!(next.text(), "/next");
    let methods: Vec<String> = backend
        .log
        .all()
        .iter()
        .map(|m| m.head.method().to_owned())
        .collect();
    assert_eq!(methods, ["HEAD", "GET"]);
    gateway.shutdown().await;
}

#[tokio::test]
async fn no_content_and_not_modified_responses_have_no_body_and_the_connection_goes_on() {
    fn respond(request: &Message) -> Vec<u8> {
        match request.head.target() {
            "/204" => b"HTTP/1.1 204 No Content\r\nX-Done: 1\r\n\r\n".to_vec(),
            "/304" => b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n".to_vec(),
            _ => echo_target(request),
        }
    }
    let backend = RawBackend::answering(respond).await;
    let (gateway, addr) = gateway_to(gateway_ip(9), &backend).await;
    let mut client = Conn::connect(addr).await;
    let response = client.exchange(&get("/204")).await;
    assert_eq!(response.head.status(), 204, "{response:?}");
    assert_eq!(response.head.get("x-done"), Some("1"));
    // RFC 9110 §8.6, RFC 9112 §6.1: neither in a 204.
    assert!(!response.head.has("content-length"), "{response:?}");
    assert!(!response.head.has("transfer-encoding"), "{response:?}");
    let response = client.exchange(&get("/304")).await;
    assert_eq!(response.head.status(), 304, "{response:?}");
    assert_eq!(response.head.get("etag"), Some("\"v1\""));
    assert!(!response.head.has("transfer-encoding"), "{response:?}");
    let next = client.exchange(&get("/after")).await;
    assert_eq!(next.head.status(), 200, "{next:?}");
    assert_eq!(next.text(), "/after");
    gateway.shutdown().await;
}

#[tokio::test]
async fn expect_100_continue_gets_100_before_the_body_is_sent_then_the_final_response() {
    // Answers 100 itself when asked, as a server does, then echoes the body.
    let backend = RawBackend::start(|mut conn, log| async move {
        while let Ok(Some(head)) = conn.reader.head().await {
            if head.tokens("expect").iter().any(|t| t == "100-continue")
                && conn
                    .try_write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    .await
                    .is_err()
            {
                return;
            }
            let Ok(request) = conn.reader.body(head, false).await else {
                return;
            };
            let response = echo_body(&request);
            log.push(request);
            if conn.try_write(&response).await.is_err() {
                return;
            }
        }
    })
    .await;
    let (gateway, addr) = gateway_to(gateway_ip(10), &backend).await;
    let mut client = Conn::connect(addr).await;
    client
        .write(
            b"POST /upload HTTP/1.1\r\nHost: web.test\r\nContent-Length: 10\r\n\
              Expect: 100-continue\r\n\r\n",
        )
        .await;
    let interim = tokio::time::timeout(Duration::from_secs(5), client.reader.response("POST"))
        .await
        .expect("no 100 Continue within 5 s")
        .unwrap();
    assert_eq!(interim.head.status(), 100, "{interim:?}");
    client.write(b"0123456789").await;
    let response = client.reader.final_response("POST").await.unwrap();
    assert_eq!(response.head.status(), 200, "{response:?}");
    assert_eq!(response.text(), "0123456789");
    assert_eq!(backend.log.only().text(), "0123456789");
    gateway.shutdown().await;
}

// ----- fields -----

#[tokio::test]
async fn x_forwarded_for_gets_the_client_address_appended() {
    let backend = RawBackend::answering(echo_target).await;
    let (gateway, addr) = gateway_to(gateway_ip(11), &backend).await;
    let mut client = Conn::connect_from(client_ip(11), addr).await;
    assert_eq!(client.exchange(&get("/plain")).await.head.status(), 200);
    let forwarded = client
        .exchange(b"GET /forwarded HTTP/1.1\r\nHost: web.test\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n")
        .await;
    assert_eq!(forwarded.head.status(), 200);
    let seen = backend.log.all();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].head.all("x-forwarded-for"), ["127.77.41.11"]);
    assert_eq!(
        seen[1].head.all("x-forwarded-for"),
        ["10.1.2.3, 127.77.41.11"]
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn hop_by_hop_request_fields_and_those_connection_names_do_not_reach_the_backend() {
    let backend = RawBackend::answering(echo_target).await;
    let (gateway, addr) = gateway_to(gateway_ip(12), &backend).await;
    let mut client = Conn::connect(addr).await;
    let response = client
        .exchange(
            b"GET /hop HTTP/1.1\r\nHost: web.test\r\nConnection: close, X-Secret\r\n\
              X-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n\
              TE: trailers\r\nX-Kept: yes\r\n\r\n",
        )
        .await;
    assert_eq!(response.head.status(), 200, "{response:?}");
    let seen = backend.log.only();
    for name in ["x-secret", "keep-alive", "proxy-connection"] {
        assert!(!seen.head.has(name), "{name} reached the backend: {seen:?}");
    }
    // The gateway may say what it wants of its own connection, but names no field of ours.
    assert!(
        seen.head
            .tokens("connection")
            .iter()
            .all(|t| t == "keep-alive" || t == "close"),
        "{seen:?}"
    );
    assert_eq!(seen.head.get("te"), Some("trailers"), "{seen:?}");
    assert_eq!(seen.head.get("x-kept"), Some("yes"));
    // `Connection: close` from the client: the gateway closes after the response.
    client.assert_closed().await;
    gateway.shutdown().await;
}

#[tokio::test]
async fn hop_by_hop_response_fields_and_those_connection_names_do_not_reach_the_client() {
    fn respond(_: &Message) -> Vec<u8> {
        b"HTTP/1.1 200 OK\r\nConnection: X-Internal\r\nX-Internal: 1\r\n\
          Keep-Alive: timeout=5\r\nX-Public: 1\r\nContent-Length: 2\r\n\r\nok"
            .to_vec()
    }
    let backend = RawBackend::answering(respond).await;
    let (gateway, addr) = gateway_to(gateway_ip(13), &backend).await;
    let mut client = Conn::connect(addr).await;
    let response = client.exchange(&get("/")).await;
    assert_eq!(response.head.status(), 200, "{response:?}");
    assert_eq!(response.text(), "ok");
    assert!(!response.head.has("x-internal"), "{response:?}");
    assert!(!response.head.has("keep-alive"), "{response:?}");
    assert!(
        !response
            .head
            .tokens("connection")
            .iter()
            .any(|t| t == "x-internal"),
        "{response:?}"
    );
    assert_eq!(response.head.get("x-public"), Some("1"));
    assert_eq!(client.exchange(&get("/")).await.text(), "ok");
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_absolute_form_target_reaches_the_backend_in_origin_form_with_its_host() {
    let backend = RawBackend::answering(echo_target).await;
    let (gateway, addr) = gateway_to(gateway_ip(14), &backend).await;
    let mut client = Conn::connect(addr).await;
    let response = client
        .exchange(b"GET http://example.test/path?q=1 HTTP/1.1\r\n\r\n")
        .await;
    assert_eq!(response.head.status(), 200, "{response:?}");
    let seen = backend.log.only();
    assert_eq!(seen.head.target(), "/path?q=1");
    assert_eq!(seen.head.all("host"), ["example.test"]);
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_absolute_form_target_replaces_a_different_host() {
    let backend = RawBackend::answering(echo_target).await;
    let (gateway, addr) = gateway_to(gateway_ip(15), &backend).await;
    let mut client = Conn::connect(addr).await;
    let response = client
        .exchange(b"GET http://example.test/path HTTP/1.1\r\nHost: other.test\r\n\r\n")
        .await;
    assert_eq!(response.head.status(), 200, "{response:?}");
    let seen = backend.log.only();
    assert_eq!(seen.head.target(), "/path");
    assert_eq!(seen.head.all("host"), ["example.test"]);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_response_without_date_gets_one_and_a_date_from_the_backend_is_kept() {
    fn respond(request: &Message) -> Vec<u8> {
        if request.head.target() == "/dated" {
            b"HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\n\r\n"
                .to_vec()
        } else {
            ok(b"")
        }
    }
    let backend = RawBackend::answering(respond).await;
    let (gateway, addr) = gateway_to(gateway_ip(25), &backend).await;
    let mut client = Conn::connect(addr).await;
    // RFC 9110 §6.6.1: a recipient with a clock that forwards a response without Date adds one.
    let undated = client.exchange(&get("/")).await;
    assert_eq!(undated.head.all("date").len(), 1, "{undated:?}");
    let dated = client.exchange(&get("/dated")).await;
    assert_eq!(
        dated.head.all("date"),
        ["Sun, 06 Nov 1994 08:49:37 GMT"],
        "{dated:?}"
    );
    gateway.shutdown().await;
}

// ----- malformed and large requests -----

#[tokio::test]
async fn a_malformed_request_line_gets_400_and_the_connection_closes() {
    let backend = RawBackend::answering(echo_target).await;
    let (gateway, addr) = gateway_to(gateway_ip(16), &backend).await;
    let mut client = Conn::connect(addr).await;
    let response = client
        .exchange(b"GET /a b HTTP/1.1\r\nHost: web.test\r\n\r\n")
        .await;
    assert_eq!(response.head.status(), 400, "{response:?}");
    client.assert_closed().await;
    assert_eq!(backend.accepted(), 0);
    // The gateway lingers until the client closes (nginx's `lingering_close`).
    drop(client);
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_http_1_1_request_without_host_gets_400() {
    let backend = RawBackend::answering(echo_target).await;
    let (gateway, addr) = gateway_to(gateway_ip(26), &backend).await;
    let mut client = Conn::connect(addr).await;
    let response = client.exchange(b"GET / HTTP/1.1\r\n\r\n").await;
    assert_eq!(response.head.status(), 400, "{response:?}");
    assert!(backend.log.all().is_empty());
    // The gateway lingers until the client closes (nginx's `lingering_close`).
    drop(client);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_request_with_two_host_fields_gets_400() {
    let backend = RawBackend::answering(echo_target).await;
    let (gateway, addr) = gateway_to(gateway_ip(27), &backend).await;
    let mut client = Conn::connect(addr).await;
    let response = client
        .exchange(b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n")
        .await;
    assert_eq!(response.head.status(), 400, "{response:?}");
    assert!(backend.log.all().is_empty());
    // The gateway lingers until the client closes (nginx's `lingering_close`).
    drop(client);
    gateway.shutdown().await;
}

#[tokio::test]
async fn differing_content_lengths_get_400_and_the_connection_closes() {
    let backend = RawBackend::answering(echo_body).await;
    let (gateway, addr) = gateway_to(gateway_ip(17), &backend).await;
    let mut client = Conn::connect(addr).await;
    let response = client
        .exchange(
            b"POST / HTTP/1.1\r\nHost: web.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n\
              hello!",
        )
        .await;
    // RFC 9112 §6.3 item 5.
    assert_eq!(response.head.status(), 400, "{response:?}");
    client.assert_closed().await;
    assert!(backend.log.all().is_empty());
    // The gateway lingers until the client closes (nginx's `lingering_close`).
    drop(client);
    gateway.shutdown().await;
}

#[tokio::test]
async fn content_length_with_chunked_is_read_as_chunked_and_the_connection_closes() {
    let backend = RawBackend::answering(echo_body).await;
    let (gateway, addr) = gateway_to(gateway_ip(18), &backend).await;
    let mut client = Conn::connect(addr).await;
    // Read by Content-Length, `GET /smuggled` would be a second request.
    let response = client
        .exchange(
            b"POST / HTTP/1.1\r\nHost: web.test\r\nContent-Length: 3\r\n\
              Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        )
        .await;
    // RFC 9112 §6.3 item 3: Transfer-Encoding wins (the backend sees only it) and the
    // connection closes after the response.
    assert_eq!(response.head.status(), 200, "{response:?}");
    assert_eq!(response.text(), "hello");
    let seen = backend.log.only();
    assert_eq!(seen.text(), "hello");
    assert!(
        !seen.head.has("content-length") && seen.head.has("transfer-encoding"),
        "{seen:?}"
    );
    client.assert_closed().await;
    gateway.shutdown().await;
}

/// Sends a request whose head has one field of `size` bytes and reads the response while
/// writing (the gateway may stop reading and close).
async fn huge_head(at: Ipv4Addr, size: usize) -> (Message, RawBackend, Gateway, Conn) {
    let backend = RawBackend::answering(echo_target).await;
    let (gateway, addr) = gateway_to(at, &backend).await;
    let mut client = Conn::connect(addr).await;
    let mut request = b"GET / HTTP/1.1\r\nHost: web.test\r\nX-Huge: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', size));
    request.extend_from_slice(b"\r\n\r\n");
    let (_written, response) = tokio::join!(
        write_all(&mut client.writer, &request),
        client.reader.final_response("GET")
    );
    let response = response.expect("a response, not a reset");
    (response, backend, gateway, client)
}

#[tokio::test]
async fn a_request_head_over_100_kib_gets_a_4xx_and_the_connection_closes() {
    let (response, backend, gateway, mut client) = huge_head(gateway_ip(19), 110 * 1024).await;
    assert!(
        [400, 431].contains(&response.head.status()),
        "{:?}",
        response.head
    );
    client.assert_closed().await;
    assert!(backend.log.all().is_empty());
    // The gateway lingers until the client closes (nginx's `lingering_close`).
    drop(client);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_request_head_of_a_mebibyte_gets_a_4xx_and_the_connection_closes() {
    let (response, backend, gateway, mut client) = huge_head(gateway_ip(20), 1 << 20).await;
    assert!(
        [400, 431].contains(&response.head.status()),
        "{:?}",
        response.head
    );
    client.assert_closed().await;
    assert!(backend.log.all().is_empty());
    // The gateway lingers until the client closes (nginx's `lingering_close`).
    drop(client);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_mebibyte_request_body_and_a_mebibyte_response_body_pass_intact() {
    fn respond(request: &Message) -> Vec<u8> {
        ok(&pattern(request.body.len(), 2))
    }
    let backend = RawBackend::answering(respond).await;
    let (gateway, addr) = gateway_to(gateway_ip(21), &backend).await;
    let mut client = Conn::connect(addr).await;
    let body = pattern(1 << 20, 1);
    let mut request = format!(
        "PUT /big HTTP/1.1\r\nHost: web.test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let (written, response) = tokio::join!(
        write_all(&mut client.writer, &request),
        client.reader.final_response("PUT")
    );
    written.unwrap();
    let response = response.unwrap();
    assert_eq!(response.head.status(), 200, "{:?}", response.head);
    assert!(
        response.body == pattern(1 << 20, 2),
        "the response body differs ({} bytes)",
        response.body.len()
    );
    let seen = backend.log.only();
    assert!(
        seen.body == body,
        "the request body differs ({} bytes)",
        seen.body.len()
    );
    gateway.shutdown().await;
}

// ----- backend connections closing -----

#[tokio::test]
async fn a_request_after_the_backend_closed_an_idle_keep_alive_connection_succeeds() {
    // Answers one request as if keeping the connection, then closes it.
    let backend = RawBackend::start(|mut conn, log| async move {
        if let Ok(Some(request)) = conn.reader.request().await {
            let response = echo_target(&request);
            log.push(request);
            let _ = conn.try_write(&response).await;
        }
    })
    .await;
    let (gateway, addr) = gateway_to(gateway_ip(22), &backend).await;
    let mut client = Conn::connect(addr).await;
    assert_eq!(client.exchange(&get("/first")).await.text(), "/first");
    eventually("the backend closed its connection", || {
        backend.closed.load(Ordering::SeqCst) == 1
    })
    .await;
    let response = client.exchange(&get("/second")).await;
    assert_eq!(response.head.status(), 200, "{response:?}");
    assert_eq!(response.text(), "/second");
    assert_eq!(backend.accepted(), 2);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_response_body_cut_short_by_the_backend_is_not_presented_whole() {
    let backend = RawBackend::start(|mut conn, log| async move {
        if let Ok(Some(request)) = conn.reader.request().await {
            log.push(request);
            let _ = conn
                .try_write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
                .await;
        }
    })
    .await;
    let (gateway, addr) = gateway_to(gateway_ip(23), &backend).await;
    let mut client = Conn::connect(addr).await;
    client.write(&get("/")).await;
    match client.reader.final_response("GET").await {
        // The head went out, then the connection was closed or reset short of the body.
        Err(_) => {}
        // Or the gateway kept the head and answered an error itself.
        Ok(response) => assert!(
            response.head.status() >= 500,
            "a cut body presented as a whole response: {response:?}"
        ),
    }
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_backend_response_with_connection_close_leaves_the_client_connection_usable() {
    fn respond(request: &Message) -> Vec<u8> {
        let target = request.head.target();
        format!(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{target}",
            target.len()
        )
        .into_bytes()
    }
    let backend = RawBackend::answering(respond).await;
    let (gateway, addr) = gateway_to(gateway_ip(24), &backend).await;
    let mut client = Conn::connect(addr).await;
    let first = client.exchange(&get("/one")).await;
    assert_eq!(first.head.status(), 200, "{first:?}");
    assert_eq!(first.text(), "/one");
    let second = client.exchange(&get("/two")).await;
    assert_eq!(second.head.status(), 200, "{second:?}");
    assert_eq!(second.text(), "/two");
    assert_eq!(backend.accepted(), 2);
    gateway.shutdown().await;
}

// ----- answers before the end of a request body -----

#[tokio::test]
async fn a_backend_that_answers_an_upload_without_reading_it_gets_its_answer_to_the_client() {
    // The backend reads the head only, answers 413 and keeps the connection open without
    // reading: the gateway must not wait forever to write a body nobody reads.
    let backend = RawBackend::start(|mut conn, log| async move {
        if let Ok(Some(head)) = conn.reader.head().await {
            log.push(Message {
                head,
                body: Vec::new(),
                framing: Framing::Empty,
                trailers: Vec::new(),
            });
            let _ = conn
                .try_write(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 4\r\n\r\nbig\n")
                .await;
            std::future::pending::<()>().await;
        }
    })
    .await;
    let (gateway, addr) = gateway_to(gateway_ip(28), &backend).await;
    let Conn { mut reader, writer } = Conn::connect(addr).await;
    // 64 MiB announced, written until the gateway stops taking it (far more than the
    // sockets' buffers hold).
    let upload = tokio::spawn(async move {
        let mut writer = writer;
        write_all(
            &mut writer,
            b"POST /up HTTP/1.1\r\nHost: up\r\nContent-Length: 67108864\r\n\r\n",
        )
        .await?;
        let chunk = pattern(64 * 1024, 7);
        for _ in 0..1024 {
            write_all(&mut writer, &chunk).await?;
        }
        io::Result::Ok(())
    });
    let response = reader.final_response("POST").await.unwrap();
    assert_eq!(response.head.status(), 413);
    assert_eq!(response.body, b"big\n");
    assert!(
        response
            .head
            .tokens("connection")
            .contains(&"close".to_owned())
    );
    assert_eq!(backend.log.all().len(), 1);
    // The rest of the body is never read: the client connection closes.
    match reader.fill().await {
        Ok(0) | Err(_) => {}
        Ok(_) => panic!(
            "bytes after the answer: {:?}",
            String::from_utf8_lossy(&reader.buf)
        ),
    }
    upload.abort();
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_interim_response_sent_unasked_while_the_body_is_sent_does_not_stop_it() {
    let head_seen = Arc::new(tokio::sync::Notify::new());
    let seen = head_seen.clone();
    let backend = RawBackend::start(move |mut conn, log| {
        let seen = seen.clone();
        async move {
            let Ok(Some(head)) = conn.reader.head().await else {
                return;
            };
            let _ = conn.try_write(b"HTTP/1.1 100 Continue\r\n\r\n").await;
            seen.notify_one();
            let Ok(body) = conn.reader.exact(10).await else {
                return;
            };
            let _ = conn.try_write(&ok(&body)).await;
            log.push(Message {
                head,
                body,
                framing: Framing::Empty,
                trailers: Vec::new(),
            });
        }
    })
    .await;
    let (gateway, addr) = gateway_to(gateway_ip(29), &backend).await;
    let mut client = Conn::connect(addr).await;
    client
        .write(b"POST /up HTTP/1.1\r\nHost: up\r\nContent-Length: 10\r\n\r\n")
        .await;
    // The body only once the backend has the head and has sent its 100: the gateway is
    // then waiting for the body, watching the backend.
    tokio::time::timeout(STEP, head_seen.notified())
        .await
        .expect("the backend got the head");
    client.write(b"0123456789").await;
    let response = client.reader.final_response("POST").await.unwrap();
    assert_eq!(response.head.status(), 200);
    assert_eq!(response.body, b"0123456789");
    assert_eq!(backend.log.only().body, b"0123456789");
    gateway.shutdown().await;
}

// ----- upgrades -----

/// A backend that answers an upgrade request with `101` and then echoes every byte; any
/// other request, and an upgrade to `/decline`, gets 200 `no upgrade`.
async fn upgrading_backend() -> RawBackend {
    RawBackend::start(|mut conn, log| async move {
        while let Ok(Some(request)) = conn.reader.request().await {
            let upgrade = request
                .head
                .get("upgrade")
                .filter(|_| request.head.target() != "/decline")
                .map(str::to_owned);
            log.push(request);
            let Some(protocol) = upgrade else {
                if conn.try_write(&ok(b"no upgrade")).await.is_err() {
                    return;
                }
                continue;
            };
            let head = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: {protocol}\r\nConnection: Upgrade\r\n\r\n"
            );
            if conn.try_write(head.as_bytes()).await.is_err() {
                return;
            }
            // Echo what was read after the head, then everything, until the client's end.
            let early = std::mem::take(&mut conn.reader.buf);
            if conn.try_write(&early).await.is_err() {
                return;
            }
            while let Ok(n) = conn.reader.fill().await {
                if n == 0 {
                    break;
                }
                let bytes = std::mem::take(&mut conn.reader.buf);
                if conn.try_write(&bytes).await.is_err() {
                    return;
                }
            }
            return;
        }
    })
    .await
}

#[tokio::test]
async fn an_upgrade_switches_the_connection_to_a_tunnel_both_ways() {
    let backend = upgrading_backend().await;
    let (gateway, addr) = gateway_to(gateway_ip(30), &backend).await;
    let mut client = Conn::connect(addr).await;
    // Bytes of the new protocol right behind the request, before the 101.
    client
        .write(b"GET /ws HTTP/1.1\r\nHost: ws\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nearly")
        .await;
    let head = client.reader.head().await.unwrap().unwrap();
    assert_eq!(head.status(), 101, "{head:?}");
    assert_eq!(head.get("upgrade"), Some("websocket"));
    assert!(head.tokens("connection").contains(&"upgrade".to_owned()));
    let seen = backend.log.only();
    assert_eq!(seen.head.get("upgrade"), Some("websocket"));
    assert!(
        seen.head
            .tokens("connection")
            .contains(&"upgrade".to_owned())
    );
    assert_eq!(client.reader.exact(5).await.unwrap(), b"early");
    client.write(b"frame two").await;
    assert_eq!(client.reader.exact(9).await.unwrap(), b"frame two");
    // The client's end reaches the backend, whose end reaches the client.
    client.writer.shutdown().await.unwrap();
    client.assert_closed().await;
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_upgrade_the_backend_declines_is_a_plain_response_and_the_connection_goes_on() {
    // Without `Connection: upgrade` the `Upgrade` field is hop-by-hop: dropped, no switch.
    let backend = upgrading_backend().await;
    let (gateway, addr) = gateway_to(gateway_ip(31), &backend).await;
    let mut client = Conn::connect(addr).await;
    let response = client
        .exchange(b"GET /no HTTP/1.1\r\nHost: ws\r\nUpgrade: websocket\r\n\r\n")
        .await;
    assert_eq!(response.head.status(), 200);
    assert_eq!(response.body, b"no upgrade");
    assert!(backend.log.only().head.get("upgrade").is_none());
    // An upgrade asked for and declined: a plain response, and the connection goes on.
    let response = client
        .exchange(b"GET /decline HTTP/1.1\r\nHost: ws\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n")
        .await;
    assert_eq!(response.head.status(), 200);
    assert_eq!(response.body, b"no upgrade");
    assert_eq!(backend.log.all()[1].head.get("upgrade"), Some("websocket"));
    assert_eq!(client.exchange(&get("/again")).await.text(), "no upgrade");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_backend_that_streams_its_answer_as_it_reads_the_body_gets_all_of_the_body() {
    // Full duplex: the answer starts before the body has ended, and each part of the
    // answer waits for a part of the body.
    let backend = RawBackend::start(|mut conn, log| async move {
        let Ok(Some(head)) = conn.reader.head().await else {
            return;
        };
        if conn
            .try_write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
        let mut body = Vec::new();
        for _ in 0..2 {
            let Ok(part) = conn.reader.exact(5).await else {
                return;
            };
            let chunk = format!("5\r\n{}\r\n", String::from_utf8_lossy(&part));
            body.extend_from_slice(&part);
            if conn.try_write(chunk.as_bytes()).await.is_err() {
                return;
            }
        }
        let _ = conn.try_write(b"0\r\n\r\n").await;
        log.push(Message {
            head,
            body,
            framing: Framing::Length,
            trailers: Vec::new(),
        });
    })
    .await;
    let (gateway, addr) = gateway_to(gateway_ip(32), &backend).await;
    let mut client = Conn::connect(addr).await;
    client
        .write(b"POST /echo HTTP/1.1\r\nHost: echo\r\nContent-Length: 10\r\n\r\n01234")
        .await;
    let head = client.reader.head().await.unwrap().unwrap();
    assert_eq!(head.status(), 200, "{head:?}");
    assert_eq!(client.reader.line().await.unwrap(), "5");
    assert_eq!(client.reader.exact(7).await.unwrap(), b"01234\r\n");
    // Only now the rest of the body: the gateway must still be forwarding it.
    client.write(b"56789").await;
    assert_eq!(client.reader.line().await.unwrap(), "5");
    assert_eq!(client.reader.exact(7).await.unwrap(), b"56789\r\n");
    assert_eq!(client.reader.line().await.unwrap(), "0");
    assert_eq!(client.reader.line().await.unwrap(), "");
    assert_eq!(backend.log.only().body, b"0123456789");
    drop(client);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_request_head_sent_a_byte_at_a_time_is_answered() {
    let backend = RawBackend::answering(echo_target).await;
    let (gateway, addr) = gateway_to(gateway_ip(33), &backend).await;
    let mut client = Conn::connect(addr).await;
    for byte in b"GET /slow HTTP/1.1\r\nHost: web.test\r\n\r\n" {
        client.write(&[*byte]).await;
    }
    let response = client.reader.final_response("GET").await.unwrap();
    assert_eq!(response.text(), "/slow");
    assert_eq!(client.exchange(&get("/next")).await.text(), "/next");
    gateway.shutdown().await;
}
