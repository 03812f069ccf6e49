//! The gateway data plane: the node's in-process proxy for Services.
//!
//! A [`Gateway`] holds listeners, one per service port ([`ListenerSpec`]: every address to
//! listen on and a [`Protocol`]), and for each the set of [`Endpoint`]s to send traffic to.
//! HTTP ports are proxied per request (L7: HTTP/1.1 and h2c from clients, pooled keep-alive
//! connections to backends, least outstanding requests with round robin between ties, retry of
//! idempotent requests whose connect failed); other ports per connection (L4 TCP). New traffic
//! goes only to `ready` endpoints, or, when a listener has none, to `serving && terminating`
//! ones (KEP-1669); backends that stopped being ready get no new pooled requests, their idle
//! connections are closed at once and fallback requests carry `Connection: close`. Endpoints
//! whose connections fail sit out a short back-off. [`Gateway::routes_new_traffic_to`] and
//! [`Gateway::applied`] are the termination barrier's view (DESIGN.md, step 2).
//!
//! Must not: know the store, the API, Kubernetes objects or pods (the service proxy
//! controller turns Services and EndpointSlices into calls on this interface); hold a lock
//! across an await, or on the request path for more than a few instructions (the endpoint set
//! is an `Arc` swapped under a `RwLock` read for a pointer copy; an endpoint's idle pool, the
//! affinity map and the latency histogram have short mutexes); spawn a task that the
//! gateway's `TaskTracker` does not own (hyper's executor included).
//!
//! Routing happens when a request or connection picks its endpoint: every pick that starts
//! after [`Gateway::set_endpoints`] returned sees the new set, and each retry picks again
//! from the set current then. Picks from a replaced set still under way, and requests picked
//! while their endpoint was ready that have no response head yet, are counted, so the
//! termination barrier knows when no request can still reach a pod that left the set.

#![forbid(unsafe_code)]

mod h1;
mod http;
mod metrics;
mod route;
mod tcp;
mod workers;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use metrics::Metrics;
use route::{Backend, Route, RouteKey};

/// The in-process proxy for Services. Cheap to clone: every clone is the same gateway.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

/// Tunables of a [`Gateway`]; `Default` gives the values podvisor runs with.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// How long a connection attempt to an endpoint may take before it counts as failed.
    pub connect_timeout: Duration,
    /// Endpoints tried for one request (idempotent methods only) or one TCP connection whose
    /// connect failed, the first included. At least 1, at most 8.
    pub max_connect_tries: usize,
    /// First back-off of an endpoint whose connections fail; it doubles with every further
    /// failure up to `backoff_max` and resets on the first success.
    pub backoff_initial: Duration,
    /// Longest back-off.
    pub backoff_max: Duration,
    /// Idle keep-alive connections kept per endpoint and worker (HTTP/1.1 backends).
    pub max_idle_per_endpoint: usize,
    /// An idle pooled connection older than this is closed instead of reused. Shorter than
    /// the usual servers' keep-alive timeout (5 s for Node.js and Apache), so that the gateway
    /// gives up a connection before the backend closes it under a request being sent.
    pub pool_idle_timeout: Duration,
    /// How long [`Gateway::shutdown`] lets open connections finish before cutting them.
    pub drain_timeout: Duration,
    /// Threads that accept and proxy, each with its own runtime and backend pools; 0 means
    /// one per core (`Gateway::new` resolves it, so the gateway's copy is the count).
    pub workers: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            connect_timeout: Duration::from_secs(2),
            max_connect_tries: 3,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(10),
            max_idle_per_endpoint: 64,
            pool_idle_timeout: Duration::from_secs(4),
            drain_timeout: Duration::from_secs(5),
            workers: 0,
        }
    }
}

/// How a listener proxies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// L7; clients speak HTTP/1.1 or h2c (prior knowledge), backends HTTP/1.1.
    Http,
    /// L7; clients speak HTTP/1.1 or h2c, backends h2c (appProtocol `h2c`,
    /// `kubernetes.io/h2c`, `grpc*` port names).
    H2c,
    /// L4: every client connection is joined to one connection to an endpoint.
    Tcp,
}

/// One service port the gateway listens for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerSpec {
    /// `namespace/name` of the Service.
    pub service: String,
    /// The service port's name (may be empty for a single unnamed port).
    pub port_name: String,
    /// Every address to listen on: `VIP:port`, `node:nodePort`, `node:port`.
    pub addrs: Vec<SocketAddr>,
    /// How to proxy.
    pub protocol: Protocol,
    /// `sessionAffinity: ClientIP` with its timeout: a client IP keeps its endpoint while the
    /// endpoint stays eligible and the client came back within the timeout.
    pub client_ip_affinity: Option<Duration>,
}

/// One backend of a listener, with the EndpointSlice conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Where the backend listens.
    pub addr: SocketAddr,
    /// Gets new traffic.
    pub ready: bool,
    /// Can answer (readiness passes), whether or not it is terminating.
    pub serving: bool,
    /// Is shutting down; with `serving` it gets traffic only when nothing is ready.
    pub terminating: bool,
    /// `namespace/pod` behind the address, for logs and metrics.
    pub target: Option<String>,
}

/// What the control-plane methods can fail with.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// An address of a listener could not be bound; nothing was changed.
    #[error("service {service} port {port_name}: cannot listen on {addr}: {}", bind_reason(.error))]
    Bind {
        service: String,
        port_name: String,
        addr: SocketAddr,
        error: std::io::Error,
    },
    /// [`Gateway::shutdown`] was called.
    #[error("the gateway is shut down")]
    ShutDown,
    /// The worker threads could not be started.
    #[error("cannot start the gateway's worker threads: {0}")]
    Workers(std::io::Error),
}

/// The lowercase reason of a bind failure ("address already in use").
fn bind_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => "address already in use".to_owned(),
        std::io::ErrorKind::AddrNotAvailable => "address not available".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => error.to_string(),
    }
}

/// State shared by the control-plane methods and every task of the gateway.
struct Inner {
    /// What requests and connections need: configuration, tasks, clocks.
    shared: Arc<Shared>,
    /// Listeners by service port. Control-plane state: locked by the methods of [`Gateway`]
    /// and the metrics collector only, never on the request path, never across an await.
    listeners: Mutex<HashMap<RouteKey, Listener>>,
    /// Addresses whose accept loop was stopped and may not have closed its socket yet:
    /// `set_listener` waits for them rather than failing with "address already in use".
    releasing: Mutex<HashMap<SocketAddr, watch::Receiver<bool>>>,
    /// Set by `shutdown`; the control-plane methods then do nothing.
    shut_down: std::sync::atomic::AtomicBool,
    /// Per service port request metrics (the endpoint gauges are a collector over `listeners`).
    metrics: Metrics,
    /// The runtimes of the worker threads, where accept loops run.
    handles: Vec<tokio::runtime::Handle>,
    /// The worker threads; taken by `shutdown` (dropping them stops them too).
    workers: Mutex<Option<workers::Workers>>,
}

/// What the data plane shares: read-only after `Gateway::new` except for the tokens.
pub(crate) struct Shared {
    pub(crate) config: GatewayConfig,
    /// Owns every task of the gateway: accept loops, client connections, backend connections,
    /// hyper's HTTP/2 stream tasks.
    pub(crate) tasks: TaskTracker,
    /// Cancelled by `shutdown`: accept loops stop, client connections close gracefully.
    pub(crate) closing: CancellationToken,
    /// Zero of the back-off clock (`now_nanos`).
    epoch: Instant,
    /// Counts changes the termination barrier waits for: applied `set_endpoints`,
    /// `remove_listener` and `set_listener` calls, and the last pick from a replaced endpoint
    /// set or the last response head of a request sent to a draining endpoint.
    applied: watch::Sender<u64>,
}

impl Shared {
    /// Tells [`Gateway::applied`] watchers to look again.
    pub(crate) fn bump(&self) {
        tracing::debug!(target: "podvisor::latency", step = "gw-bump");
        self.applied.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Nanoseconds since the gateway started, the unit of back-off deadlines.
    pub(crate) fn now_nanos(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Spawns `future` as a task of the gateway on the calling task's runtime: a worker's,
    /// so it stays on this thread and is dropped with the worker's runtime when `shutdown`
    /// cuts what did not finish (no per-task stop signal: polling a token shared by every
    /// worker would lock its mutex from all of them on every wake-up).
    pub(crate) fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(future);
    }

    /// [`Shared::spawn`] on the runtime of `handle`.
    pub(crate) fn spawn_on<F>(&self, future: F, handle: &tokio::runtime::Handle)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn_on(future, handle);
    }
}

/// hyper's executor: HTTP/2 connections and streams become tasks of the gateway.
#[derive(Clone)]
pub(crate) struct Exec(pub(crate) Arc<Shared>);

impl<F> hyper::rt::Executor<F> for Exec
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.spawn(async move {
            future.await;
        });
    }
}

/// The control-plane state of one service port.
struct Listener {
    /// What the data plane of this service port reads.
    route: Arc<Route>,
    /// Accept loops by address.
    sockets: HashMap<SocketAddr, Socket>,
    /// Every backend of this port still in use by anything, so an endpoint that comes back
    /// keeps its pool, counters and back-off.
    backends: HashMap<SocketAddr, Weak<Backend>>,
}

/// The accept loops of one address of a listener, one per worker.
struct Socket {
    /// Cancelling it stops the loops, which then close their sockets.
    token: CancellationToken,
    /// Turns true (or closes) once every socket of the address is closed.
    closed: watch::Receiver<bool>,
}

/// Says "closed" when the last accept loop of an address lets go of it.
struct ClosedOnDrop(watch::Sender<bool>);

impl Drop for ClosedOnDrop {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

impl Socket {
    /// Stops the accept loop; the address goes to `releasing` until its socket is closed.
    fn release(self, addr: SocketAddr, releasing: &mut HashMap<SocketAddr, watch::Receiver<bool>>) {
        self.token.cancel();
        releasing.insert(addr, self.closed);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Gateway {
    /// A gateway without listeners, with its worker threads started (`config.workers`, one
    /// per core by default). [`Gateway::shutdown`] stops them; so does dropping the last
    /// clone.
    pub fn new(config: GatewayConfig) -> Result<Gateway, GatewayError> {
        let mut config = config;
        config.max_connect_tries = config.max_connect_tries.clamp(1, route::MAX_TRIES);
        if config.workers == 0 {
            config.workers = workers::default_count();
        }
        let workers = workers::Workers::start(config.workers).map_err(GatewayError::Workers)?;
        let closing = CancellationToken::new();
        Ok(Gateway {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared {
                    config,
                    tasks: TaskTracker::new(),
                    closing,
                    epoch: Instant::now(),
                    applied: watch::Sender::new(0),
                }),
                listeners: Mutex::new(HashMap::new()),
                releasing: Mutex::new(HashMap::new()),
                shut_down: std::sync::atomic::AtomicBool::new(false),
                metrics: Metrics::default(),
                handles: workers.handles().cloned().collect(),
                workers: Mutex::new(Some(workers)),
            }),
        })
    }

    /// Creates the listener of `spec.service` port `spec.port_name`, or reconfigures it:
    /// binds the addresses it does not listen on yet, closes those no longer listed, and takes
    /// the new protocol and affinity; its endpoints are kept. If any address cannot be bound,
    /// nothing changes and the error names the service, port and address.
    pub async fn set_listener(&self, spec: ListenerSpec) -> Result<(), GatewayError> {
        let inner = &self.inner;
        if inner.shut_down.load(std::sync::atomic::Ordering::Acquire) {
            return Err(GatewayError::ShutDown);
        }
        // An address one of our listeners just let go of (a Service deleted and created again
        // with the same VIP, an address moved between ports) is free once its accept loop has
        // closed the socket, a moment later: wait for that, bounded.
        let waits: Vec<watch::Receiver<bool>> = {
            let mut releasing = lock(&inner.releasing);
            releasing.retain(|_, closed| !*closed.borrow() && closed.has_changed().is_ok());
            spec.addrs
                .iter()
                .filter_map(|addr| releasing.get(addr).cloned())
                .collect()
        };
        for mut closed in waits {
            // Why ignored: a timeout or a loop that ended without saying so leaves the check
            // below to report the address if it is still taken.
            let _ = tokio::time::timeout(Duration::from_secs(1), closed.wait_for(|c| *c)).await;
        }
        let still_releasing: Vec<SocketAddr> = {
            let releasing = lock(&inner.releasing);
            spec.addrs
                .iter()
                .filter(|addr| releasing.get(addr).is_some_and(|c| !*c.borrow()))
                .copied()
                .collect()
        };
        let key = RouteKey {
            service: spec.service.clone(),
            port_name: spec.port_name.clone(),
        };
        // Everything below is synchronous (binding a socket does not block), so the lock is
        // held across no await and two calls for one port cannot interleave.
        let mut listeners = lock(&inner.listeners);
        let current = listeners.get(&key);
        let mut bound = Vec::new();
        for addr in &spec.addrs {
            if current.is_some_and(|l| l.sockets.contains_key(addr))
                || bound.iter().any(|(a, _)| a == addr)
            {
                continue;
            }
            // `SO_REUSEPORT` would let a second socket of ours share the address: another
            // listener's address, or one still closing, is refused as the kernel would.
            let ours = still_releasing.contains(addr)
                || listeners
                    .iter()
                    .any(|(k, l)| *k != key && l.sockets.contains_key(addr));
            let sockets = if ours {
                Err(std::io::ErrorKind::AddrInUse.into())
            } else {
                bind(*addr, &inner.handles)
            };
            match sockets {
                Ok(listener) => bound.push((*addr, listener)),
                Err(error) => {
                    return Err(GatewayError::Bind {
                        service: spec.service,
                        port_name: spec.port_name,
                        addr: *addr,
                        error,
                    });
                }
            }
        }
        let listener = listeners.entry(key).or_insert_with_key(|key| {
            let route = Arc::new(Route::new(
                key.clone(),
                inner.shared.clone(),
                inner.metrics.route(&key.service, &key.port_name),
                spec.protocol,
                spec.client_ip_affinity,
            ));
            Listener {
                route,
                sockets: HashMap::new(),
                backends: HashMap::new(),
            }
        });
        listener
            .route
            .set_settings(spec.protocol, spec.client_ip_affinity);
        let gone: Vec<SocketAddr> = listener
            .sockets
            .keys()
            .filter(|addr| !spec.addrs.contains(addr))
            .copied()
            .collect();
        for addr in gone {
            if let Some(socket) = listener.sockets.remove(&addr) {
                info!(service = %spec.service, port = %spec.port_name, %addr, "stopped listening");
                socket.release(addr, &mut lock(&inner.releasing));
            }
        }
        for (addr, sockets) in bound {
            let token = listener.route.closed.child_token();
            let (closed_tx, closed) = watch::channel(false);
            let closed_tx = Arc::new(ClosedOnDrop(closed_tx));
            listener.sockets.insert(
                addr,
                Socket {
                    token: token.clone(),
                    closed,
                },
            );
            info!(service = %spec.service, port = %spec.port_name, %addr, protocol = ?spec.protocol, "listening");
            for (socket, handle) in sockets.into_iter().zip(&inner.handles) {
                let route = listener.route.clone();
                let loop_ = accept_loop(route, socket, addr, token.clone(), closed_tx.clone());
                inner.shared.spawn_on(loop_, handle);
            }
        }
        drop(listeners);
        inner.shared.bump();
        Ok(())
    }

    /// Closes the listener of a service port: its sockets close at once, its client
    /// connections finish their requests in flight and close, and its endpoints are gone.
    pub fn remove_listener(&self, service: &str, port_name: &str) {
        let key = RouteKey {
            service: service.to_owned(),
            port_name: port_name.to_owned(),
        };
        let removed = lock(&self.inner.listeners).remove(&key);
        if let Some(listener) = removed {
            info!(service, port = port_name, "removed listener");
            let mut releasing = lock(&self.inner.releasing);
            for (addr, socket) in listener.sockets {
                socket.release(addr, &mut releasing);
            }
            drop(releasing);
            listener.route.close();
            self.inner.metrics.remove_route(service, port_name);
        }
        self.inner.shared.bump();
    }

    /// Replaces the endpoints of a service port. When this returns, every request or
    /// connection that picks an endpoint from then on sees the new set: no new one goes to an
    /// endpoint that is not in it or no longer eligible. Endpoints that stopped being ready
    /// have their idle connections closed. A port without a listener ignores the call.
    pub fn set_endpoints(&self, service: &str, port_name: &str, endpoints: Vec<Endpoint>) {
        let key = RouteKey {
            service: service.to_owned(),
            port_name: port_name.to_owned(),
        };
        {
            let mut listeners = lock(&self.inner.listeners);
            match listeners.get_mut(&key) {
                Some(listener) => {
                    let route = listener.route.clone();
                    route.set_endpoints(endpoints, &mut listener.backends);
                }
                None => debug!(
                    service,
                    port = port_name,
                    "endpoints for a port without a listener ignored"
                ),
            }
        }
        self.inner.shared.bump();
    }

    /// Whether any listener has an endpoint at `ip`, in any state.
    pub fn routes_to(&self, ip: IpAddr) -> bool {
        lock(&self.inner.listeners)
            .values()
            .any(|l| l.route.has(ip))
    }

    /// Whether any listener may still send a new request or connection to `ip`: an endpoint
    /// at `ip` is marked ready; or a pick from an endpoint set that was current before the
    /// last change is still under way; or a request that picked `ip` while it was ready has
    /// not had its response head yet (the backend may not have read it: stopping the app now
    /// could close the connection under it). The termination barrier waits until this is
    /// false (with [`Gateway::applied`] to know when to look again). Requests sent to `ip`
    /// as a terminating fallback (no ready endpoint) do not count: they go on regardless.
    pub fn routes_new_traffic_to(&self, ip: IpAddr) -> bool {
        lock(&self.inner.listeners).values().any(|l| {
            l.route.has_ready(ip)
                || l.route.picks_pending()
                || l.backends.iter().any(|(addr, backend)| {
                    addr.ip() == ip && backend.upgrade().is_some_and(|b| b.dispatching())
                })
        })
    }

    /// A counter bumped after every `set_endpoints`, `remove_listener` and `set_listener`
    /// took effect, after the last pick from a replaced endpoint set, and after the last
    /// response head of a request sent to an endpoint that stopped being ready, so a waiter
    /// can check [`Gateway::routes_new_traffic_to`] again without polling.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.inner.shared.applied.subscribe()
    }

    /// Registers the gateway's metrics: per service port requests, failures and latency,
    /// and per endpoint open connections and requests in flight.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.inner
            .metrics
            .register(registry, Arc::downgrade(&self.inner));
    }

    /// Closes every listener, lets open connections finish their requests for up to
    /// `drain_timeout`, then cuts what is left. When it returns no task of the gateway runs
    /// and its worker threads have stopped.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner
            .shut_down
            .store(true, std::sync::atomic::Ordering::Release);
        let listeners: Vec<Listener> = lock(&inner.listeners).drain().map(|(_, l)| l).collect();
        for listener in &listeners {
            listener.route.close();
        }
        drop(listeners);
        inner.shared.closing.cancel();
        inner.shared.tasks.close();
        let drained =
            tokio::time::timeout(inner.shared.config.drain_timeout, inner.shared.tasks.wait())
                .await
                .is_ok();
        if !drained {
            warn!(
                remaining = inner.shared.tasks.len(),
                "gateway connections still open after the drain timeout: cut"
            );
        }
        // Stopping the workers' runtimes drops whatever task is left on them.
        let workers = lock(&inner.workers).take();
        if let Some(mut workers) = workers {
            workers.stop().await;
        }
        if !drained {
            inner.shared.tasks.wait().await;
        }
        inner.shared.bump();
        info!("gateway stopped");
    }
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl Inner {
    /// Calls `f` with every route, under the control-plane lock (metrics scrapes).
    fn for_each_route(&self, mut f: impl FnMut(&Route)) {
        for listener in lock(&self.listeners).values() {
            f(&listener.route);
        }
    }
}

/// A listening socket on `addr` per worker (`SO_REUSEADDR`, `SO_REUSEPORT` so that the
/// kernel spreads connections over them, a backlog of 1024 each), bound synchronously and
/// registered with its worker's runtime. All or none.
fn bind(addr: SocketAddr, handles: &[tokio::runtime::Handle]) -> std::io::Result<Vec<TcpListener>> {
    let mut sockets = Vec::with_capacity(handles.len());
    for handle in handles {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        let _runtime = handle.enter();
        sockets.push(socket.listen(1024)?);
    }
    Ok(sockets)
}

/// Accepts connections on one address of a route until `token` (a child of the route's and
/// the gateway's) is cancelled; each connection becomes a task of the gateway.
async fn accept_loop(
    route: Arc<Route>,
    socket: TcpListener,
    addr: SocketAddr,
    token: CancellationToken,
    closed: Arc<ClosedOnDrop>,
) {
    // The route's `closed` for this loop's connections: a token of this worker's own, so
    // that their wake-ups lock no token another worker polls.
    let connections_closed = route.closed.child_token();
    loop {
        let accepted = tokio::select! {
            biased;
            () = token.cancelled() => break,
            accepted = socket.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let route = route.clone();
                let shared = route.shared.clone();
                let closed = connections_closed.clone();
                shared.spawn(async move {
                    match route.protocol() {
                        Protocol::Tcp => tcp::serve(route, stream, peer).await,
                        Protocol::Http | Protocol::H2c => {
                            http::serve(route, stream, peer, closed).await;
                        }
                    }
                });
            }
            Err(error) => {
                // Out of file descriptors or a connection reset before accept: not fatal; a
                // short pause keeps an exhausted process from spinning.
                warn!(service = %route.key.service, port = %route.key.port_name, %addr, %error, "accept failed");
                tokio::select! {
                    () = token.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    }
    drop(socket);
    drop(closed);
    debug!(service = %route.key.service, port = %route.key.port_name, %addr, "accept loop stopped");
}

/// Opens a TCP connection to an endpoint within `timeout`, with `TCP_NODELAY`.
pub(crate) async fn connect(
    addr: SocketAddr,
    timeout: Duration,
) -> std::io::Result<tokio::net::TcpStream> {
    let stream = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(stream) => stream?,
        Err(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("connect timed out after {timeout:?}"),
            ));
        }
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Counts one open connection to a backend until dropped. Holds the backend weakly: a
/// connection task must not keep alive the backend whose pool keeps the connection.
pub(crate) struct ConnCount(Weak<Backend>);

impl ConnCount {
    pub(crate) fn new(backend: &Arc<Backend>) -> ConnCount {
        backend
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ConnCount(Arc::downgrade(backend))
    }
}

impl Drop for ConnCount {
    fn drop(&mut self) {
        if let Some(backend) = self.0.upgrade() {
            backend
                .connections
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
