//! L4 listeners: each client connection is joined to a new connection to one endpoint (the
//! one with the fewest connections, ties round robin; on connect failure the next, bounded).
//! Without an endpoint the client connection is closed at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpStream;
use tracing::debug;

use super::route::{Pick, Route, Tried};
use super::{ConnCount, connect};

/// Proxies one client connection until both directions have ended (a half-close is passed
/// on: end of stream from one side becomes a write shutdown towards the other).
pub(crate) async fn serve(route: Arc<Route>, mut client: TcpStream, peer: SocketAddr) {
    let start = Instant::now();
    route.metrics.requests.inc();
    // Why ignored: Nagle only delays small writes; the connection works either way.
    let _ = client.set_nodelay(true);
    let config = &route.shared.config;
    let mut tried = Tried::default();
    let mut tries = 0;
    while let Some(pick) = route.pick_next(peer.ip(), &tried) {
        let Pick {
            backend,
            in_flight,
            mut dispatch,
            ..
        } = pick;
        tries += 1;
        let connected = connect(backend.addr, config.connect_timeout).await;
        dispatch.done();
        match connected {
            Ok(mut upstream) => {
                backend.succeeded(&route);
                route.metrics.latency.observe(start.elapsed().as_secs_f64());
                let _count = ConnCount::new(&backend);
                debug!(service = %route.key.service, port = %route.key.port_name, %peer, endpoint = %backend.name, "tcp connection proxied");
                let copied = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                debug!(service = %route.key.service, port = %route.key.port_name, %peer, endpoint = %backend.name, result = ?copied, "tcp connection ended");
                drop(in_flight);
                return;
            }
            Err(error) => {
                backend.failed(&route, &error);
                drop(in_flight);
                if tries >= config.max_connect_tries {
                    break;
                }
                tried.push(backend.addr);
            }
        }
    }
    if tries == 0 {
        route.metrics.no_endpoints.inc();
        debug!(service = %route.key.service, port = %route.key.port_name, %peer, "no ready endpoints: connection closed");
    } else {
        route.metrics.backend_failed.inc();
        debug!(service = %route.key.service, port = %route.key.port_name, %peer, "every endpoint failed: connection closed");
    }
}
