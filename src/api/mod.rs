//! The Kubernetes API server of a node: HTTPS on 127.0.0.1 with a bearer token, discovery,
//! a minimal OpenAPI, CRUD with selectors, Tables, watches, graceful pod deletion, patches and
//! server-side apply, the pod `log` subresource, and Status errors (kubectl-api.md).
//!
//! The target is kube-apiserver 1.32 as the real kubectl and client libraries see it: codes,
//! reasons, messages and `details` are upstream's (the integration tests in `tests/it/api.rs`
//! pin them), the handlers check in upstream's order, and the registry rules (create, update,
//! delete, status) are the strategies'. Where upstream has a known bug that clients see (an
//! unparsable `resourceVersion` is a 500), it is reproduced.
//!
//! One handler function per endpoint (`objects`, `watch`, `logs`, `discovery`), one error type
//! (`status::ApiError`) converted from domain errors in one place each; query parameters are
//! decoded and validated as upstream's options kinds in `options`.
//!
//! Deviations from upstream, beyond those listed in `objects`, `watch` and `logs`:
//! - Authentication is one bearer token; no RBAC. A request without a token may read
//!   `/version` and the health endpoints only (upstream's anonymous `system:public-info-viewer`)
//!   and gets 401 elsewhere (upstream: 403 for `system:anonymous`).
//! - The node is the scheduler: pods are bound (`spec.nodeName`) when created.
//! - Pods carry `metadata.generation` as from 1.33 (1.32 pods have none).
//! - `limit`/`continue` are ignored (every list is complete, without `continue`), and a list at
//!   a `resourceVersion` is served from the current state.
//! - The kubelet's final delete of a pod removes it without the MODIFIED event upstream's
//!   grace-0 update writes first (API deletes with grace 0 do write it).
//!
//! Must not: see processes or pod workers. It reads and writes the store only, and reads
//! container log files (the `log` subresource).

pub mod discovery;
mod logs;
mod objects;
pub mod options;
mod protobuf;
pub mod query;
pub mod status;
pub mod tls;
mod watch;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::query::{Query, parse_target};
use self::status::ApiError;
use crate::store::{Store, resources};

/// Request bodies larger than this are refused (the API server's 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Errors starting the API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {address}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot prepare the API's certificates and token")]
    Tls(#[source] tls::Error),
}

/// API settings.
#[derive(Clone)]
pub struct ApiConfig {
    /// Where to listen (127.0.0.1).
    pub address: IpAddr,
    /// The port; 0 picks a free one (written into the kubeconfig).
    pub port: u16,
    /// Credentials and the kubeconfig go here; container logs are read below it.
    pub data_dir: PathBuf,
    /// The node that runs the pods created through the API.
    pub node_name: String,
    /// The body of `/metrics` (authenticated, as upstream's); None: 404.
    pub metrics: Option<MetricsSource>,
}

/// Produces the OpenMetrics text of the node's metrics (the API does not know where they
/// come from).
pub type MetricsSource = Arc<dyn Fn() -> String + Send + Sync>;

/// What every handler shares.
pub(crate) struct Ctx {
    pub store: Arc<Store>,
    pub token: String,
    pub node_name: String,
    pub data_dir: PathBuf,
    /// `127.0.0.1:6443`, for discovery's `serverAddressByClientCIDRs`.
    pub server_address: String,
    /// Ends long requests (watches, log follows) at shutdown.
    pub shutdown: CancellationToken,
    pub metrics: Option<MetricsSource>,
}

/// A running API server.
pub struct ApiServer {
    pub port: u16,
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    pub kubeconfig: PathBuf,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    /// Prepares credentials, listens, writes the kubeconfig, and serves until `stop`.
    pub async fn start(config: ApiConfig, store: Arc<Store>) -> Result<ApiServer, Error> {
        let credentials = tls::prepare(&config.data_dir.join("pki"), &config.address.to_string())
            .map_err(Error::Tls)?;
        let address = SocketAddr::new(config.address, config.port);
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| Error::Listen { address, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| Error::Listen { address, source })?;
        let url = format!("https://{bound}");
        let kubeconfig = config.data_dir.join("kubeconfig");
        tls::write_kubeconfig(&kubeconfig, &url, &credentials).map_err(Error::Tls)?;
        let shutdown = CancellationToken::new();
        let ctx = Arc::new(Ctx {
            store,
            token: credentials.token.clone(),
            node_name: config.node_name.clone(),
            data_dir: config.data_dir.clone(),
            server_address: bound.to_string(),
            shutdown: shutdown.clone(),
            metrics: config.metrics.clone(),
        });
        let router = axum::Router::new().fallback(handle).with_state(ctx);
        let acceptor = tokio_rustls::TlsAcceptor::from(credentials.server_config.clone());
        let token = shutdown.clone();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let (tcp, _) = tokio::select! {
                    () = token.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(error) => {
                            tracing::warn!(%error, "accept failed");
                            continue;
                        }
                    },
                };
                let acceptor = acceptor.clone();
                let router = router.clone();
                let token = token.clone();
                connections.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(router);
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                    tokio::select! {
                        _ = conn => {}
                        () = token.cancelled() => {}
                    }
                });
                while connections.try_join_next().is_some() {}
            }
            connections.shutdown().await;
        });
        Ok(ApiServer {
            port: bound.port(),
            url,
            kubeconfig,
            shutdown,
            task,
        })
    }

    /// Stops accepting, ends watches and follows, and waits for the server task.
    pub async fn stop(self) {
        self.shutdown.cancel();
        // Why ignored: a panicked server task has nothing left to clean up.
        let _ = self.task.await;
    }
}

/// The one entry point: authentication, then routing by path.
async fn handle(State(ctx): State<Arc<Ctx>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let query = Query::parse(parts.uri.query());
    let public = matches!(
        path.as_str(),
        "/version" | "/healthz" | "/livez" | "/readyz"
    );
    // A request without credentials is anonymous, which may read the public endpoints only
    // (upstream's `system:public-info-viewer`); wrong credentials fail authentication, which
    // comes first, so they are refused everywhere.
    let allowed = match bearer(&parts.headers) {
        None => public,
        Some(token) => token == ctx.token,
    };
    if !allowed {
        return ApiError::unauthorized().into_response();
    }
    let result = route(&ctx, &parts.method, &path, &query, &parts.headers, body).await;
    match result {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(method = %parts.method, path, code = error.code, message = error.message, "api error");
            error.into_response()
        }
    }
}

/// The credentials of a request: the bearer token, or `Some("")` for any other
/// `Authorization` header (which cannot authenticate).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?;
    Some(
        value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map_or("", str::trim),
    )
}

async fn route(
    ctx: &Arc<Ctx>,
    method: &Method,
    path: &str,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    if method == Method::GET {
        match path.trim_end_matches('/') {
            "/version" => return Ok(json(StatusCode::OK, &discovery::version())),
            "/healthz" | "/livez" | "/readyz" => return Ok((StatusCode::OK, "ok").into_response()),
            "/metrics" => {
                let Some(metrics) = &ctx.metrics else {
                    return Err(ApiError::not_found_path());
                };
                return Ok((
                    StatusCode::OK,
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics(),
                )
                    .into_response());
            }
            "/api" => {
                let aggregated = discovery::wants_aggregated(&accept);
                return Ok(discovery_response(
                    &discovery::api(aggregated, &ctx.server_address),
                    aggregated,
                ));
            }
            "/apis" => {
                let aggregated = discovery::wants_aggregated(&accept);
                return Ok(discovery_response(&discovery::apis(aggregated), aggregated));
            }
            "/openapi/v3" => return Ok(json(StatusCode::OK, &discovery::openapi_root())),
            "/api/v1" => {
                return discovery::resource_list("", "v1")
                    .map(|v| json(StatusCode::OK, &v))
                    .ok_or_else(ApiError::not_found_path);
            }
            _ => {}
        }
        if let Some(rest) = path.strip_prefix("/openapi/v3/") {
            return discovery::parse_openapi_path(rest)
                .and_then(|(g, v)| discovery::openapi_group(&g, &v))
                .map(|v| json(StatusCode::OK, &v))
                .ok_or_else(ApiError::not_found_path);
        }
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        if let ["apis", group, version] = parts.as_slice() {
            return discovery::resource_list(group, version)
                .map(|v| json(StatusCode::OK, &v))
                .ok_or_else(ApiError::not_found_path);
        }
    }
    let Some(target) = parse_target(path) else {
        return Err(ApiError::not_found_path());
    };
    let request = objects::RequestInfo {
        query: query.clone(),
        accept,
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_owned(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    };
    match (
        method.clone(),
        target.name.is_some(),
        target.subresource.as_deref(),
    ) {
        (Method::GET, false, None) => {
            let options = options::ListOptions::parse(query)?;
            if options.watch {
                watch::watch_objects(ctx, &target, &request, &options).await
            } else {
                objects::list_objects(ctx, &target, &request, &options)
            }
        }
        (Method::GET, true, Some("log")) if target.resource.plural == "pods" => {
            logs::get_pod_log(ctx, &target, &request).await
        }
        (Method::GET, true, None | Some("status")) => objects::get_object(ctx, &target, &request),
        (Method::GET, true, Some("scale")) if resources::has_scale(target.resource) => {
            objects::get_scale(ctx, &target)
        }
        (Method::PUT, true, Some("scale")) if resources::has_scale(target.resource) => {
            let body = read_body(body).await?;
            objects::update_scale(ctx, &target, &request, &body).await
        }
        (Method::PATCH, true, Some("scale")) if resources::has_scale(target.resource) => {
            let body = read_body(body).await?;
            objects::patch_scale(ctx, &target, &request, &body).await
        }
        (Method::POST, false, None) => {
            let body = read_body(body).await?;
            objects::create_object(ctx, &target, &request, &body).await
        }
        (Method::PUT, true, None | Some("status")) => {
            let body = read_body(body).await?;
            objects::update_object(ctx, &target, &request, &body).await
        }
        (Method::PATCH, true, None | Some("status")) => {
            let body = read_body(body).await?;
            objects::patch_object(ctx, &target, &request, &body).await
        }
        (Method::DELETE, true, None) => {
            let body = read_body(body).await?;
            objects::delete_object(ctx, &target, &request, &body).await
        }
        (Method::DELETE, false, None) => {
            let body = read_body(body).await?;
            objects::delete_collection(ctx, &target, &request, &body).await
        }
        (_, _, Some(_)) => Err(ApiError::not_found_path()),
        _ => Err(ApiError::method_not_allowed()),
    }
}

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                413,
                "RequestEntityTooLarge",
                format!("Request entity too large: limit is {MAX_BODY_BYTES}"),
            )
        })
}

/// A JSON response.
pub(crate) fn json(code: StatusCode, value: &Value) -> Response {
    let mut r = (code, value.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn discovery_response(value: &Value, aggregated: bool) -> Response {
    let mut r = json(StatusCode::OK, value);
    if aggregated {
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(discovery::AGGREGATED),
        );
    }
    r
}

/// A streaming response of lines (watch events, log lines).
pub(crate) fn stream(
    content_type: &'static str,
    rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
