//! One service port's data-plane state: the endpoint set (an `Arc<Table>` swapped whole),
//! the backends with their counters, back-off and connection pools, and the pick.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use hyper::client::conn::{http1, http2};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::h1::BackendConn;
use super::http::ReqBody;
use super::metrics::RouteMetrics;
use super::{Endpoint, Protocol, Shared, lock};

/// Most endpoints one request or connection tries (`GatewayConfig::max_connect_tries`).
pub(crate) const MAX_TRIES: usize = 8;

/// A service port: `namespace/name` and the port's name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RouteKey {
    pub(crate) service: String,
    pub(crate) port_name: String,
}

/// What the data plane of one service port reads.
pub(crate) struct Route {
    pub(crate) key: RouteKey,
    /// `no ready endpoints for service ns/name port p`, the 503 body, built once.
    pub(crate) no_endpoints_body: bytes::Bytes,
    pub(crate) shared: Arc<Shared>,
    /// The current endpoint set and settings. The lock is held only to copy the pointer.
    table: RwLock<Arc<Table>>,
    /// Round-robin cursor: where the next pick starts looking, so ties rotate.
    rr: AtomicUsize,
    /// `sessionAffinity: ClientIP`: the endpoint of each client IP and until when (in
    /// `Shared::now_nanos`). Locked only when the listener has affinity, never across an await.
    sticky: Mutex<HashMap<IpAddr, (SocketAddr, u64)>>,
    /// Replaced endpoint sets that still had a pick under way when they were replaced (see
    /// [`Route::picks_pending`]). Control plane and the barrier only.
    retired: Mutex<Vec<Weak<Table>>>,
    /// Cancelled when the listener is removed or the gateway shuts down: accept loops stop
    /// and client connections close gracefully.
    pub(crate) closed: CancellationToken,
    pub(crate) metrics: RouteMetrics,
}

/// One version of a service port's endpoint set. Immutable; replaced whole.
pub(crate) struct Table {
    pub(crate) protocol: Protocol,
    affinity: Option<Duration>,
    /// Every endpoint given, with its backend.
    pub(crate) members: Vec<(Endpoint, Arc<Backend>)>,
    /// The backends that get new traffic: the ready ones, or, if none is, the serving and
    /// terminating ones.
    pub(crate) eligible: Vec<Arc<Backend>>,
    /// `eligible` holds terminating endpoints (no ready one): requests to them go on fresh
    /// connections that close after the response.
    pub(crate) fallback: bool,
    /// Picks from this set under way: counted up while the route's table lock is held for
    /// reading, so once the set is replaced (write lock) it can only count down.
    picking: AtomicUsize,
    /// This set was replaced: the last pick to end tells the barrier.
    retired: AtomicBool,
}

impl Table {
    fn new(
        protocol: Protocol,
        affinity: Option<Duration>,
        members: Vec<(Endpoint, Arc<Backend>)>,
        eligible: Vec<Arc<Backend>>,
        fallback: bool,
    ) -> Table {
        Table {
            protocol,
            affinity,
            members,
            eligible,
            fallback,
            picking: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
        }
    }
}

/// One endpoint address of a service port, with what outlives endpoint-set changes.
pub(crate) struct Backend {
    pub(crate) addr: SocketAddr,
    /// `ns/pod`, else the address, for logs and metrics.
    pub(crate) name: String,
    /// The endpoint's `target` as given (a different target at the same address is a new
    /// backend: pod IPs are reused).
    target: Option<String>,
    /// Requests (L7) or connections (L4) in flight, the load the pick balances.
    pub(crate) outstanding: AtomicUsize,
    /// Open connections to this backend (pooled or busy for L7, proxied for L4).
    pub(crate) connections: AtomicUsize,
    /// Not ready in the current set, or no longer in it: connections are not pooled.
    draining: AtomicBool,
    /// Requests picked while this backend was ready (not as a terminating fallback) that have
    /// not had a response head yet, and L4 connections not yet connected: traffic the
    /// termination barrier lets reach the app before it is stopped.
    dispatching: AtomicUsize,
    /// Consecutive failures; 0 means healthy.
    failures: AtomicU32,
    /// End of the current back-off, in `Shared::now_nanos`.
    backoff_until: AtomicU64,
    /// Connection pools, one per gateway worker (`workers::current()`): a pooled connection
    /// is driven by a task of the worker that opened it, and only that worker's requests use
    /// it, so no request waits on another thread.
    pools: Box<[Pool]>,
}

/// One worker's connections to a backend.
#[derive(Default)]
struct Pool {
    /// Idle HTTP/1.1 connections of hyper's client (requests from h2c clients), most
    /// recently used last.
    idle: Mutex<Vec<IdleConn>>,
    /// Idle connections of the HTTP/1.1 forwarding path (`h1.rs`), most recently used last.
    conns: Mutex<Vec<(BackendConn, Instant)>>,
    /// The shared h2c connection, if one is open.
    h2: Mutex<Option<http2::SendRequest<ReqBody>>>,
}

/// An idle pooled HTTP/1.1 connection.
pub(crate) struct IdleConn {
    sender: http1::SendRequest<ReqBody>,
    since: Instant,
}

/// Endpoints already tried by one request or connection, by address (a retry picks from the
/// endpoint set current then, which may not be the first try's).
#[derive(Default)]
pub(crate) struct Tried {
    addrs: [Option<SocketAddr>; MAX_TRIES],
    len: usize,
}

impl Tried {
    pub(crate) fn push(&mut self, addr: SocketAddr) {
        if self.len < MAX_TRIES {
            self.addrs[self.len] = Some(addr);
            self.len += 1;
        }
    }

    fn contains(&self, addr: SocketAddr) -> bool {
        self.addrs[..self.len].contains(&Some(addr))
    }
}

/// One endpoint chosen for a request or connection, with the counts it holds until dropped.
pub(crate) struct Pick {
    pub(crate) backend: Arc<Backend>,
    /// Picked as a terminating fallback (no ready endpoint): fresh connection, then close.
    pub(crate) fallback: bool,
    pub(crate) in_flight: InFlight,
    /// Held until the response head (L7) or the connection (L4): see `Backend::dispatching`.
    pub(crate) dispatch: Dispatch,
}

/// Counts a pick from an endpoint set under way (see `Table::picking`).
struct Picking<'a> {
    table: Arc<Table>,
    shared: &'a Shared,
}

impl Drop for Picking<'_> {
    fn drop(&mut self) {
        if self.table.picking.fetch_sub(1, Ordering::SeqCst) == 1
            && self.table.retired.load(Ordering::SeqCst)
        {
            self.shared.bump();
        }
    }
}

/// Counts one request on its way to a backend that was ready when picked, until its response
/// head (or failure); the last one to end on a draining backend tells the barrier.
pub(crate) struct Dispatch(Option<(Arc<Backend>, Arc<Shared>)>);

impl Dispatch {
    /// Ends the count now (the response head arrived, the connection is up, or it failed).
    pub(crate) fn done(&mut self) {
        if let Some((backend, shared)) = self.0.take()
            && backend.dispatching.fetch_sub(1, Ordering::SeqCst) == 1
            && backend.draining()
        {
            shared.bump();
        }
    }
}

impl Drop for Dispatch {
    fn drop(&mut self) {
        self.done();
    }
}

/// Counts one request or connection in flight on a backend until dropped.
pub(crate) struct InFlight(pub(crate) Arc<Backend>);

impl InFlight {
    pub(crate) fn new(backend: Arc<Backend>) -> InFlight {
        backend.outstanding.fetch_add(1, Ordering::Relaxed);
        InFlight(backend)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Route {
    pub(crate) fn new(
        key: RouteKey,
        shared: Arc<Shared>,
        metrics: RouteMetrics,
        protocol: Protocol,
        affinity: Option<Duration>,
    ) -> Route {
        let no_endpoints_body = format!(
            "no ready endpoints for service {} port {}\n",
            key.service,
            display_port(&key.port_name)
        )
        .into();
        Route {
            no_endpoints_body,
            closed: shared.closing.child_token(),
            shared,
            key,
            table: RwLock::new(Arc::new(Table::new(
                protocol,
                affinity,
                Vec::new(),
                Vec::new(),
                false,
            ))),
            rr: AtomicUsize::new(0),
            sticky: Mutex::new(HashMap::new()),
            retired: Mutex::new(Vec::new()),
            metrics,
        }
    }

    /// The current endpoint set.
    pub(crate) fn table(&self) -> Arc<Table> {
        self.table
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Counts a pick from the current set under way; the count is taken under the read lock,
    /// so `swap` sees every pick of the set it replaces.
    fn begin_pick(&self) -> Picking<'_> {
        let current = self
            .table
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        current.picking.fetch_add(1, Ordering::SeqCst);
        Picking {
            table: current.clone(),
            shared: &self.shared,
        }
    }

    fn swap(&self, table: Table) {
        let old = {
            let mut current = self
                .table
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            std::mem::replace(&mut *current, Arc::new(table))
        };
        old.retired.store(true, Ordering::SeqCst);
        if old.picking.load(Ordering::SeqCst) > 0 {
            let mut retired = lock(&self.retired);
            retired.retain(|t| t.strong_count() > 0);
            retired.push(Arc::downgrade(&old));
        }
    }

    /// Whether a pick from a replaced endpoint set is still under way (it may yet choose an
    /// endpoint that is no longer ready there). Such a window lasts a few instructions.
    pub(crate) fn picks_pending(&self) -> bool {
        let mut retired = lock(&self.retired);
        retired.retain(|t| {
            t.upgrade()
                .is_some_and(|t| t.picking.load(Ordering::SeqCst) > 0)
        });
        !retired.is_empty()
    }

    pub(crate) fn protocol(&self) -> Protocol {
        self.table().protocol
    }

    /// Takes a new protocol and affinity, keeping the endpoints. Control plane only.
    pub(crate) fn set_settings(&self, protocol: Protocol, affinity: Option<Duration>) {
        let old = self.table();
        if old.protocol == protocol && old.affinity == affinity {
            return;
        }
        if affinity.is_none() {
            lock(&self.sticky).clear();
        }
        self.swap(Table::new(
            protocol,
            affinity,
            old.members.clone(),
            old.eligible.clone(),
            old.fallback,
        ));
    }

    /// Installs a new endpoint set. `backends` (control-plane state, under its lock) keeps
    /// backends alive elsewhere so a returning address keeps its pool and back-off.
    pub(crate) fn set_endpoints(
        &self,
        endpoints: Vec<Endpoint>,
        backends: &mut HashMap<SocketAddr, Weak<Backend>>,
    ) {
        let old = self.table();
        backends.retain(|_, weak| weak.strong_count() > 0);
        let mut members = Vec::with_capacity(endpoints.len());
        for endpoint in endpoints {
            if members
                .iter()
                .any(|(e, _): &(Endpoint, Arc<Backend>)| e.addr == endpoint.addr)
            {
                continue;
            }
            let backend = match backends.get(&endpoint.addr).and_then(Weak::upgrade) {
                Some(b) if b.target == endpoint.target => b,
                _ => {
                    let b = Arc::new(Backend::new(
                        endpoint.addr,
                        endpoint.target.clone(),
                        self.shared.config.workers,
                    ));
                    backends.insert(endpoint.addr, Arc::downgrade(&b));
                    b
                }
            };
            members.push((endpoint, backend));
        }
        let ready: Vec<Arc<Backend>> = members
            .iter()
            .filter(|(e, _)| e.ready)
            .map(|(_, b)| b.clone())
            .collect();
        let (eligible, fallback) = if ready.is_empty() {
            let terminating: Vec<Arc<Backend>> = members
                .iter()
                .filter(|(e, _)| e.serving && e.terminating)
                .map(|(_, b)| b.clone())
                .collect();
            let fallback = !terminating.is_empty();
            (terminating, fallback)
        } else {
            (ready, false)
        };
        // Mark what may no longer be pooled before the new set is visible, so that no request
        // of the new set finds a pooled connection to a draining backend.
        for (endpoint, backend) in &members {
            if endpoint.ready {
                backend.draining.store(false, Ordering::Release);
            } else {
                backend.drain(self);
            }
        }
        for (_, backend) in &old.members {
            if !members.iter().any(|(_, b)| Arc::ptr_eq(b, backend)) {
                backend.drain(self);
            }
        }
        debug!(
            service = %self.key.service,
            port = %self.key.port_name,
            endpoints = members.len(),
            eligible = eligible.len(),
            fallback,
            "endpoints applied"
        );
        self.swap(Table::new(
            old.protocol,
            old.affinity,
            members,
            eligible,
            fallback,
        ));
    }

    /// Whether an endpoint at `ip` is in this route's set, in any state.
    pub(crate) fn has(&self, ip: IpAddr) -> bool {
        self.table().members.iter().any(|(e, _)| e.addr.ip() == ip)
    }

    /// Whether an endpoint at `ip` is marked ready here.
    pub(crate) fn has_ready(&self, ip: IpAddr) -> bool {
        self.table()
            .members
            .iter()
            .any(|(e, _)| e.ready && e.addr.ip() == ip)
    }

    /// Stops everything of this route: accept loops, client connections (gracefully), pools.
    pub(crate) fn close(&self) {
        self.closed.cancel();
        let old = self.table();
        for (_, backend) in &old.members {
            backend.drain(self);
        }
        self.swap(Table::new(
            old.protocol,
            None,
            Vec::new(),
            Vec::new(),
            false,
        ));
    }

    /// Picks the endpoint for the next try of a request or connection from `client` in the
    /// current endpoint set (see [`Route::pick`]) and counts it: in flight, and dispatching
    /// unless picked as a terminating fallback. `None` when nothing is left to try.
    pub(crate) fn pick_next(&self, client: IpAddr, tried: &Tried) -> Option<Pick> {
        let picking = self.begin_pick();
        let table = &picking.table;
        let index = self.pick(table, client, tried)?;
        let backend = table.eligible[index].clone();
        let dispatch = if table.fallback {
            Dispatch(None)
        } else {
            backend.dispatching.fetch_add(1, Ordering::SeqCst);
            Dispatch(Some((backend.clone(), self.shared.clone())))
        };
        Some(Pick {
            in_flight: InFlight::new(backend.clone()),
            fallback: table.fallback,
            backend,
            dispatch,
        })
        // `picking` ends here, after the dispatch count went up.
    }

    /// Picks the endpoint for a new request or connection from `client`: the client's
    /// sticky endpoint if it has one, else the eligible endpoint with the fewest requests in
    /// flight, ties broken round robin; endpoints in back-off or already tried are skipped
    /// unless every untried endpoint is in back-off. `None` when nothing is left to try.
    fn pick(&self, table: &Table, client: IpAddr, tried: &Tried) -> Option<usize> {
        let n = table.eligible.len();
        if n == 0 {
            return None;
        }
        let now = self.shared.now_nanos();
        if let Some(timeout) = table.affinity
            && let Some(index) = self.sticky_pick(table, client, tried, now, timeout)
        {
            return Some(index);
        }
        // The least loaded among the endpoints not backing off (else among all), then the
        // n-th of those ties, n turning with every pick: round robin between equals.
        let candidate = |index: usize| !tried.contains(table.eligible[index].addr);
        let mut least = (usize::MAX, 0usize);
        let mut least_backing_off = (usize::MAX, 0usize);
        for (index, backend) in table.eligible.iter().enumerate() {
            if !candidate(index) {
                continue;
            }
            let load = backend.outstanding.load(Ordering::Relaxed);
            let slot = if backend.backing_off(now) {
                &mut least_backing_off
            } else {
                &mut least
            };
            if load < slot.0 {
                *slot = (load, 1);
            } else if load == slot.0 {
                slot.1 += 1;
            }
        }
        let (load, ties, backing_off) = if least.1 > 0 {
            (least.0, least.1, false)
        } else if least_backing_off.1 > 0 {
            (least_backing_off.0, least_backing_off.1, true)
        } else {
            return None;
        };
        let nth = self.rr.fetch_add(1, Ordering::Relaxed) % ties;
        let mut matching = table
            .eligible
            .iter()
            .enumerate()
            .filter(|(index, backend)| {
                candidate(*index)
                    && backend.backing_off(now) == backing_off
                    && backend.outstanding.load(Ordering::Relaxed) == load
            });
        // Loads may have moved since the first pass: then any candidate will do.
        let index = match matching.nth(nth) {
            Some((index, _)) => index,
            None => (0..n).find(|i| candidate(*i))?,
        };
        if let Some(timeout) = table.affinity {
            let until = now.saturating_add(nanos(timeout));
            let mut sticky = lock(&self.sticky);
            if sticky.len() >= 4096 {
                sticky.retain(|_, (_, until)| *until > now);
            }
            sticky.insert(client, (table.eligible[index].addr, until));
        }
        Some(index)
    }

    /// The client's sticky endpoint, if it is still eligible, untried and not backing off;
    /// its timeout starts again.
    fn sticky_pick(
        &self,
        table: &Table,
        client: IpAddr,
        tried: &Tried,
        now: u64,
        timeout: Duration,
    ) -> Option<usize> {
        let mut sticky = lock(&self.sticky);
        let (addr, until) = sticky.get_mut(&client)?;
        if *until <= now {
            return None;
        }
        let index = table.eligible.iter().position(|b| b.addr == *addr)?;
        if tried.contains(*addr) || table.eligible[index].backing_off(now) {
            return None;
        }
        *until = now.saturating_add(nanos(timeout));
        Some(index)
    }
}

/// The port's name for messages; a Service's single port may be unnamed.
pub(crate) fn display_port(port_name: &str) -> &str {
    if port_name.is_empty() {
        "(unnamed)"
    } else {
        port_name
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Backend {
    fn new(addr: SocketAddr, target: Option<String>, pools: usize) -> Backend {
        Backend {
            addr,
            name: target.clone().unwrap_or_else(|| addr.to_string()),
            target,
            outstanding: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            dispatching: AtomicUsize::new(0),
            failures: AtomicU32::new(0),
            backoff_until: AtomicU64::new(0),
            pools: (0..pools.max(1)).map(|_| Pool::default()).collect(),
        }
    }

    /// The calling worker's pool.
    fn pool(&self) -> &Pool {
        &self.pools[super::workers::current() % self.pools.len()]
    }

    /// `endpoint <name> (<addr>) <what>`, how a 502 and the logs name a failed try.
    pub(crate) fn failure(&self, what: std::fmt::Arguments<'_>) -> String {
        format!("endpoint {} ({}) {what}", self.name, self.addr)
    }

    pub(crate) fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Whether a request picked while this backend was ready still waits for its response
    /// head (or an L4 connection for its connect).
    pub(crate) fn dispatching(&self) -> bool {
        self.dispatching.load(Ordering::SeqCst) > 0
    }

    /// No more pooled traffic: idle HTTP/1.1 connections close now; the h2c connection is
    /// released, so it sends GOAWAY and closes once its streams in flight are done.
    fn drain(&self, route: &Route) {
        if !self.draining.swap(true, Ordering::AcqRel) {
            let mut idle = Vec::new();
            let mut conns = Vec::new();
            let mut h2 = Vec::new();
            for pool in &self.pools {
                idle.append(&mut lock(&pool.idle));
                conns.append(&mut lock(&pool.conns));
                h2.extend(lock(&pool.h2).take());
            }
            debug!(
                service = %route.key.service,
                port = %route.key.port_name,
                endpoint = %self.name,
                addr = %self.addr,
                idle = idle.len() + conns.len(),
                h2 = h2.len(),
                "endpoint draining: pooled connections closed"
            );
        }
    }

    fn backing_off(&self, now: u64) -> bool {
        self.backoff_until.load(Ordering::Relaxed) > now
    }

    /// A connection to this backend failed (connect refused or timed out, reset before a
    /// response): it sits out a back-off that doubles with each consecutive failure.
    pub(crate) fn failed(&self, route: &Route, error: &dyn std::fmt::Display) {
        let config = &route.shared.config;
        let n = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let factor = 1u32
            .checked_shl(n.saturating_sub(1).min(16))
            .unwrap_or(u32::MAX);
        let backoff = config
            .backoff_initial
            .saturating_mul(factor)
            .min(config.backoff_max);
        self.backoff_until.store(
            route.shared.now_nanos().saturating_add(nanos(backoff)),
            Ordering::Relaxed,
        );
        route.metrics.backend_errors.inc();
        if n == 1 {
            warn!(
                service = %route.key.service, port = %route.key.port_name, endpoint = %self.name,
                addr = %self.addr, %error, backoff = ?backoff,
                "endpoint failed: out of rotation for a back-off"
            );
        } else {
            info!(
                service = %route.key.service, port = %route.key.port_name, endpoint = %self.name,
                addr = %self.addr, %error, failures = n, backoff = ?backoff,
                "endpoint failed again"
            );
        }
    }

    /// A request or connection to this backend succeeded: any back-off ends.
    pub(crate) fn succeeded(&self, route: &Route) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
            self.backoff_until.store(0, Ordering::Relaxed);
            info!(
                service = %route.key.service, port = %route.key.port_name, endpoint = %self.name,
                addr = %self.addr, "endpoint recovered"
            );
        }
    }

    /// An idle HTTP/1.1 connection that is ready for a request, most recently used first.
    /// Closed and expired ones are dropped; ones still finishing a response stay.
    pub(crate) fn checkout_h1(
        &self,
        idle_timeout: Duration,
    ) -> Option<http1::SendRequest<ReqBody>> {
        let mut idle = lock(&self.pool().idle);
        let mut i = idle.len();
        while i > 0 {
            i -= 1;
            let conn = &idle[i];
            if conn.sender.is_closed() || conn.since.elapsed() > idle_timeout {
                idle.remove(i);
            } else if conn.sender.is_ready() {
                return Some(idle.remove(i).sender);
            }
        }
        None
    }

    /// Puts a connection whose response ended back in the pool, unless the backend is
    /// draining, the connection closed or the pool is full.
    pub(crate) fn checkin_h1(&self, sender: http1::SendRequest<ReqBody>, max_idle: usize) {
        if sender.is_closed() || self.draining() {
            return;
        }
        let mut idle = lock(&self.pool().idle);
        // Checked again under the lock: `drain` empties the pool under it after setting the
        // flag, so a connection put back after that would stay.
        if self.draining() || idle.len() >= max_idle {
            return;
        }
        idle.push(IdleConn {
            sender,
            since: Instant::now(),
        });
    }

    /// An idle connection of the HTTP/1.1 forwarding path that can take a request, most
    /// recently used first; closed and expired ones are dropped.
    pub(crate) fn checkout_conn(&self, idle_timeout: Duration) -> Option<BackendConn> {
        let mut conns = lock(&self.pool().conns);
        // The oldest come first: the expired ones are a prefix, closed here even when
        // traffic keeps the newest busy.
        let now = Instant::now();
        let expired = conns
            .iter()
            .take_while(|(_, since)| now.duration_since(*since) > idle_timeout)
            .count();
        conns.drain(..expired);
        while let Some((conn, _)) = conns.pop() {
            if conn.is_usable() {
                return Some(conn);
            }
        }
        None
    }

    /// Puts a connection of the forwarding path whose response ended back in the pool,
    /// unless the backend is draining or the pool is full.
    pub(crate) fn checkin_conn(&self, conn: BackendConn, max_idle: usize) {
        if self.draining() {
            return;
        }
        let mut conns = lock(&self.pool().conns);
        // Checked again under the lock: see `checkin_h1`.
        if self.draining() || conns.len() >= max_idle {
            return;
        }
        conns.push((conn, Instant::now()));
    }

    /// The shared h2c connection, if open and the backend is not draining.
    pub(crate) fn checkout_h2(&self) -> Option<http2::SendRequest<ReqBody>> {
        let mut h2 = lock(&self.pool().h2);
        match h2.as_ref() {
            Some(sender) if sender.is_closed() => {
                *h2 = None;
                None
            }
            Some(sender) => Some(sender.clone()),
            None => None,
        }
    }

    /// Shares a new h2c connection for later requests, unless draining or one is there.
    pub(crate) fn share_h2(&self, sender: &http2::SendRequest<ReqBody>) {
        let mut h2 = lock(&self.pool().h2);
        if !self.draining() && h2.as_ref().is_none_or(|s| s.is_closed()) {
            *h2 = Some(sender.clone());
        }
    }
}
