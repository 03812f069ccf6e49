//! The API server against what a real kube-apiserver 1.32 answers: authentication and TLS,
//! discovery, CRUD and its Status errors, bad input (nothing written), selectors, Tables,
//! watches, graceful pod deletion with real processes, the `log` subresource, patches and
//! server-side apply, the `status` subresource and `dryRun`. Every expected message is
//! upstream's; the upstream source it comes from is named where it is not obvious.
//!
//! Each test starts its own node with the API on a free port of 127.0.0.1 and talks to it
//! over HTTPS with the kubeconfig the node wrote, through `cli::client::Client` and, where a
//! test needs headers, no token or a stream, through the small client below.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use podvisor::cli::client::Client;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};

use crate::harness::*;

/// What kubectl 1.32 sends for `get` (a Table, else JSON).
const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
/// What kubectl 1.32 sends for discovery.
const DISCOVERY_ACCEPT: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

const PODS: &str = "/api/v1/namespaces/default/pods";
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
const SECRETS: &str = "/api/v1/namespaces/default/secrets";
const EVENTS: &str = "/api/v1/namespaces/default/events";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
const NAMESPACES: &str = "/api/v1/namespaces";
const SERVICES: &str = "/api/v1/namespaces/default/services";
const ENDPOINTS: &str = "/api/v1/namespaces/default/endpoints";
const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";

// ---------------------------------------------------------------------------------------------
// The client side of the tests.
// ---------------------------------------------------------------------------------------------

/// Which credentials a request carries.
#[derive(Clone, Copy, PartialEq)]
enum Auth {
    Token,
    None,
    Wrong,
}

/// A whole reply.
struct Resp {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}), status {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status code and returns the JSON body.
    fn expect(&self, code: u16) -> Value {
        assert_eq!(self.status, code, "body: {}", self.text());
        self.json()
    }
}

/// A node with its API, and a client of it.
struct Api {
    node: TestNode,
    client: Client,
    host: String,
    port: u16,
    token: String,
    tls: tokio_rustls::TlsConnector,
}

fn connector(roots: rustls::RootCertStore) -> tokio_rustls::TlsConnector {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

impl Api {
    /// A node with its API and no Deployment or ReplicaSet controller (these tests pin the API
    /// server's own answers; `tests/it/deployments.rs` runs the controllers).
    async fn start() -> Api {
        let node = TestNode::start_with(NodeOptions {
            api: true,
            workload_controllers: false,
            ..Default::default()
        })
        .await;
        Api::connect(node)
    }

    /// Restarts the node on its data dir and connects to its new API.
    async fn restart(self) -> Api {
        Api::connect(self.node.restart().await)
    }

    /// A client of a node's API, from the kubeconfig it wrote.
    fn connect(node: TestNode) -> Api {
        let data = node.dir.path().join("data");
        let kubeconfig = data.join("kubeconfig");
        let client = Client::from_config(Some(&kubeconfig), &data).unwrap();
        let config: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(&kubeconfig).unwrap()).unwrap();
        let server = config["clusters"][0]["cluster"]["server"].as_str().unwrap();
        let (host, port) = server
            .strip_prefix("https://")
            .unwrap()
            .rsplit_once(':')
            .unwrap();
        let ca = base64::engine::general_purpose::STANDARD
            .decode(
                config["clusters"][0]["cluster"]["certificate-authority-data"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&ca) {
            roots.add(cert.unwrap()).unwrap();
        }
        Api {
            client,
            host: host.to_owned(),
            port: port.parse().unwrap(),
            token: config["users"][0]["user"]["token"]
                .as_str()
                .unwrap()
                .to_owned(),
            tls: connector(roots),
            node,
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        auth: Auth,
    ) -> hyper::Response<Incoming> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .unwrap();
        let name = ServerName::try_from(self.host.clone()).unwrap();
        let tls = self.tls.connect(name, tcp).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(async move {
            // Why ignored: a broken connection shows up on the request.
            let _ = conn.await;
        });
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("{}:{}", self.host, self.port));
        match auth {
            Auth::Token => {
                request = request.header("authorization", format!("Bearer {}", self.token))
            }
            Auth::Wrong => request = request.header("authorization", "Bearer not-the-token"),
            Auth::None => {}
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        sender
            .send_request(request.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap()
    }

    /// A request whose whole reply is read.
    async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        auth: Auth,
    ) -> Resp {
        let response = self.send(method, path, headers, body, auth).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = tokio::time::timeout(SECS(20), response.into_body().collect())
            .await
            .expect("reply within 20 s")
            .unwrap()
            .to_bytes();
        Resp {
            status,
            headers,
            body,
        }
    }

    /// A JSON request through the CLI's client.
    async fn call(&self, method: &str, path: &str, content_type: &str, body: Vec<u8>) -> Resp {
        let ct = (!body.is_empty() || method != "GET").then_some(content_type);
        let reply = self
            .client
            .call(method, path, ct, "application/json", body)
            .await
            .unwrap();
        Resp {
            status: reply.status,
            headers: http::HeaderMap::new(),
            body: reply.body,
        }
    }

    async fn get(&self, path: &str) -> Resp {
        self.call("GET", path, "", Vec::new()).await
    }

    async fn post(&self, path: &str, body: &Value) -> Resp {
        self.call(
            "POST",
            path,
            "application/json",
            body.to_string().into_bytes(),
        )
        .await
    }

    async fn put(&self, path: &str, body: &Value) -> Resp {
        self.call(
            "PUT",
            path,
            "application/json",
            body.to_string().into_bytes(),
        )
        .await
    }

    async fn patch(&self, path: &str, content_type: &str, body: &str) -> Resp {
        self.call("PATCH", path, content_type, body.as_bytes().to_vec())
            .await
    }

    async fn delete(&self, path: &str, body: Option<&Value>) -> Resp {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.call("DELETE", path, "application/json", body).await
    }

    /// Creates and returns the stored object (201 asserted).
    async fn create(&self, path: &str, body: &Value) -> Value {
        self.post(path, body).await.expect(201)
    }

    /// The list's resourceVersion: it moves with every write, so an unchanged one proves
    /// that a rejected request wrote nothing.
    async fn list_rv(&self, path: &str) -> String {
        self.get(path).await.expect(200)["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A watch (or log follow) stream.
    async fn stream(&self, path: &str, accept: &str) -> Stream {
        let response = self
            .send("GET", path, &[("accept", accept)], Vec::new(), Auth::Token)
            .await;
        assert_eq!(response.status().as_u16(), 200, "stream {path}");
        Stream {
            content_type: response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            body: response.into_body(),
            buffer: Vec::new(),
            ended: false,
        }
    }

    async fn watch(&self, path: &str) -> Stream {
        self.stream(path, "application/json").await
    }

    /// The names of the objects a list returns.
    async fn names(&self, path: &str) -> Vec<String> {
        let list = self.get(path).await.expect(200);
        let mut names: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }

    async fn stop(self) {
        self.node.stop().await;
    }
}

/// A streamed reply read line by line (watch events) or as text (log follows).
struct Stream {
    content_type: String,
    body: Incoming,
    buffer: Vec<u8>,
    ended: bool,
}

impl Stream {
    /// The next line, None once the stream ended; panics after `timeout`.
    async fn line(&mut self, timeout: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(i) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=i).collect();
                return Some(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => panic!("no line within {timeout:?}; have {:?}", self.buffer),
                Ok(None) => self.ended = true,
                Ok(Some(frame)) => {
                    if let Some(data) = frame.unwrap().data_ref() {
                        self.buffer.extend_from_slice(data);
                    }
                }
            }
        }
    }

    /// The next watch event, None once the stream ended.
    async fn event(&mut self, timeout: Duration) -> Option<Value> {
        let line = self.line(timeout).await?;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")))
    }

    /// The next event that is not a BOOKMARK.
    async fn change(&mut self, timeout: Duration) -> Value {
        loop {
            let e = self.event(timeout).await.expect("the watch ended");
            if e["type"] != "BOOKMARK" {
                return e;
            }
        }
    }

    /// Whether the stream ends within `timeout` without another event.
    async fn ends_within(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.ended {
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => return false,
                Ok(None) => self.ended = true,
                Ok(Some(frame)) => {
                    if let Some(data) = frame.unwrap().data_ref() {
                        self.buffer.extend_from_slice(data);
                    }
                }
            }
        }
        true
    }
}

/// Asserts a `Status` failure exactly as upstream renders it, and returns it.
#[track_caller]
fn assert_status(r: &Resp, code: u16, reason: &str, message: &str) -> Value {
    let s = r.json();
    if r.body.len() > 4096 {
        // Keep failure output readable: huge bodies are compared without being printed.
        let short = |v: &Value| v.as_str().map(|t| t.chars().take(300).collect::<String>());
        assert_eq!(
            (r.status, short(&s["message"])),
            (code, Some(message.chars().take(300).collect()))
        );
    }
    assert_eq!(r.status, code, "HTTP code of {s}");
    assert_eq!(s["kind"], "Status", "{s}");
    assert_eq!(s["apiVersion"], "v1", "{s}");
    assert_eq!(s["status"], "Failure", "{s}");
    assert_eq!(s["code"], code, "{s}");
    if reason.is_empty() {
        assert!(s.get("reason").is_none(), "no reason expected: {s}");
    } else {
        assert_eq!(s["reason"], reason, "{s}");
    }
    assert_eq!(s["message"], message, "{s}");
    s
}

fn name_of(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap()
}

fn rv_of(v: &Value) -> &str {
    v["metadata"]["resourceVersion"].as_str().unwrap()
}

fn configmap(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})
}

/// A pod of one container running `command` on the host.
fn pod(name: &str, command: &[&str]) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"terminationGracePeriodSeconds": 30,
                    "containers": [{"name": "app", "image": "podvisor/testapp", "command": command}]}})
}

/// A testapp pod that records to the node's record file and ignores SIGTERM.
fn stubborn_pod(node: &TestNode, name: &str, grace: i64) -> Value {
    let record = node.record.to_string_lossy().into_owned();
    let mut p = pod(
        name,
        &[
            TESTAPP,
            "serve",
            "--name",
            name,
            "--record",
            &record,
            "--port",
            "0",
            "--on-signal",
            "TERM=ignore",
        ],
    );
    p["spec"]["terminationGracePeriodSeconds"] = json!(grace);
    p
}

// ---------------------------------------------------------------------------------------------
// 1. Authentication, TLS, kubeconfig.
// ---------------------------------------------------------------------------------------------

/// No token or a wrong one: 401 `Unauthorized` everywhere, except that the health and version
/// endpoints answer a request without a token (upstream's `system:public-info-viewer`); a
/// wrong token fails authentication before authorization, so it is 401 there too. The
/// kubeconfig is 0600 and its CA is the only one that verifies the server.
#[tokio::test]
async fn auth_requires_the_token_and_tls_verifies_with_the_kubeconfig_ca() {
    let api = Api::start().await;
    let kubeconfig = api.node.dir.path().join("data/kubeconfig");
    let mode = std::fs::metadata(&kubeconfig).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "kubeconfig mode {mode:o}");

    for path in [
        "/api",
        "/apis",
        "/api/v1",
        "/api/v1/namespaces/default/pods",
        "/api/v1/namespaces",
        "/openapi/v3",
        "/apis/coordination.k8s.io/v1/namespaces/default/leases",
    ] {
        for auth in [Auth::None, Auth::Wrong] {
            let r = api.raw("GET", path, &[], Vec::new(), auth).await;
            assert_status(&r, 401, "Unauthorized", "Unauthorized");
        }
    }
    for path in ["/version", "/healthz", "/livez", "/readyz"] {
        let r = api.raw("GET", path, &[], Vec::new(), Auth::None).await;
        assert_eq!(r.status, 200, "{path} without a token: {}", r.text());
        let r = api.raw("GET", path, &[], Vec::new(), Auth::Wrong).await;
        assert_status(&r, 401, "Unauthorized", "Unauthorized");
    }
    let r = api
        .raw("GET", "/healthz", &[], Vec::new(), Auth::None)
        .await;
    assert_eq!(r.text(), "ok");

    // A write without credentials writes nothing.
    let before = api.list_rv(CONFIGMAPS).await;
    let body = configmap("sneaky", json!({})).to_string().into_bytes();
    let r = api
        .raw(
            "POST",
            CONFIGMAPS,
            &[("content-type", "application/json")],
            body,
            Auth::None,
        )
        .await;
    assert_status(&r, 401, "Unauthorized", "Unauthorized");
    assert_eq!(api.list_rv(CONFIGMAPS).await, before);

    // With the kubeconfig's CA the handshake verifies (every request above); without it, it
    // does not.
    let tcp = tokio::net::TcpStream::connect((api.host.as_str(), api.port))
        .await
        .unwrap();
    let untrusted = connector(rustls::RootCertStore::empty());
    let error = untrusted
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .expect_err("a client without the CA must not trust the server");
    assert!(
        error.to_string().contains("UnknownIssuer") || error.to_string().contains("certificate"),
        "{error}"
    );
    // The CLI's client reads the same kubeconfig.
    let version = api
        .client
        .get("/version", "application/json")
        .await
        .unwrap();
    assert_eq!(version.status, 200);
    api.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 2. Discovery, /version, OpenAPI.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn discovery_version_and_openapi_match_upstream_shapes() {
    let api = Api::start().await;
    let v = api.get("/version").await.expect(200);
    assert_eq!(
        (v["major"].as_str(), v["minor"].as_str()),
        (Some("1"), Some("32"))
    );
    assert!(
        v["gitVersion"].as_str().unwrap().starts_with("v1.32."),
        "{v}"
    );

    // Legacy discovery.
    let r = api
        .raw(
            "GET",
            "/api",
            &[("accept", "application/json")],
            Vec::new(),
            Auth::Token,
        )
        .await;
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.expect(200);
    assert_eq!(body["kind"], "APIVersions");
    assert_eq!(body["versions"], json!(["v1"]));
    let groups = api.get("/apis").await.expect(200);
    assert_eq!(groups["kind"], "APIGroupList");
    let coordination = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "coordination.k8s.io")
        .expect("coordination.k8s.io is served");
    assert_eq!(
        coordination["preferredVersion"],
        json!({"groupVersion": "coordination.k8s.io/v1", "version": "v1"})
    );

    let v1 = api.get("/api/v1").await.expect(200);
    assert_eq!(
        (v1["kind"].as_str(), v1["groupVersion"].as_str()),
        (Some("APIResourceList"), Some("v1"))
    );
    let resource = |name: &str| -> Value {
        v1["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} in /api/v1"))
            .clone()
    };
    let all_verbs = json!([
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch"
    ]);
    for (name, kind, namespaced, short) in [
        ("pods", "Pod", true, Some(json!(["po"]))),
        ("namespaces", "Namespace", false, Some(json!(["ns"]))),
        ("configmaps", "ConfigMap", true, Some(json!(["cm"]))),
        ("secrets", "Secret", true, None),
        ("events", "Event", true, Some(json!(["ev"]))),
    ] {
        let r = resource(name);
        assert_eq!(r["kind"], kind, "{r}");
        assert_eq!(r["namespaced"], namespaced, "{r}");
        assert_eq!(r["verbs"], all_verbs, "{r}");
        assert_eq!(r.get("shortNames").cloned(), short, "{r}");
    }
    assert_eq!(resource("pods")["categories"], json!(["all"]));
    assert_eq!(resource("pods")["singularName"], "pod");
    assert_eq!(resource("pods/log")["verbs"], json!(["get"]));
    assert_eq!(
        resource("pods/status")["verbs"],
        json!(["get", "patch", "update"])
    );
    assert_eq!(resource("namespaces/status")["namespaced"], false);
    let leases = api.get("/apis/coordination.k8s.io/v1").await.expect(200);
    assert_eq!(leases["groupVersion"], "coordination.k8s.io/v1");
    assert_eq!(leases["resources"][0]["name"], "leases");
    assert_eq!(leases["resources"][0]["namespaced"], true);

    // Aggregated discovery, with the Accept header kubectl 1.32 sends.
    for path in ["/api", "/apis"] {
        let r = api
            .raw(
                "GET",
                path,
                &[("accept", DISCOVERY_ACCEPT)],
                Vec::new(),
                Auth::Token,
            )
            .await;
        assert_eq!(r.header("content-type"), Some(AGGREGATED), "{path}");
        let body = r.expect(200);
        assert_eq!(body["kind"], "APIGroupDiscoveryList");
        assert_eq!(body["apiVersion"], "apidiscovery.k8s.io/v2");
        if path == "/api" {
            let item = &body["items"][0];
            assert_eq!(item["metadata"]["name"], "");
            let version = &item["versions"][0];
            assert_eq!(version["freshness"], "Current");
            let pods = version["resources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["resource"] == "pods")
                .unwrap();
            assert_eq!(
                pods["responseKind"],
                json!({"group": "", "version": "v1", "kind": "Pod"})
            );
            assert_eq!(pods["scope"], "Namespaced");
            assert_eq!(pods["singularResource"], "pod");
            assert_eq!(pods["shortNames"], json!(["po"]));
            let subs: Vec<&str> = pods["subresources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["subresource"].as_str().unwrap())
                .collect();
            assert!(
                subs.contains(&"status") && subs.contains(&"log"),
                "{subs:?}"
            );
        } else {
            assert!(
                body["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|i| i["metadata"]["name"] == "coordination.k8s.io"),
                "{body}"
            );
        }
    }

    // OpenAPI v3: the root names every group-version; each document offers the PATCH
    // `fieldValidation` parameter kubectl looks for.
    let root = api.get("/openapi/v3").await.expect(200);
    let url = root["paths"]["api/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap();
    assert!(url.starts_with("/openapi/v3/api/v1?hash="), "{url}");
    assert!(
        root["paths"]["apis/coordination.k8s.io/v1"].is_object(),
        "{root}"
    );
    let doc = api.get(url).await.expect(200);
    let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "", "version": "v1", "kind": "Pod"})
    );
    assert!(
        patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );

    // Paths that serve nothing: upstream's NotFound with empty details.
    for path in [
        "/apis/batch/v1",
        "/api/v1/nodes",
        "/api/v2",
        "/nothing/here",
    ] {
        let s = assert_status(
            &api.get(path).await,
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        assert_eq!(s["details"], json!({}), "{path}");
    }
    api.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 3. CRUD with upstream's Status errors.
// ---------------------------------------------------------------------------------------------

/// One resource's CRUD round: what each step answers, per `store.go` and `errors.go`.
struct Crud {
    /// The collection path in `default` (or the cluster-scoped collection).
    collection: &'static str,
    /// `pods`, or `leases.coordination.k8s.io`, as upstream names it in messages.
    qualified: &'static str,
    plural: &'static str,
    group: &'static str,
    kind: &'static str,
    namespaced: bool,
    body: Value,
    /// A change for the update step.
    change: fn(&mut Value),
}

impl Crud {
    fn item(&self, name: &str) -> String {
        format!("{}/{name}", self.collection)
    }

    fn details(&self, name: &str) -> Value {
        let mut d = json!({"name": name, "kind": self.plural});
        if !self.group.is_empty() {
            d["group"] = json!(self.group);
        }
        d
    }

    async fn run(&self, api: &Api) {
        let name = name_of(&self.body).to_owned();
        let created = api.create(self.collection, &self.body).await;
        let meta = &created["metadata"];
        assert!(
            meta["uid"].as_str().is_some_and(|u| u.len() == 36),
            "{created}"
        );
        assert!(rv_of(&created).parse::<u64>().is_ok(), "{created}");
        assert!(
            meta["creationTimestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{created}"
        );
        // No generation for these kinds (upstream sets it where a strategy does: workloads,
        // and pods since 1.33; see pod_crud_and_update_rules).
        assert!(meta.get("generation").is_none(), "{created}");
        assert_eq!(created["kind"], self.kind);
        if self.namespaced {
            assert_eq!(meta["namespace"], "default");
        } else {
            assert!(meta.get("namespace").is_none(), "{created}");
        }

        let rv = api.list_rv(self.collection).await;
        // Create twice: 409 AlreadyExists.
        let s = assert_status(
            &api.post(self.collection, &self.body).await,
            409,
            "AlreadyExists",
            &format!("{} \"{name}\" already exists", self.qualified),
        );
        assert_eq!(s["details"], self.details(&name));
        // Get, list.
        assert_eq!(api.get(&self.item(&name)).await.expect(200), created);
        let list = api.get(self.collection).await.expect(200);
        assert_eq!(list["kind"], format!("{}List", self.kind));
        assert_eq!(list["apiVersion"], created["apiVersion"]);
        assert_eq!(list["metadata"]["resourceVersion"], json!(rv));
        assert!(
            list["items"].as_array().unwrap().contains(&created),
            "{list}"
        );
        // Missing object.
        let s = assert_status(
            &api.get(&self.item("nope")).await,
            404,
            "NotFound",
            &format!("{} \"nope\" not found", self.qualified),
        );
        assert_eq!(s["details"], self.details("nope"));
        assert_status(
            &api.delete(&self.item("nope"), None).await,
            404,
            "NotFound",
            &format!("{} \"nope\" not found", self.qualified),
        );
        // The name in the body against the one in the URL.
        let mut renamed = created.clone();
        renamed["metadata"]["name"] = json!("other");
        assert_status(
            &api.put(&self.item(&name), &renamed).await,
            400,
            "BadRequest",
            &format!("the name of the object (other) does not match the name on the URL ({name})"),
        );
        if self.namespaced {
            // The namespace in the body against the one in the URL, on create and update.
            let mut elsewhere = self.body.clone();
            elsewhere["metadata"]["namespace"] = json!("kube-system");
            let message = "the namespace of the provided object does not match the namespace sent on the request";
            assert_status(
                &api.post(self.collection, &elsewhere).await,
                400,
                "BadRequest",
                message,
            );
            let mut moved = created.clone();
            moved["metadata"]["namespace"] = json!("kube-system");
            assert_status(
                &api.put(&self.item(&name), &moved).await,
                400,
                "BadRequest",
                message,
            );
            // A namespace that does not exist.
            // (Validation comes first: an event must name its own namespace.)
            let nowhere = self.collection.replace("/default/", "/nowhere/");
            let mut body = self.body.clone();
            if body.get("involvedObject").is_some() {
                body["involvedObject"]["namespace"] = json!("nowhere");
            }
            let s = assert_status(
                &api.post(&nowhere, &body).await,
                404,
                "NotFound",
                "namespaces \"nowhere\" not found",
            );
            assert_eq!(
                s["details"],
                json!({"name": "nowhere", "kind": "namespaces"})
            );
        }
        assert_eq!(
            api.list_rv(self.collection).await,
            rv,
            "a failed write wrote something"
        );

        // Update with the current resourceVersion, then with the stale one.
        let mut next = created.clone();
        (self.change)(&mut next);
        let updated = api.put(&self.item(&name), &next).await.expect(200);
        assert!(rv_of(&updated).parse::<u64>().unwrap() > rv_of(&created).parse::<u64>().unwrap());
        assert_eq!(updated["metadata"]["uid"], created["metadata"]["uid"]);
        assert_eq!(
            updated["metadata"]["creationTimestamp"],
            created["metadata"]["creationTimestamp"]
        );
        let s = assert_status(
            &api.put(&self.item(&name), &next).await,
            409,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                self.qualified
            ),
        );
        assert_eq!(s["details"], self.details(&name));
        // A uid in the body is a precondition too, checked by the storage layer.
        let mut other_uid = updated.clone();
        other_uid["metadata"]["uid"] = json!("not-the-uid");
        let key = if self.namespaced {
            format!("/registry/{}/default/{name}", self.plural)
        } else {
            format!("/registry/{}/{name}", self.plural)
        };
        assert_status(
            &api.put(&self.item(&name), &other_uid).await,
            409,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {} \"{name}\": StorageError: invalid object, Code: 4, Key: {key}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: not-the-uid, UID in object meta: {}",
                self.qualified,
                updated["metadata"]["uid"].as_str().unwrap()
            ),
        );
        assert_eq!(api.get(&self.item(&name)).await.expect(200), updated);
    }
}

#[tokio::test]
async fn crud_of_configmaps_secrets_events_leases_and_namespaces() {
    let api = Api::start().await;
    let cases = [
        Crud {
            collection: CONFIGMAPS,
            qualified: "configmaps",
            plural: "configmaps",
            group: "",
            kind: "ConfigMap",
            namespaced: true,
            body: configmap("settings", json!({"app": "web"})),
            change: |v| v["data"]["k"] = json!("changed"),
        },
        Crud {
            collection: SECRETS,
            qualified: "secrets",
            plural: "secrets",
            group: "",
            kind: "Secret",
            namespaced: true,
            body: json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                         "stringData": {"user": "admin"}}),
            change: |v| v["data"]["extra"] = json!("eA=="),
        },
        Crud {
            collection: EVENTS,
            qualified: "events",
            plural: "events",
            group: "",
            kind: "Event",
            namespaced: true,
            body: json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1"},
                         "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default", "apiVersion": "v1"},
                         "reason": "Tested", "message": "hello", "type": "Normal",
                         "source": {"component": "tests"}}),
            change: |v| v["count"] = json!(2),
        },
        Crud {
            collection: LEASES,
            qualified: "leases.coordination.k8s.io",
            plural: "leases",
            group: "coordination.k8s.io",
            kind: "Lease",
            namespaced: true,
            body: json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                         "metadata": {"name": "holder"},
                         "spec": {"holderIdentity": "a", "leaseDurationSeconds": 10}}),
            change: |v| v["spec"]["holderIdentity"] = json!("b"),
        },
        Crud {
            collection: NAMESPACES,
            qualified: "namespaces",
            plural: "namespaces",
            group: "",
            kind: "Namespace",
            namespaced: false,
            body: json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
            change: |v| v["metadata"]["labels"]["tier"] = json!("gold"),
        },
    ];
    for case in &cases {
        case.run(&api).await;
    }
    // Upstream's defaults on what was created.
    let secret = api.get(&format!("{SECRETS}/creds")).await.expect(200);
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(secret["data"]["user"], "YWRtaW4=");
    assert!(secret.get("stringData").is_none(), "{secret}");
    let ns = api.get(&format!("{NAMESPACES}/team")).await.expect(200);
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team"
    );

    // Events and leases may be created by an update (`AllowCreateOnUpdate`); the others not.
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                       "metadata": {"name": "by-put"}, "spec": {"holderIdentity": "x"}});
    let created = api
        .put(&format!("{LEASES}/by-put"), &lease)
        .await
        .expect(201);
    assert!(created["metadata"]["uid"].is_string());
    let cm = configmap("by-put", json!({}));
    assert_status(
        &api.put(&format!("{CONFIGMAPS}/by-put"), &cm).await,
        404,
        "NotFound",
        "configmaps \"by-put\" not found",
    );

    // Deleting a non-pod: 200 with a success Status naming what went.
    let cm = api.get(&format!("{CONFIGMAPS}/settings")).await.expect(200);
    let s = api
        .delete(&format!("{CONFIGMAPS}/settings"), None)
        .await
        .expect(200);
    assert_eq!(
        s,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
               "details": {"name": "settings", "kind": "configmaps", "uid": cm["metadata"]["uid"]}})
    );
    assert_eq!(api.get(&format!("{CONFIGMAPS}/settings")).await.status, 404);
    let s = api
        .delete(&format!("{LEASES}/holder"), None)
        .await
        .expect(200);
    assert_eq!(s["details"]["group"], "coordination.k8s.io");
    assert_eq!(s["details"]["kind"], "leases");
    api.stop().await;
}

/// Pods: created bound to the node (the node is the scheduler) and `Pending` with their QoS
/// class, as `podStrategy.PrepareForCreate` leaves them; updates may change labels and images
/// only (`ValidatePodUpdate`), and `generation` follows spec changes (pods carry one since
/// 1.33).
#[tokio::test]
async fn pod_crud_and_update_rules() {
    let api = Api::start().await;
    let created = api.create(PODS, &pod("web", &["sleep", "60"])).await;
    assert_eq!(created["status"]["phase"], "Pending");
    assert_eq!(created["status"]["qosClass"], "BestEffort");
    assert_eq!(created["spec"]["nodeName"], "test-node");
    assert_eq!(created["metadata"]["generation"], 1);
    // Upstream defaults.
    assert_eq!(created["spec"]["restartPolicy"], "Always");
    assert_eq!(created["spec"]["dnsPolicy"], "ClusterFirst");
    assert_eq!(
        created["spec"]["containers"][0]["imagePullPolicy"],
        "Always"
    );
    assert_eq!(
        created["spec"]["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );
    let s = assert_status(
        &api.post(PODS, &pod("web", &["sleep", "60"])).await,
        409,
        "AlreadyExists",
        "pods \"web\" already exists",
    );
    assert_eq!(s["details"], json!({"name": "web", "kind": "pods"}));
    // The node's status writes for the start are done before the read-modify-writes below
    // (each PUT carries the resourceVersion it read; the start runs on a blocking thread).
    api.node.wait_running("web", Duration::from_secs(10)).await;

    // Labels: a metadata change, generation unchanged.
    let mut next = api.get(&format!("{PODS}/web")).await.expect(200);
    next["metadata"]["labels"] = json!({"app": "web"});
    let labelled = api.put(&format!("{PODS}/web"), &next).await.expect(200);
    assert_eq!(labelled["metadata"]["generation"], 1);
    assert_eq!(labelled["metadata"]["labels"]["app"], "web");
    // The image: a spec change, generation 2.
    let mut next = labelled.clone();
    next["spec"]["containers"][0]["image"] = json!("podvisor/testapp:v2");
    let imaged = api.put(&format!("{PODS}/web"), &next).await.expect(200);
    assert_eq!(imaged["metadata"]["generation"], 2);
    // Anything else in the spec: 422 Forbidden on `spec`. (The node writes the pod's status
    // meanwhile, so the stored spec is what must not change.)
    let mut next = imaged.clone();
    next["spec"]["containers"][0]["command"] = json!(["sleep", "61"]);
    let r = api.put(&format!("{PODS}/web"), &next).await;
    let s = r.expect(422);
    assert_eq!(s["reason"], "Invalid");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .starts_with("Pod \"web\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"),
        "{s}"
    );
    assert_eq!(s["details"]["kind"], "Pod");
    assert_eq!(s["details"]["name"], "web");
    assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueForbidden");
    assert_eq!(s["details"]["causes"][0]["field"], "spec");
    let stored = api.get(&format!("{PODS}/web")).await.expect(200);
    assert_eq!(stored["spec"], imaged["spec"]);
    assert_eq!(stored["metadata"]["generation"], 2);
    // The pod runs.
    api.node.wait_running("web", SECS(10)).await;
    api.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 4. Bad input: the right Status, and nothing written.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn bad_input_is_rejected_as_upstream_and_writes_nothing() {
    let api = Api::start().await;
    api.create(CONFIGMAPS, &configmap("kept", json!({"app": "web"})))
        .await;
    let kept = api.get(&format!("{CONFIGMAPS}/kept")).await.expect(200);
    let rv = api.list_rv(CONFIGMAPS).await;
    let kept_path = format!("{CONFIGMAPS}/kept");

    // Malformed JSON (upstream words the parser's error as Go's encoding/json does; only the
    // code and reason are checked).
    let r = api
        .call(
            "POST",
            CONFIGMAPS,
            "application/json",
            b"{\"metadata\": {".to_vec(),
        )
        .await;
    assert_eq!(r.expect(400)["reason"], "BadRequest");
    let r = api
        .call("PUT", &kept_path, "application/json", b"[1,".to_vec())
        .await;
    assert_eq!(r.expect(400)["reason"], "BadRequest");

    // Malformed YAML in a server-side apply.
    let r = api
        .patch(
            &format!("{kept_path}?fieldManager=t"),
            "application/apply-patch+yaml",
            "metadata: {name: kept\ndata: [",
        )
        .await;
    let s = r.expect(400);
    assert_eq!(s["reason"], "BadRequest");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .starts_with("error decoding YAML: "),
        "{s}"
    );

    // Unknown fields: Strict rejects, Warn (also the default) stores with a warning, Ignore
    // stores silently.
    let mut unknown = pod("strict", &["sleep", "60"]);
    unknown["spec"]["foo"] = json!(1);
    let r = api
        .post(&format!("{PODS}?fieldValidation=Strict"), &unknown)
        .await;
    assert_status(
        &r,
        400,
        "BadRequest",
        "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"spec.foo\"",
    );
    for (query, name, warned) in [
        ("?fieldValidation=Warn", "warned", true),
        ("", "defaulted", true),
        ("?fieldValidation=Ignore", "ignored", false),
    ] {
        let mut body = configmap(name, json!({}));
        body["spec"] = json!({"foo": 1});
        let r = api
            .raw(
                "POST",
                &format!("{CONFIGMAPS}{query}"),
                &[("content-type", "application/json")],
                body.to_string().into_bytes(),
                Auth::Token,
            )
            .await;
        assert_eq!(r.status, 201, "{query}: {}", r.text());
        let warning = r.header("warning");
        if warned {
            assert_eq!(
                warning,
                Some("299 - \"unknown field \\\"spec\\\"\""),
                "{query}"
            );
        } else {
            assert_eq!(warning, None, "{query}");
        }
        assert!(r.json().get("spec").is_none());
    }
    let rv = {
        for name in ["warned", "defaulted", "ignored"] {
            api.delete(&format!("{CONFIGMAPS}/{name}"), None)
                .await
                .expect(200);
        }
        let _ = rv;
        api.list_rv(CONFIGMAPS).await
    };
    // Bad options: 422 on the options kind (`ValidateCreateOptions`, `ValidateDryRun`).
    let r = api
        .post(
            &format!("{CONFIGMAPS}?fieldValidation=Sloppy"),
            &configmap("x", json!({})),
        )
        .await;
    let s = assert_status(
        &r,
        422,
        "Invalid",
        "CreateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"Sloppy\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"",
    );
    assert_eq!(
        s["details"],
        json!({"group": "meta.k8s.io", "kind": "CreateOptions", "causes": [{"reason": "FieldValueNotSupported",
               "message": "Unsupported value: \"Sloppy\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"",
               "field": "fieldValidation"}]})
    );
    let r = api.put(&format!("{kept_path}?dryRun=Some"), &kept).await;
    assert_status(
        &r,
        422,
        "Invalid",
        "UpdateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"Some\"}: supported values: \"All\"",
    );

    // The wrong kind or apiVersion in the body.
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}});
    assert_status(
        &api.post(CONFIGMAPS, &secret).await,
        400,
        "BadRequest",
        "Secret in version \"v1\" cannot be handled as a ConfigMap: converting (v1.Secret) to (core.ConfigMap): unknown conversion",
    );
    let wrong_version =
        json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    assert_status(
        &api.post(CONFIGMAPS, &wrong_version).await,
        400,
        "BadRequest",
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: no kind \"ConfigMap\" is registered for version \"apps/v1\" in scheme \"pkg/api/legacyscheme/scheme.go:30\"",
    );
    let lowercase = json!({"apiVersion": "v1", "kind": "configmap", "metadata": {"name": "x"}});
    assert_status(
        &api.put(&kept_path, &lowercase).await,
        400,
        "BadRequest",
        "configmap in version \"v1\" cannot be handled as a ConfigMap: no kind \"configmap\" is registered for version \"v1\" in scheme \"pkg/api/legacyscheme/scheme.go:30\"",
    );

    // Names that are not DNS subdomains (labels for namespaces): 422 with one cause each.
    let s = assert_status(
        &api.post(CONFIGMAPS, &configmap("Bad_Name", json!({})))
            .await,
        422,
        "Invalid",
        "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    );
    assert_eq!(s["details"]["name"], "Bad_Name");
    assert_eq!(s["details"]["kind"], "ConfigMap");
    assert_eq!(
        s["details"]["causes"],
        json!([{"reason": "FieldValueInvalid", "field": "metadata.name",
                "message": "Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"}])
    );
    let ns_rv = api.list_rv(NAMESPACES).await;
    let s = assert_status(
        &api.post(NAMESPACES, &json!({"metadata": {"name": "A_B"}}))
            .await,
        422,
        "Invalid",
        "Namespace \"A_B\" is invalid: metadata.name: Invalid value: \"A_B\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    );
    assert_eq!(s["details"]["causes"][0]["field"], "metadata.name");
    // A valid subdomain that is not a label (`IsDNS1123Label`).
    assert_status(
        &api.post(NAMESPACES, &json!({"metadata": {"name": "a.b"}}))
            .await,
        422,
        "Invalid",
        "Namespace \"a.b\" is invalid: metadata.name: Invalid value: \"a.b\": must not contain dots",
    );
    assert_eq!(api.list_rv(NAMESPACES).await, ns_rv);
    assert_status(
        &api.post(CONFIGMAPS, &json!({"metadata": {}})).await,
        422,
        "Invalid",
        "ConfigMap \"\" is invalid: metadata.name: Required value: name or generateName is required",
    );

    // Too large: a body over 3 MiB is refused before it is read; a ConfigMap over 1 MiB is
    // invalid.
    let mut huge = configmap("huge", json!({}));
    huge["data"]["k"] = json!("x".repeat(3 * 1024 * 1024 + 1));
    assert_status(
        &api.post(CONFIGMAPS, &huge).await,
        413,
        "RequestEntityTooLarge",
        "Request entity too large: limit is 3145728",
    );
    let mut big = configmap("big", json!({}));
    big["data"]["k"] = json!("x".repeat(1024 * 1024 + 1));
    assert_status(
        &api.post(CONFIGMAPS, &big).await,
        422,
        "Invalid",
        "ConfigMap \"big\" is invalid: []: Too long: may not be more than 1048576 bytes",
    );

    // Selectors and list parameters.
    assert_status(
        &api.get(&format!("{CONFIGMAPS}?labelSelector=a%20b")).await,
        400,
        "BadRequest",
        "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
    );
    assert_status(
        &api.get(&format!("{PODS}?fieldSelector=spec.foo%3Dbar"))
            .await,
        400,
        "BadRequest",
        "field label not supported: spec.foo",
    );
    assert_status(
        &api.get(&format!("{CONFIGMAPS}?fieldSelector=data.k%3Dv"))
            .await,
        400,
        "BadRequest",
        "\"data.k\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
    );
    assert_status(
        &api.get(&format!("{CONFIGMAPS}?fieldSelector=metadata.name"))
            .await,
        400,
        "BadRequest",
        "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
    );
    // An unparsable resourceVersion reaches the storage layer, whose error upstream returns
    // as a 500 without a reason (kubernetes#101350, #139485).
    for path in [
        format!("{CONFIGMAPS}?resourceVersion=abc"),
        format!("{CONFIGMAPS}?watch=true&resourceVersion=abc"),
    ] {
        assert_status(
            &api.get(&path).await,
            500,
            "",
            "resourceVersion: Invalid value: \"abc\": strconv.ParseUint: parsing \"abc\": invalid syntax",
        );
    }
    assert_status(
        &api.get(&format!("{CONFIGMAPS}?watch=true&timeoutSeconds=0.1s"))
            .await,
        400,
        "BadRequest",
        "strconv.ParseInt: parsing \"0.1s\": invalid syntax",
    );

    // Content types: an unknown patch type, an unknown body type.
    assert_status(
        &api.patch(&kept_path, "text/plain", "{}").await,
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml",
    );
    assert_status(
        &api.call("POST", CONFIGMAPS, "text/plain", b"{}".to_vec())
            .await,
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
    );

    // A JSON patch whose `test` fails: upstream's generic 422 (the patch error goes nowhere).
    let s = assert_status(
        &api
            .patch(
                &kept_path,
                "application/json-patch+json",
                r#"[{"op": "test", "path": "/data/k", "value": "other"}, {"op": "replace", "path": "/data/k", "value": "w"}]"#,
            )
            .await,
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
    );
    assert_eq!(s["details"], json!({}));
    // A patch that is not JSON.
    let s = api
        .patch(&kept_path, "application/merge-patch+json", "{not json")
        .await
        .expect(400);
    assert_eq!(s["reason"], "BadRequest");
    // A merge patch adding an unknown field under Strict: 422 on the field `patch`.
    let s = api
        .patch(
            &format!("{kept_path}?fieldValidation=Strict"),
            "application/merge-patch+json",
            r#"{"spec": {"foo": 1}}"#,
        )
        .await
        .expect(422);
    assert_eq!(s["reason"], "Invalid");
    assert_eq!(s["details"]["causes"][0]["field"], "patch");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .starts_with("\"\" is invalid: patch: Invalid value: ")
            && s["message"]
                .as_str()
                .unwrap()
                .ends_with(": strict decoding error: unknown field \"spec\""),
        "{s}"
    );

    // Nothing above was written.
    assert_eq!(api.list_rv(CONFIGMAPS).await, rv);
    assert_eq!(api.get(&kept_path).await.expect(200), kept);
    assert_eq!(api.names(CONFIGMAPS).await, ["kept"]);
    assert!(api.names(PODS).await.is_empty());
    api.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 5. Selectors in lists and watches.
// ---------------------------------------------------------------------------------------------

fn q(selector: &str) -> String {
    podvisor::cli::client::encode(selector)
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists_and_watches() {
    let api = Api::start().await;
    for (name, labels) in [
        ("a", json!({"app": "web", "tier": "fe"})),
        ("b", json!({"app": "web", "tier": "be"})),
        ("c", json!({"app": "db"})),
        ("d", json!({})),
    ] {
        api.create(CONFIGMAPS, &configmap(name, labels)).await;
    }
    for (selector, want) in [
        ("app=web", vec!["a", "b"]),
        ("app==web", vec!["a", "b"]),
        ("app!=web", vec!["c", "d"]),
        ("tier in (fe,be)", vec!["a", "b"]),
        ("tier notin (fe)", vec!["b", "c", "d"]),
        ("tier", vec!["a", "b"]),
        ("!tier", vec!["c", "d"]),
        ("app=web,tier=be", vec!["b"]),
        ("app in (web),!tier", vec![]),
    ] {
        let names = api
            .names(&format!("{CONFIGMAPS}?labelSelector={}", q(selector)))
            .await;
        assert_eq!(names, want, "labelSelector {selector}");
    }
    for (selector, want) in [
        ("metadata.name=a", vec!["a"]),
        ("metadata.name!=a", vec!["b", "c", "d"]),
        ("metadata.namespace=default", vec!["a", "b", "c", "d"]),
        ("metadata.namespace=other", vec![]),
        ("metadata.name=a,metadata.name=b", vec![]),
    ] {
        let names = api
            .names(&format!("{CONFIGMAPS}?fieldSelector={}", q(selector)))
            .await;
        assert_eq!(names, want, "fieldSelector {selector}");
    }
    // Both at once, and across namespaces.
    let names = api
        .names(&format!(
            "/api/v1/configmaps?labelSelector={}&fieldSelector={}",
            q("app=web"),
            q("metadata.namespace=default,metadata.name!=a")
        ))
        .await;
    assert_eq!(names, ["b"]);

    // Pods: phase and node.
    api.create(PODS, &pod("runs", &["sleep", "60"])).await;
    let mut done = pod("done", &["true"]);
    done["spec"]["restartPolicy"] = json!("Never");
    api.create(PODS, &done).await;
    api.node.wait_phase("done", "Succeeded", SECS(10)).await;
    api.node.wait_running("runs", SECS(10)).await;
    for (selector, want) in [
        ("status.phase=Succeeded", vec!["done"]),
        ("status.phase!=Succeeded", vec!["runs"]),
        ("status.phase=Running", vec!["runs"]),
        ("spec.nodeName=test-node", vec!["done", "runs"]),
        ("spec.nodeName=elsewhere", vec![]),
        ("spec.restartPolicy=Never", vec!["done"]),
        (
            "metadata.name=runs,metadata.namespace=default",
            vec!["runs"],
        ),
    ] {
        let names = api
            .names(&format!("{PODS}?fieldSelector={}", q(selector)))
            .await;
        assert_eq!(names, want, "fieldSelector {selector}");
    }

    // Events: kubectl describe's selector.
    let uid = api.get(&format!("{PODS}/runs")).await.expect(200)["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let selector = format!(
        "involvedObject.name=runs,involvedObject.namespace=default,involvedObject.uid={uid}"
    );
    let events = api
        .get(&format!("{EVENTS}?fieldSelector={}", q(&selector)))
        .await
        .expect(200);
    let reasons: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&"Scheduled") && reasons.contains(&"Started"),
        "{reasons:?}"
    );
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["involvedObject"]["name"] == "runs"),
        "{events}"
    );
    let selector = "involvedObject.kind=Pod,involvedObject.name=done,reason=Started,type=Normal";
    let started = api
        .get(&format!("{EVENTS}?fieldSelector={}", q(selector)))
        .await
        .expect(200);
    assert_eq!(started["items"].as_array().unwrap().len(), 1, "{started}");

    // A watch with a label selector: objects entering the selection are ADDED, objects
    // leaving it are DELETED with their previous content (the cacher compares the old and
    // new object), others unseen.
    let rv = api.list_rv(CONFIGMAPS).await;
    let mut watch = api
        .watch(&format!(
            "{CONFIGMAPS}?watch=true&resourceVersion={rv}&labelSelector={}",
            q("app=web")
        ))
        .await;
    let mut named = api
        .watch(&format!(
            "{CONFIGMAPS}?watch=true&resourceVersion={rv}&fieldSelector={}",
            q("metadata.name=c")
        ))
        .await;
    api.create(CONFIGMAPS, &configmap("e", json!({"app": "web"})))
        .await;
    api.create(CONFIGMAPS, &configmap("f", json!({"app": "db"})))
        .await;
    api.patch(
        &format!("{CONFIGMAPS}/c"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"app":"web"}}}"#,
    )
    .await
    .expect(200);
    api.patch(
        &format!("{CONFIGMAPS}/a"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"app":"db"}}}"#,
    )
    .await
    .expect(200);
    api.delete(&format!("{CONFIGMAPS}/e"), None)
        .await
        .expect(200);
    let mut seen = Vec::new();
    for _ in 0..4 {
        let e = watch.change(SECS(5)).await;
        seen.push(format!(
            "{} {} {}",
            e["type"].as_str().unwrap(),
            name_of(&e["object"]),
            e["object"]["metadata"]["labels"]["app"].as_str().unwrap()
        ));
    }
    assert_eq!(
        seen,
        [
            "ADDED e web",
            "ADDED c web",
            "DELETED a web",
            "DELETED e web"
        ]
    );
    let e = named.change(SECS(5)).await;
    assert_eq!(
        (e["type"].as_str(), name_of(&e["object"])),
        (Some("MODIFIED"), "c")
    );
    // Nothing else arrives for either.
    api.create(CONFIGMAPS, &configmap("g", json!({"app": "db"})))
        .await;
    let mut quiet = api
        .watch(&format!(
            "{CONFIGMAPS}?watch=true&resourceVersion={}&labelSelector={}&timeoutSeconds=1",
            api.list_rv(CONFIGMAPS).await,
            q("app=web")
        ))
        .await;
    assert!(quiet.ends_within(SECS(5)).await);
    assert!(quiet.line(SECS(1)).await.is_none());
    api.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 6. Tables.
// ---------------------------------------------------------------------------------------------

fn column_names(table: &Value) -> Vec<(String, i64)> {
    table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["priority"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn tables_for_kubectl_get_with_include_object() {
    let api = Api::start().await;
    let mut web = pod("web", &["/bin/sleep", "60"]);
    web["metadata"]["labels"] = json!({"app": "web"});
    api.create(PODS, &web).await;
    api.create(CONFIGMAPS, &configmap("settings", json!({})))
        .await;
    api.node.wait_running("web", SECS(10)).await;

    let accept = [("accept", TABLE_ACCEPT)];
    let r = api.raw("GET", PODS, &accept, Vec::new(), Auth::Token).await;
    assert_eq!(r.header("content-type"), Some("application/json"));
    let table = r.expect(200);
    assert_eq!(
        (table["kind"].as_str(), table["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    assert_eq!(
        table["metadata"]["resourceVersion"],
        json!(api.list_rv(PODS).await)
    );
    let columns: Vec<(&str, i64)> = vec![
        ("Name", 0),
        ("Ready", 0),
        ("Status", 0),
        ("Restarts", 0),
        ("Age", 0),
        ("IP", 1),
        ("Node", 1),
        ("Nominated Node", 1),
        ("Readiness Gates", 1),
    ];
    assert_eq!(
        column_names(&table),
        columns
            .iter()
            .map(|(n, p)| ((*n).to_owned(), *p))
            .collect::<Vec<_>>()
    );
    assert_eq!(table["columnDefinitions"][0]["format"], "name");
    let row = &table["rows"][0];
    let cells = row["cells"].as_array().unwrap();
    assert_eq!(
        &cells[..4],
        &[json!("web"), json!("1/1"), json!("Running"), json!("0")]
    );
    assert_eq!(cells[6], "test-node");
    assert_eq!(
        (cells[7].as_str(), cells[8].as_str()),
        (Some("<none>"), Some("<none>"))
    );
    assert!(cells[5].as_str().unwrap().starts_with("127."), "{cells:?}");
    assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(row["object"]["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(row["object"]["metadata"]["labels"]["app"], "web");
    assert!(row["object"].get("spec").is_none());

    for (include, kind) in [
        ("Object", json!("Pod")),
        ("None", Value::Null),
        ("Metadata", json!("PartialObjectMetadata")),
    ] {
        let r = api
            .raw(
                "GET",
                &format!("{PODS}?includeObject={include}"),
                &accept,
                Vec::new(),
                Auth::Token,
            )
            .await;
        let table = r.expect(200);
        let object = &table["rows"][0]["object"];
        assert_eq!(
            if object.is_null() {
                Value::Null
            } else {
                object["kind"].clone()
            },
            kind,
            "{include}"
        );
    }
    let r = api
        .raw(
            "GET",
            &format!("{PODS}?includeObject=All"),
            &accept,
            Vec::new(),
            Auth::Token,
        )
        .await;
    assert_status(
        &r,
        400,
        "BadRequest",
        "Unable to convert to Table as requested: includeObject: Unsupported value: \"All\": supported values: \"Metadata\", \"None\", \"Object\", \"\"",
    );

    // One object: a one-row Table with the object's resourceVersion.
    let one = api
        .raw(
            "GET",
            &format!("{PODS}/web"),
            &accept,
            Vec::new(),
            Auth::Token,
        )
        .await
        .expect(200);
    let pod_now = api.get(&format!("{PODS}/web")).await.expect(200);
    assert_eq!(one["rows"].as_array().unwrap().len(), 1);
    assert_eq!(
        one["metadata"]["resourceVersion"],
        pod_now["metadata"]["resourceVersion"]
    );

    // Other kinds have their own columns.
    let cms = api
        .raw("GET", CONFIGMAPS, &accept, Vec::new(), Auth::Token)
        .await
        .expect(200);
    assert_eq!(
        column_names(&cms),
        [
            ("Name".to_owned(), 0),
            ("Data".to_owned(), 0),
            ("Age".to_owned(), 0)
        ]
    );
    assert_eq!(cms["rows"][0]["cells"][0], "settings");
    assert_eq!(cms["rows"][0]["cells"][1], 1);
    let nss = api
        .raw("GET", NAMESPACES, &accept, Vec::new(), Auth::Token)
        .await
        .expect(200);
    assert_eq!(
        column_names(&nss),
        [
            ("Name".to_owned(), 0),
            ("Status".to_owned(), 0),
            ("Age".to_owned(), 0)
        ]
    );
    assert!(
        nss["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["cells"][0] == "default" && r["cells"][1] == "Active")
    );
    let events = api
        .raw("GET", EVENTS, &accept, Vec::new(), Auth::Token)
        .await
        .expect(200);
    let shown: Vec<String> = column_names(&events)
        .into_iter()
        .filter(|c| c.1 == 0)
        .map(|c| c.0)
        .collect();
    assert_eq!(shown, ["Last Seen", "Type", "Reason", "Object", "Message"]);

    // `kubectl get -w`: Table-wrapped events; the column definitions come with the first only.
    let mut watch = api
        .stream(
            &format!("{CONFIGMAPS}?watch=true&resourceVersion=0"),
            TABLE_ACCEPT,
        )
        .await;
    let first = watch.change(SECS(5)).await;
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["kind"], "Table");
    assert_eq!(column_names(&first["object"]).len(), 3);
    api.create(CONFIGMAPS, &configmap("second", json!({})))
        .await;
    let next = watch.change(SECS(5)).await;
    assert_eq!(next["object"]["kind"], "Table");
    assert!(next["object"]["columnDefinitions"].is_null(), "{next}");
    assert_eq!(next["object"]["rows"][0]["cells"][0], "second");
    api.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 7. Watch semantics.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn watch_resumes_in_order_times_out_bookmarks_and_expires() {
    let api = Api::start().await;
    api.create(CONFIGMAPS, &configmap("old", json!({}))).await;
    let rv: u64 = api.list_rv(CONFIGMAPS).await.parse().unwrap();
    let mut watch = api
        .watch(&format!("{CONFIGMAPS}?watch=true&resourceVersion={rv}"))
        .await;
    assert_eq!(watch.content_type, "application/json");
    // Changes made after the list, in order, with their resourceVersions and no gaps.
    let created = api.create(CONFIGMAPS, &configmap("x", json!({}))).await;
    let updated = api
        .patch(
            &format!("{CONFIGMAPS}/x"),
            "application/merge-patch+json",
            r#"{"data":{"k":"2"}}"#,
        )
        .await
        .expect(200);
    api.delete(&format!("{CONFIGMAPS}/x"), None)
        .await
        .expect(200);
    let mut events = Vec::new();
    for _ in 0..3 {
        events.push(watch.change(SECS(5)).await);
    }
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ADDED", "MODIFIED", "DELETED"]);
    assert_eq!(events[0]["object"], created);
    assert_eq!(events[1]["object"], updated);
    let rvs: Vec<u64> = events
        .iter()
        .map(|e| rv_of(&e["object"]).parse().unwrap())
        .collect();
    assert_eq!(
        rvs,
        [rv + 1, rv + 2, rv + 3],
        "one resourceVersion per write, no gaps"
    );
    assert_eq!(
        events[2]["object"]["data"]["k"], "2",
        "DELETED carries the last state"
    );

    // A watch from an older resourceVersion replays what happened since; `0` (and no
    // resourceVersion) start with a synthetic ADDED per existing object.
    let mut replay = api
        .watch(&format!(
            "{CONFIGMAPS}?watch=true&resourceVersion={}",
            rv + 1
        ))
        .await;
    let types = [replay.change(SECS(5)).await, replay.change(SECS(5)).await];
    assert_eq!(
        types.map(|e| e["type"].as_str().unwrap().to_owned()),
        ["MODIFIED", "DELETED"]
    );
    for query in ["resourceVersion=0", "resourceVersion="] {
        let mut fresh = api
            .watch(&format!("{CONFIGMAPS}?watch=true&{query}&timeoutSeconds=1"))
            .await;
        let e = fresh.change(SECS(5)).await;
        assert_eq!(
            (e["type"].as_str(), name_of(&e["object"])),
            (Some("ADDED"), "old"),
            "{query}"
        );
        // `timeoutSeconds` ends the stream.
        let t0 = Instant::now();
        assert!(fresh.ends_within(SECS(5)).await, "{query}");
        assert!(t0.elapsed() < SECS(3));
    }

    // Bookmarks: with `allowWatchBookmarks`, one arrives 2 s before the timeout (the cacher's
    // pre-timeout bookmark), carrying the current resourceVersion and nothing else.
    let current = api.list_rv(CONFIGMAPS).await;
    let mut bookmarked = api
        .watch(&format!("{CONFIGMAPS}?watch=true&resourceVersion={current}&allowWatchBookmarks=true&timeoutSeconds=3"))
        .await;
    let t0 = Instant::now();
    let b = bookmarked.event(SECS(5)).await.expect("a bookmark");
    assert_eq!(b["type"], "BOOKMARK");
    assert_eq!(b["object"]["kind"], "ConfigMap");
    assert_eq!(b["object"]["metadata"]["resourceVersion"], json!(current));
    assert!(
        t0.elapsed() < Duration::from_millis(2500),
        "bookmark after {:?}",
        t0.elapsed()
    );
    assert!(bookmarked.ends_within(SECS(5)).await);

    // Streaming lists (WatchList, beta and on in 1.32): initial ADDED events, then a bookmark
    // marked `k8s.io/initial-events-end`, then changes.
    let mut list = api
        .watch(&format!("{CONFIGMAPS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"))
        .await;
    let e = list.event(SECS(5)).await.unwrap();
    assert_eq!(
        (e["type"].as_str(), name_of(&e["object"])),
        (Some("ADDED"), "old")
    );
    let e = list.event(SECS(5)).await.unwrap();
    assert_eq!(e["type"], "BOOKMARK");
    assert_eq!(
        e["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(
        e["object"]["metadata"]["resourceVersion"],
        json!(api.list_rv(CONFIGMAPS).await)
    );
    api.create(CONFIGMAPS, &configmap("y", json!({}))).await;
    let e = list.change(SECS(5)).await;
    assert_eq!(
        (e["type"].as_str(), name_of(&e["object"])),
        (Some("ADDED"), "y")
    );
    let s = assert_status(
        &api.get(&format!("{CONFIGMAPS}?watch=true&sendInitialEvents=true"))
            .await,
        422,
        "Invalid",
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
    );
    assert_eq!(s["details"]["kind"], "ListOptions");
    assert_eq!(s["details"]["group"], "meta.k8s.io");
    assert_status(
        &api.get(&format!("{CONFIGMAPS}?sendInitialEvents=true"))
            .await,
        422,
        "Invalid",
        "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list",
    );
    assert_status(
        &api.get(&format!(
            "{CONFIGMAPS}?watch=true&resourceVersionMatch=NotOlderThan"
        ))
        .await,
        422,
        "Invalid",
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
    );

    // Past the history (20,000 changes): 200 and one ERROR event with a 410 Expired Status,
    // then the end, as the watch cache answers.
    use podvisor::store::{Backend, Part, resources};
    let mut object = Value::clone(
        &api.node
            .store
            .get(&resources::CONFIG_MAPS, "default", "old")
            .unwrap(),
    );
    for i in 0..20_001 {
        object["data"]["k"] = json!(i.to_string());
        object["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("resourceVersion");
        api.node
            .store
            .update(&resources::CONFIG_MAPS, object.clone(), Part::Main)
            .unwrap();
    }
    let now: u64 = api.node.store.resource_version();
    let mut expired = api
        .watch(&format!("{CONFIGMAPS}?watch=true&resourceVersion={rv}"))
        .await;
    let e = expired.event(SECS(5)).await.unwrap();
    assert_eq!(e["type"], "ERROR");
    assert_eq!(
        e["object"],
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": format!("too old resource version: {rv} ({})", now - 20_000),
               "reason": "Expired", "code": 410})
    );
    assert!(expired.ends_within(SECS(5)).await);
    api.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 8. Deletion: graceful pods, preconditions, collections, namespaces.
// ---------------------------------------------------------------------------------------------

/// Starts a testapp pod that ignores SIGTERM and returns its main pid.
async fn run_stubborn(api: &Api, name: &str, grace: i64) -> i32 {
    api.create(PODS, &stubborn_pod(&api.node, name, grace))
        .await;
    api.node.wait_running(name, SECS(10)).await;
    let started = api
        .node
        .wait_record(SECS(10), "app started", |r| r.is(name, "started"))
        .await;
    pid_of(&started)
}

fn parse_time(v: &Value) -> jiff::Timestamp {
    v.as_str().unwrap().parse().unwrap()
}

/// `DELETE` with a grace period (DeleteOptions body): 200 with the pod carrying
/// `deletionTimestamp` (now + grace) and `deletionGracePeriodSeconds`; a watch sees MODIFIED,
/// then DELETED only once the process is dead (it ignores SIGTERM, so at the grace).
#[tokio::test]
async fn graceful_pod_delete_ends_with_deleted_after_the_process_died() {
    let api = Api::start().await;
    let pid = run_stubborn(&api, "slow", 30).await;
    let death = death_watch(pid);
    let rv = api.list_rv(PODS).await;
    let mut watch = api
        .watch(&format!(
            "{PODS}?watch=true&resourceVersion={rv}&fieldSelector={}",
            q("metadata.name=slow")
        ))
        .await;
    let t0 = now_ns();
    let r = api
        .delete(
            &format!("{PODS}/slow"),
            Some(&json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 2})),
        )
        .await;
    let deleted = r.expect(200);
    assert_eq!(deleted["kind"], "Pod");
    assert_eq!(deleted["metadata"]["deletionGracePeriodSeconds"], 2);
    let deadline = parse_time(&deleted["metadata"]["deletionTimestamp"]);
    let expected = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(2);
    assert!(
        (deadline - expected).get_seconds().abs() <= 1,
        "deletionTimestamp {deadline} vs {expected}"
    );
    assert_eq!(
        deleted["metadata"]["generation"], 2,
        "BeforeDelete bumps the generation"
    );

    // A longer grace on a terminating pod changes nothing; the object comes back as it is.
    let again = api
        .delete(
            &format!("{PODS}/slow"),
            Some(&json!({"gracePeriodSeconds": 10})),
        )
        .await
        .expect(200);
    assert_eq!(
        again["metadata"]["deletionTimestamp"],
        deleted["metadata"]["deletionTimestamp"]
    );
    assert_eq!(again["metadata"]["deletionGracePeriodSeconds"], 2);

    let first = watch.change(SECS(5)).await;
    assert_eq!(first["type"], "MODIFIED");
    assert!(first["object"]["metadata"]["deletionTimestamp"].is_string());
    let last = loop {
        let e = watch.change(SECS(10)).await;
        match e["type"].as_str().unwrap() {
            "MODIFIED" => continue,
            "DELETED" => break e,
            other => panic!("unexpected {other}: {e}"),
        }
    };
    let gone = now_ns();
    assert!(
        !alive(pid),
        "DELETED arrived while the container process still ran"
    );
    let died = death.await.unwrap();
    assert!(died <= gone);
    let secs = (died - t0) as f64 / 1e9;
    assert!(
        (1.9..4.0).contains(&secs),
        "SIGKILL {secs:.2}s after the delete, grace 2 s"
    );
    let status = &last["object"]["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(status["exitCode"], 137, "{last}");
    assert_status(
        &api.get(&format!("{PODS}/slow")).await,
        404,
        "NotFound",
        "pods \"slow\" not found",
    );
    api.stop().await;
}

/// `gracePeriodSeconds=0` (kubectl's `--force`): the object goes at once (MODIFIED with the
/// deletion fields, then DELETED, as `updateForGracefulDeletionAndFinalizers` writes), while
/// the node still kills the process.
#[tokio::test]
async fn force_delete_removes_the_pod_at_once_and_the_node_still_kills_it() {
    let api = Api::start().await;
    let pid = run_stubborn(&api, "forced", 30).await;
    let death = death_watch(pid);
    let rv = api.list_rv(PODS).await;
    let mut watch = api
        .watch(&format!(
            "{PODS}?watch=true&resourceVersion={rv}&fieldSelector={}",
            q("metadata.name=forced")
        ))
        .await;
    let r = api
        .delete(&format!("{PODS}/forced?gracePeriodSeconds=0"), None)
        .await;
    let deleted = r.expect(200);
    assert_eq!(deleted["metadata"]["deletionGracePeriodSeconds"], 0);
    assert!(deleted["metadata"]["deletionTimestamp"].is_string());
    assert_status(
        &api.get(&format!("{PODS}/forced")).await,
        404,
        "NotFound",
        "pods \"forced\" not found",
    );
    let e = watch.change(SECS(5)).await;
    assert_eq!(e["type"], "MODIFIED");
    assert_eq!(e["object"]["metadata"]["deletionGracePeriodSeconds"], 0);
    let e = watch.change(SECS(5)).await;
    assert_eq!(e["type"], "DELETED");
    // The process was still running when the object went; the node kills it within its
    // minimum grace (the stop signal is ignored: SIGKILL after 2 s).
    let died = tokio::time::timeout(SECS(10), death)
        .await
        .expect("the node kills the process")
        .unwrap();
    assert!(died > 0);
    api.stop().await;
}

#[tokio::test]
async fn delete_preconditions_collections_and_namespaces() {
    let api = Api::start().await;
    // Preconditions: checked before anything happens (`rest.BeforeDelete`), named by kind.
    let cm = api
        .create(CONFIGMAPS, &configmap("guarded", json!({})))
        .await;
    let uid = cm["metadata"]["uid"].as_str().unwrap();
    let s = assert_status(
        &api.delete(
            &format!("{CONFIGMAPS}/guarded"),
            Some(&json!({"preconditions": {"uid": "not-it"}})),
        )
        .await,
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on ConfigMap \"guarded\": the UID in the precondition (not-it) does not match the UID in record ({uid}). The object might have been deleted and then recreated"
        ),
    );
    assert_eq!(
        s["details"],
        json!({"name": "guarded", "kind": "ConfigMap"})
    );
    assert_status(
        &api.delete(
            &format!("{CONFIGMAPS}/guarded"),
            Some(&json!({"preconditions": {"resourceVersion": "1"}})),
        )
        .await,
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on ConfigMap \"guarded\": the ResourceVersion in the precondition (1) does not match the ResourceVersion in record ({}). The object might have been modified",
            rv_of(&cm)
        ),
    );
    let lease = api
        .create(LEASES, &json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {}}))
        .await;
    let s = assert_status(
        &api.delete(
            &format!("{LEASES}/l"),
            Some(&json!({"preconditions": {"uid": "x"}})),
        )
        .await,
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on Lease.coordination.k8s.io \"l\": the UID in the precondition (x) does not match the UID in record ({}). The object might have been deleted and then recreated",
            lease["metadata"]["uid"].as_str().unwrap()
        ),
    );
    assert_eq!(
        s["details"],
        json!({"name": "l", "group": "coordination.k8s.io", "kind": "Lease"})
    );
    api.create(PODS, &pod("p", &["/bin/sleep", "60"])).await;
    // The node writes the pod's status while it starts: a write between the GET and the DELETE
    // names a newer record, so the pair is tried again until they agree (bounded).
    let deadline = Instant::now() + Duration::from_secs(20);
    let s = loop {
        let p = api.get(&format!("{PODS}/p")).await.expect(200);
        let r = api
            .delete(
                &format!("{PODS}/p"),
                Some(&json!({"preconditions": {"resourceVersion": "1"}})),
            )
            .await;
        let expected = format!(
            "Operation cannot be fulfilled on Pod \"p\": the ResourceVersion in the precondition (1) does not match the ResourceVersion in record ({}). The object might have been modified",
            rv_of(&p)
        );
        if r.json()["message"] == expected.as_str() || Instant::now() > deadline {
            break assert_status(&r, 409, "Conflict", &expected);
        }
    };
    assert_eq!(s["details"]["kind"], "Pod");
    assert!(
        api.get(&format!("{PODS}/p")).await.expect(200)["metadata"]
            .get("deletionTimestamp")
            .is_none()
    );
    let matching = json!({"preconditions": {"uid": uid, "resourceVersion": rv_of(&cm)}});
    api.delete(&format!("{CONFIGMAPS}/guarded"), Some(&matching))
        .await
        .expect(200);

    // deletecollection with a label selector: the deleted objects, as a list.
    for (name, app) in [("a", "web"), ("b", "web"), ("c", "db")] {
        api.create(CONFIGMAPS, &configmap(name, json!({"app": app})))
            .await;
    }
    let gone = api
        .delete(
            &format!("{CONFIGMAPS}?labelSelector={}", q("app=web")),
            None,
        )
        .await
        .expect(200);
    assert_eq!(gone["kind"], "ConfigMapList");
    let mut names: Vec<&str> = gone["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(name_of)
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(api.names(CONFIGMAPS).await, ["c"]);
    // ... and pods, gracefully, with a field selector.
    let gone = api
        .delete(
            &format!(
                "{PODS}?fieldSelector={}&gracePeriodSeconds=1",
                q("metadata.name=p")
            ),
            None,
        )
        .await
        .expect(200);
    assert_eq!(gone["kind"], "PodList");
    assert_eq!(
        gone["items"][0]["metadata"]["deletionGracePeriodSeconds"],
        1
    );
    api.node.wait_gone("p", SECS(10)).await;

    // The namespaces the API server protects.
    let s = assert_status(
        &api.delete(&format!("{NAMESPACES}/default"), None).await,
        403,
        "Forbidden",
        "namespaces \"default\" is forbidden: this namespace may not be deleted",
    );
    assert_eq!(
        s["details"],
        json!({"name": "default", "kind": "namespaces"})
    );

    // A namespace goes with everything in it: Terminating at once, its content deleted (pods
    // gracefully), no new content, then the namespace itself.
    api.create(NAMESPACES, &json!({"metadata": {"name": "team"}}))
        .await;
    let team_cms = "/api/v1/namespaces/team/configmaps";
    let team_pods = "/api/v1/namespaces/team/pods";
    api.create(team_cms, &configmap("cfg", json!({}))).await;
    let mut stubborn = stubborn_pod(&api.node, "worker", 1);
    stubborn["metadata"]["namespace"] = json!("team");
    api.create(team_pods, &stubborn).await;
    let worker_pid = pid_of(
        &api.node
            .wait_record(SECS(10), "worker started", |r| r.is("worker", "started"))
            .await,
    );
    let ns = api
        .delete(&format!("{NAMESPACES}/team"), None)
        .await
        .expect(200);
    assert_eq!(ns["kind"], "Namespace");
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert!(ns["metadata"]["deletionTimestamp"].is_string());
    let s = assert_status(
        &api.post(team_cms, &configmap("late", json!({}))).await,
        403,
        "Forbidden",
        "configmaps \"late\" is forbidden: unable to create new content in namespace team because it is being terminated",
    );
    assert_eq!(s["details"], json!({"name": "late", "kind": "configmaps"}));
    let deadline = Instant::now() + SECS(15);
    while api.get(&format!("{NAMESPACES}/team")).await.status != 404 {
        assert!(Instant::now() < deadline, "namespace team still there");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !alive(worker_pid),
        "the namespace went before its pod's process"
    );
    assert!(api.names(team_cms).await.is_empty());
    assert!(api.names(team_pods).await.is_empty());
    assert_status(
        &api.post(team_cms, &configmap("after", json!({}))).await,
        404,
        "NotFound",
        "namespaces \"team\" not found",
    );
    api.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 9. The pod `log` subresource.
// ---------------------------------------------------------------------------------------------

async fn log(api: &Api, path: &str) -> Resp {
    api.raw("GET", path, &[], Vec::new(), Auth::Token).await
}

#[tokio::test]
async fn pod_logs_with_container_tail_timestamps_limits_previous_and_follow() {
    let api = Api::start().await;
    let mut talk = pod("talk", &[]);
    talk["spec"]["containers"] = json!([
        {"name": "one", "image": "podvisor/testapp",
         "command": ["/bin/sh", "-c", "echo a1; echo a2; echo a3; exec /bin/sleep 60"]},
        {"name": "two", "image": "podvisor/testapp",
         "command": ["/bin/sh", "-c", "echo b1; exec /bin/sleep 60"]},
    ]);
    api.create(PODS, &talk).await;
    let marker = api.node.dir.path().join("once");
    let script = format!(
        "if [ -e {m} ]; then echo second; exec /bin/sleep 60; else touch {m}; echo first; exit 3; fi",
        m = marker.display()
    );
    api.create(PODS, &pod("twice", &["/bin/sh", "-c", &script]))
        .await;
    api.create(
        PODS,
        &pod(
            "ticker",
            &[
                "/bin/sh",
                "-c",
                "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.2; done",
            ],
        ),
    )
    .await;
    api.node.wait_running("talk", SECS(10)).await;
    let base = format!("{PODS}/talk/log");
    // Wait for the output (the processes print right after they start).
    let deadline = Instant::now() + SECS(10);
    while log(&api, &format!("{base}?container=one")).await.text() != "a1\na2\na3\n" {
        assert!(Instant::now() < deadline, "no log for talk/one");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Which container: required when there are several (`validateContainer`).
    assert_status(
        &log(&api, &base).await,
        400,
        "BadRequest",
        "a container name must be specified for pod talk, choose one of: [one two]",
    );
    assert_status(
        &log(&api, &format!("{base}?container=three")).await,
        400,
        "BadRequest",
        "container three is not valid for pod talk",
    );
    let r = log(&api, &format!("{base}?container=one")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(
        log(&api, &format!("{base}?container=one&tailLines=1"))
            .await
            .text(),
        "a3\n"
    );
    assert_eq!(
        log(&api, &format!("{base}?container=one&tailLines=0"))
            .await
            .text(),
        ""
    );
    assert_eq!(
        log(&api, &format!("{base}?container=one&limitBytes=4"))
            .await
            .text(),
        "a1\na"
    );
    assert_eq!(
        log(&api, &format!("{base}?container=one&sinceSeconds=3600"))
            .await
            .text(),
        "a1\na2\na3\n"
    );
    assert_eq!(
        log(
            &api,
            &format!("{base}?container=one&sinceTime=2999-01-01T00:00:00Z")
        )
        .await
        .text(),
        ""
    );
    let stamped = log(&api, &format!("{base}?container=one&timestamps=true"))
        .await
        .text();
    let lines: Vec<&str> = stamped.lines().collect();
    assert_eq!(lines.len(), 3, "{stamped}");
    for (line, text) in lines.iter().zip(["a1", "a2", "a3"]) {
        let (time, rest) = line.split_once(' ').unwrap();
        assert_eq!(rest, text);
        let t: jiff::Timestamp = time.parse().unwrap_or_else(|e| panic!("{time}: {e}"));
        assert!((jiff::Timestamp::now() - t).get_seconds().abs() < 60);
    }
    assert_eq!(
        log(&api, &format!("{base}?container=two")).await.text(),
        "b1\n"
    );
    // No earlier instance yet.
    assert_status(
        &log(&api, &format!("{base}?container=one&previous=true")).await,
        400,
        "BadRequest",
        "previous terminated container \"one\" in pod \"talk\" not found",
    );
    assert_status(
        &log(&api, &format!("{PODS}/nope/log")).await,
        404,
        "NotFound",
        "pods \"nope\" not found",
    );

    // After a restart: the current instance, and `previous` for the one before.
    api.node
        .wait_pod("twice", SECS(10), "restarted and running", |p| {
            restart_count(p, "app") == 1
                && container_status(p, "app")
                    .state
                    .as_ref()
                    .is_some_and(|s| s.running.is_some())
        })
        .await;
    let deadline = Instant::now() + SECS(10);
    while log(&api, &format!("{PODS}/twice/log")).await.text() != "second\n" {
        assert!(Instant::now() < deadline, "no log for the second instance");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        log(&api, &format!("{PODS}/twice/log?previous=true"))
            .await
            .text(),
        "first\n"
    );

    // follow (from the last line on): lines arrive as they are written.
    let mut follow = api
        .stream(&format!("{PODS}/ticker/log?follow=true&tailLines=1"), "*/*")
        .await;
    assert!(
        follow.content_type.starts_with("text/plain"),
        "{}",
        follow.content_type
    );
    let first = follow.line(SECS(10)).await.unwrap();
    assert!(first.starts_with("tick"), "{first}");
    let n: u64 = first.trim_start_matches("tick").parse().unwrap();
    let t0 = Instant::now();
    for i in 1..=5 {
        assert_eq!(
            follow.line(SECS(5)).await.unwrap(),
            format!("tick{}", n + i)
        );
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(500),
        "lines came too fast: not followed live"
    );
    drop(follow);
    api.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 10. Patches and server-side apply.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn patches_and_server_side_apply() {
    let api = Api::start().await;
    let mut web = pod("web", &["/bin/sleep", "60"]);
    web["spec"]["containers"][0]["env"] = json!([{"name": "A", "value": "1"}]);
    api.create(PODS, &web).await;
    let web_path = format!("{PODS}/web");

    // Strategic merge: labels merge; containers merge by name (command and env stay; a pod
    // update may change only the image).
    let patched = api
        .patch(
            &format!("{web_path}?fieldManager=kubectl-set"),
            "application/strategic-merge-patch+json",
            r#"{"metadata":{"labels":{"tier":"fe"}},"spec":{"containers":[{"name":"app","image":"podvisor/testapp:v2"}]}}"#,
        )
        .await
        .expect(200);
    assert_eq!(patched["metadata"]["labels"], json!({"tier": "fe"}));
    let c = &patched["spec"]["containers"];
    assert_eq!(c.as_array().unwrap().len(), 1);
    assert_eq!(c[0]["image"], "podvisor/testapp:v2");
    assert_eq!(c[0]["command"], json!(["/bin/sleep", "60"]));
    assert_eq!(c[0]["env"], json!([{"name": "A", "value": "1"}]));
    assert_eq!(patched["metadata"]["generation"], 2);
    let managers: Vec<&str> = patched["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert!(managers.contains(&"kubectl-set"), "{managers:?}");
    // A JSON merge patch replaces lists and deletes with null.
    let merged = api
        .patch(
            &web_path,
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"tier":null,"app":"web"}}}"#,
        )
        .await
        .expect(200);
    assert_eq!(merged["metadata"]["labels"], json!({"app": "web"}));
    // A JSON patch with a passing test.
    let jp = api
        .patch(
            &web_path,
            "application/json-patch+json",
            r#"[{"op":"test","path":"/metadata/labels/app","value":"web"},{"op":"add","path":"/metadata/annotations","value":{"note":"x"}}]"#,
        )
        .await
        .expect(200);
    assert_eq!(jp["metadata"]["annotations"]["note"], "x");
    // A resourceVersion in the patch is a precondition.
    let stale = format!(
        r#"{{"metadata":{{"resourceVersion":"{}","labels":{{"x":"y"}}}}}}"#,
        rv_of(&patched)
    );
    assert_status(
        &api.patch(&web_path, "application/merge-patch+json", &stale)
            .await,
        409,
        "Conflict",
        "Operation cannot be fulfilled on pods \"web\": the object has been modified; please apply your changes to the latest version and try again",
    );
    // Patching what is not there.
    assert_status(
        &api.patch(
            &format!("{PODS}/nope"),
            "application/strategic-merge-patch+json",
            "{}",
        )
        .await,
        404,
        "NotFound",
        "pods \"nope\" not found",
    );

    // Server-side apply: creates, re-applies without a write, conflicts between managers,
    // force takes ownership.
    let apply = |manager: &str, value: &str, force: bool| {
        let path = format!(
            "{CONFIGMAPS}/applied?fieldManager={manager}{}",
            if force { "&force=true" } else { "" }
        );
        let body = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  k: {value}\n"
        );
        (path, body)
    };
    let (path, body) = apply("alice", "one", false);
    let created = api
        .patch(&path, "application/apply-patch+yaml", &body)
        .await
        .expect(201);
    let entry = &created["metadata"]["managedFields"][0];
    assert_eq!(entry["manager"], "alice");
    assert_eq!(entry["operation"], "Apply");
    assert_eq!(entry["apiVersion"], "v1");
    assert_eq!(entry["fieldsType"], "FieldsV1");
    assert_eq!(entry["fieldsV1"], json!({"f:data": {"f:k": {}}}));
    let again = api
        .patch(&path, "application/apply-patch+yaml", &body)
        .await
        .expect(200);
    assert_eq!(
        rv_of(&again),
        rv_of(&created),
        "an unchanged apply writes nothing"
    );
    let (path, body) = apply("bob", "two", false);
    let s = assert_status(
        &api.patch(&path, "application/apply-patch+yaml", &body)
            .await,
        409,
        "Conflict",
        "Apply failed with 1 conflict: conflict with \"alice\": .data.k",
    );
    assert_eq!(
        s["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"alice\"", "field": ".data.k"}])
    );
    assert_eq!(
        api.get(&format!("{CONFIGMAPS}/applied")).await.expect(200),
        again
    );
    let (path, body) = apply("bob", "two", true);
    let forced = api
        .patch(&path, "application/apply-patch+yaml", &body)
        .await
        .expect(200);
    assert_eq!(forced["data"]["k"], "two");
    let owners: Vec<(&str, &Value)> = forced["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["manager"].as_str().unwrap(), &m["fieldsV1"]))
        .collect();
    assert_eq!(
        owners,
        [("bob", &json!({"f:data": {"f:k": {}}}))],
        "alice lost .data.k and with it her entry"
    );
    // kubectl's move from client-side to server-side apply: it rewrites managedFields so that
    // its Apply entry owns the maps as a whole, then applies; what it still applies stays.
    api.create(CONFIGMAPS, &configmap("migrated", json!({"x": "z"})))
        .await;
    let managed = json!([{"op": "replace", "path": "/metadata/managedFields", "value": [
        {"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": "2026-01-01T00:00:00Z",
         "fieldsType": "FieldsV1",
         "fieldsV1": {"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}}}]}]);
    api.patch(
        &format!("{CONFIGMAPS}/migrated"),
        "application/json-patch+json",
        &managed.to_string(),
    )
    .await
    .expect(200);
    let migrated = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: migrated\n  labels: {x: z}\ndata:\n  k: v\n";
    let kept = api
        .patch(
            &format!("{CONFIGMAPS}/migrated?fieldManager=kubectl"),
            "application/apply-patch+yaml",
            migrated,
        )
        .await
        .expect(200);
    assert_eq!(kept["data"], json!({"k": "v"}));
    assert_eq!(kept["metadata"]["labels"], json!({"x": "z"}));

    // Apply needs a field manager.
    assert_status(
        &api.patch(
            &format!("{CONFIGMAPS}/applied"),
            "application/apply-patch+yaml",
            &body,
        )
        .await,
        422,
        "Invalid",
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
    );
    api.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 11. The status subresource; 12. dryRun.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn status_subresource_changes_only_status_and_main_writes_ignore_it() {
    let api = Api::start().await;
    api.create(PODS, &pod("web", &["/bin/sleep", "60"])).await;
    api.node.wait_running("web", SECS(10)).await;
    let web = format!("{PODS}/web");
    let current = api.get(&format!("{web}/status")).await.expect(200);
    assert_eq!(current["kind"], "Pod");
    assert_eq!(current["status"]["phase"], "Running");

    // PUT status: labels and spec in the body are ignored.
    let mut body = current.clone();
    body["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    body["metadata"]["labels"] = json!({"sneaky": "yes"});
    body["spec"]["activeDeadlineSeconds"] = json!(5);
    body["status"]["message"] = json!("from the status subresource");
    let r = api.put(&format!("{web}/status"), &body).await.expect(200);
    assert_eq!(r["status"]["message"], "from the status subresource");
    assert!(r["metadata"].get("labels").is_none(), "{r}");
    assert!(r["spec"].get("activeDeadlineSeconds").is_none(), "{r}");
    assert_eq!(r["metadata"]["generation"], 1);
    // PATCH status likewise.
    let r = api
        .patch(
            &format!("{web}/status"),
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"x":"y"}},"status":{"reason":"Patched"}}"#,
        )
        .await
        .expect(200);
    assert_eq!(r["status"]["reason"], "Patched");
    assert!(r["metadata"].get("labels").is_none(), "{r}");

    // Main-resource writes ignore status changes.
    let mut main = api.get(&web).await.expect(200);
    main["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    main["metadata"]["labels"] = json!({"app": "web"});
    main["status"]["phase"] = json!("Failed");
    let r = api.put(&web, &main).await.expect(200);
    assert_eq!(r["metadata"]["labels"]["app"], "web");
    assert_ne!(r["status"]["phase"], "Failed");
    let r = api
        .patch(
            &web,
            "application/merge-patch+json",
            r#"{"status":{"phase":"Succeeded"}}"#,
        )
        .await
        .expect(200);
    assert_ne!(r["status"]["phase"], "Succeeded");

    // Kinds without a status subresource.
    api.create(CONFIGMAPS, &configmap("c", json!({}))).await;
    assert_status(
        &api.get(&format!("{CONFIGMAPS}/c/status")).await,
        404,
        "NotFound",
        "the server could not find the requested resource",
    );
    api.stop().await;
}

#[tokio::test]
async fn dry_run_persists_nothing() {
    let api = Api::start().await;
    api.create(CONFIGMAPS, &configmap("real", json!({}))).await;
    let real = api.get(&format!("{CONFIGMAPS}/real")).await.expect(200);
    let rv = api.list_rv(CONFIGMAPS).await;
    let pods_rv = api.list_rv(PODS).await;

    let dry = api
        .create(
            &format!("{CONFIGMAPS}?dryRun=All"),
            &configmap("ghost", json!({})),
        )
        .await;
    assert_eq!(name_of(&dry), "ghost");
    assert!(
        dry["metadata"]["uid"].is_string() && dry["metadata"]["creationTimestamp"].is_string(),
        "{dry}"
    );
    let dry_pod = api
        .create(
            &format!("{PODS}?dryRun=All"),
            &pod("ghost", &["/bin/sleep", "60"]),
        )
        .await;
    assert_eq!(dry_pod["status"]["phase"], "Pending");
    let mut changed = real.clone();
    changed["data"]["k"] = json!("dry");
    assert_eq!(
        api.put(&format!("{CONFIGMAPS}/real?dryRun=All"), &changed)
            .await
            .expect(200)["data"]["k"],
        "dry"
    );
    let patched = api
        .patch(
            &format!("{CONFIGMAPS}/real?dryRun=All"),
            "application/merge-patch+json",
            r#"{"data":{"k":"patched"}}"#,
        )
        .await
        .expect(200);
    assert_eq!(patched["data"]["k"], "patched");
    let applied = api
        .patch(
            &format!("{CONFIGMAPS}/applied?dryRun=All&fieldManager=t"),
            "application/apply-patch+yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied}\n",
        )
        .await
        .expect(201);
    assert_eq!(name_of(&applied), "applied");
    let s = api
        .delete(&format!("{CONFIGMAPS}/real?dryRun=All"), None)
        .await
        .expect(200);
    assert_eq!(s["status"], "Success");
    assert_eq!(s["details"]["name"], "real");

    assert_eq!(api.list_rv(CONFIGMAPS).await, rv);
    assert_eq!(api.list_rv(PODS).await, pods_rv);
    assert_eq!(
        api.get(&format!("{CONFIGMAPS}/real")).await.expect(200),
        real
    );
    assert_eq!(api.names(CONFIGMAPS).await, ["real"]);
    assert!(api.names(PODS).await.is_empty());
    api.stop().await;
}

/// A patch or apply that loses a race with another writer (for pods: the node's status
/// updates) is applied again to the latest object, as upstream's patcher does (up to 5
/// times), instead of answering 409: kubectl never sees a conflict it did not cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_and_applies_are_retried_when_another_write_wins() {
    use podvisor::store::resources::CONFIG_MAPS;
    use podvisor::store::{Backend, Part};
    let api = Api::start().await;
    api.create(CONFIGMAPS, &configmap("busy", json!({}))).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Another writer: updates of `data`, one every 20 ms (a pace, not a wait: far busier than
    // the node's status writes, light enough for 5 retries (the API server's number for
    // patches) to get through on a loaded machine, where a read-patch-write takes milliseconds).
    let writer = {
        let store = api.node.store.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 200_000 {
                // With its resourceVersion as precondition: an unconditional write of this
                // read would undo a patch that landed in between (a lost update the test
                // itself would cause). A conflict just means trying again.
                let mut cm = Value::clone(&store.get(&CONFIG_MAPS, "default", "busy").unwrap());
                cm["data"] = json!({"n": n.to_string()});
                if store.update(&CONFIG_MAPS, cm, Part::Main).is_ok() {
                    n += 1;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            n
        })
    };
    let path = format!("{CONFIGMAPS}/busy");
    for i in 0..40 {
        let r = api
            .patch(
                &path,
                "application/merge-patch+json",
                &format!(r#"{{"metadata":{{"labels":{{"merge":"{i}"}}}}}}"#),
            )
            .await;
        assert_eq!(r.status, 200, "merge patch {i}: {}", r.text());
        let r = api
            .patch(
                &format!("{path}?fieldManager=tester"),
                "application/apply-patch+yaml",
                &format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: busy\n  labels:\n    applied: \"{i}\"\n"
                ),
            )
            .await;
        assert_eq!(r.status, 200, "apply {i}: {}", r.text());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(writes > 5, "the other writer wrote only {writes} times");
    let cm = api.get(&path).await.expect(200);
    assert_eq!(cm["metadata"]["labels"]["merge"], "39");
    assert_eq!(cm["metadata"]["labels"]["applied"], "39");
    // A stale resourceVersion named by the patch itself is still a conflict.
    let r = api
        .patch(
            &path,
            "application/merge-patch+json",
            r#"{"metadata":{"resourceVersion":"1","labels":{"x":"y"}}}"#,
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
}

/// A protobuf body as client-go writes it: `k8s\0`, then a `runtime.Unknown` around the object.
fn protobuf_body(api_version: &str, kind: &str, object: &impl prost::Message) -> Vec<u8> {
    use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.to_owned()),
            kind: Some(kind.to_owned()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(prost::Message::encode_to_vec(&unknown));
    body
}

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// Protobuf bodies (what `kubectl create` sends, kubectl-api.md §7.3) create and update as
/// the same objects in JSON do, through the same checks; answers are JSON. Kinds podvisor
/// does not decode keep the 415, a body that is not an envelope is a 400.
#[tokio::test]
async fn protobuf_bodies_create_and_update_as_json_ones() {
    use k8s_pb::api::coordination::v1 as coordination;
    use k8s_pb::api::core::v1 as core;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    let api = Api::start().await;
    let object_meta = |name: &str| meta::ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(String::new()),
        creation_timestamp: Some(meta::Time::default()),
        ..Default::default()
    };
    let cm = core::ConfigMap {
        metadata: Some(object_meta("proto")),
        data: [("a".to_owned(), "b".to_owned())].into(),
        binary_data: [("bin".to_owned(), vec![0xff])].into(),
        ..Default::default()
    };
    let created = api
        .call(
            "POST",
            CONFIGMAPS,
            PROTOBUF,
            protobuf_body("v1", "ConfigMap", &cm),
        )
        .await
        .expect(201);
    assert_eq!(created["data"], json!({"a": "b"}));
    assert_eq!(created["binaryData"], json!({"bin": "/w=="}));
    assert_eq!(created["metadata"]["namespace"], "default");
    let got = api.get(&format!("{CONFIGMAPS}/proto")).await.expect(200);
    assert_eq!(got, created);

    // An update in protobuf, with the resourceVersion precondition.
    let update = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            resource_version: Some(rv_of(&created).to_owned()),
            ..object_meta("proto")
        }),
        data: [("a".to_owned(), "c".to_owned())].into(),
        ..Default::default()
    };
    let updated = api
        .call(
            "PUT",
            &format!("{CONFIGMAPS}/proto"),
            PROTOBUF,
            protobuf_body("v1", "ConfigMap", &update),
        )
        .await
        .expect(200);
    assert_eq!(updated["data"], json!({"a": "c"}));
    assert!(updated.get("binaryData").is_none(), "{updated}");

    // A Secret, a Namespace and a Lease (created by an update) get the JSON path's defaults.
    let secret = core::Secret {
        metadata: Some(object_meta("proto")),
        string_data: [("user".to_owned(), "admin".to_owned())].into(),
        r#type: Some(String::new()),
        ..Default::default()
    };
    let s = api
        .call(
            "POST",
            SECRETS,
            PROTOBUF,
            protobuf_body("v1", "Secret", &secret),
        )
        .await
        .expect(201);
    assert_eq!(s["type"], "Opaque");
    assert_eq!(s["data"], json!({"user": "YWRtaW4="}));
    let ns = core::Namespace {
        metadata: Some(object_meta("proto")),
        spec: Some(core::NamespaceSpec::default()),
        status: Some(core::NamespaceStatus::default()),
    };
    let ns = api
        .call(
            "POST",
            NAMESPACES,
            PROTOBUF,
            protobuf_body("v1", "Namespace", &ns),
        )
        .await
        .expect(201);
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(ns["status"]["phase"], "Active");
    let lease = coordination::Lease {
        metadata: Some(object_meta("proto")),
        spec: Some(coordination::LeaseSpec {
            holder_identity: Some("me".to_owned()),
            lease_duration_seconds: Some(15),
            ..Default::default()
        }),
    };
    let l = api
        .call(
            "PUT",
            &format!("{LEASES}/proto"),
            PROTOBUF,
            protobuf_body("coordination.k8s.io/v1", "Lease", &lease),
        )
        .await
        .expect(201);
    assert_eq!(
        l["spec"],
        json!({"holderIdentity": "me", "leaseDurationSeconds": 15})
    );

    // Validation is the JSON path's.
    let bad = core::ConfigMap {
        metadata: Some(object_meta("Bad_Name")),
        ..Default::default()
    };
    let s = assert_status(
        &api.call(
            "POST",
            CONFIGMAPS,
            PROTOBUF,
            protobuf_body("v1", "ConfigMap", &bad),
        )
        .await,
        422,
        "Invalid",
        "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    );
    assert_eq!(s["details"]["name"], "Bad_Name");
    // So is the kind check: a ConfigMap is no Namespace.
    assert_status(
        &api.call(
            "POST",
            NAMESPACES,
            PROTOBUF,
            protobuf_body("v1", "ConfigMap", &cm),
        )
        .await,
        400,
        "BadRequest",
        "ConfigMap in version \"v1\" cannot be handled as a Namespace: converting (v1.ConfigMap) to (core.Namespace): unknown conversion",
    );

    // Kinds podvisor does not decode from protobuf: 415, as before.
    let pod = core::Pod {
        metadata: Some(object_meta("web")),
        ..Default::default()
    };
    assert_status(
        &api.call("POST", PODS, PROTOBUF, protobuf_body("v1", "Pod", &pod))
            .await,
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
    );
    // Not an envelope, a broken envelope, a broken object: upstream's decoder errors (the
    // reason a message does not decode is prost's wording, a deviation `api::protobuf` lists).
    assert_status(
        &api.call("POST", CONFIGMAPS, PROTOBUF, b"{}".to_vec()).await,
        400,
        "BadRequest",
        "the object provided is unrecognized (must be of type ConfigMap): provided data does not appear to be a protobuf message, expected prefix [107 56 115 0] ({})",
    );
    assert_status(
        &api.call("POST", CONFIGMAPS, PROTOBUF, b"k8s\0\x0a\x64ab".to_vec())
            .await,
        400,
        "BadRequest",
        "the object provided is unrecognized (must be of type ConfigMap): failed to decode Protobuf message: Unknown.type_meta: buffer underflow (6b3873000a646162)",
    );
    let broken = k8s_pb::apimachinery::pkg::runtime::Unknown {
        type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
            api_version: Some("v1".to_owned()),
            kind: Some("ConfigMap".to_owned()),
        }),
        // A metadata field of 5 bytes with 2 after it.
        raw: Some(b"\x0a\x05ab".to_vec()),
        ..Default::default()
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(prost::Message::encode_to_vec(&broken));
    assert_status(
        &api.call("POST", CONFIGMAPS, PROTOBUF, body).await,
        400,
        "BadRequest",
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: failed to decode Protobuf message: ConfigMap.metadata: buffer underflow",
    );
    // Nothing of it was written.
    let (pods, cms) = (
        api.get(PODS).await.expect(200),
        api.get(CONFIGMAPS).await.expect(200),
    );
    assert_eq!(pods["items"], json!([]));
    let names: Vec<&str> = cms["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(name_of)
        .collect();
    assert_eq!(names, ["proto"]);
    api.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 12. Services, Endpoints and EndpointSlices: what the service registry allocates and refuses.
// ---------------------------------------------------------------------------------------------

fn service(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
}

/// The `n`th host address of this test process's service CIDR.
fn service_ip(n: u32) -> String {
    let cidr: podvisor::model::cidr::Cidr = test_service_cidr().parse().unwrap();
    cidr.at(n).to_string()
}

/// Asserts a 422 on a Service with exactly these field errors (upstream's message and one
/// cause per error), and returns the Status.
#[track_caller]
fn assert_invalid_service(r: &Resp, name: &str, errors: &[(&str, &str, &str)]) -> Value {
    let list: Vec<String> = errors
        .iter()
        .map(|(field, _, message)| format!("{field}: {message}"))
        .collect();
    let message = if list.len() == 1 {
        list[0].clone()
    } else {
        format!("[{}]", list.join(", "))
    };
    let s = assert_status(
        r,
        422,
        "Invalid",
        &format!("Service \"{name}\" is invalid: {message}"),
    );
    let causes: Vec<Value> = errors
        .iter()
        .map(|(field, reason, message)| json!({"reason": reason, "message": message, "field": field}))
        .collect();
    assert_eq!(
        s["details"],
        json!({"name": name, "kind": "Service", "causes": causes}),
        "{s}"
    );
    s
}

/// A ClusterIP Service gets the first free address of the node's service CIDR and the
/// registry's defaults; NodePort and LoadBalancer ones get node ports from 30000–32767, and a
/// LoadBalancer one the node address as its ingress. A requested address or port that is
/// taken or out of range, and a LoadBalancer port another one listens on, are 422s that write
/// nothing; a dry run shows the allocation and keeps nothing.
#[tokio::test]
async fn services_get_cluster_ips_node_ports_and_the_node_address() {
    let api = Api::start().await;
    let web = api
        .create(
            SERVICES,
            &service(
                "web",
                json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}),
            ),
        )
        .await;
    assert_eq!(
        web["spec"],
        json!({
            "selector": {"app": "web"},
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
            "type": "ClusterIP",
            "clusterIP": service_ip(1),
            "clusterIPs": [service_ip(1)],
            "sessionAffinity": "None",
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
        })
    );
    assert_eq!(web["status"], json!({"loadBalancer": {}}));
    assert!(web["metadata"].get("generation").is_none(), "{web}");

    let np = api
        .create(
            SERVICES,
            &service("np", json!({"type": "NodePort", "ports": [{"port": 80}]})),
        )
        .await;
    assert_eq!(np["spec"]["clusterIP"], service_ip(2));
    assert_eq!(np["spec"]["ports"][0]["nodePort"], 30000);
    assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");

    let lb = api
        .create(
            SERVICES,
            &service(
                "lb",
                json!({"type": "LoadBalancer", "ports": [{"port": 8080}]}),
            ),
        )
        .await;
    assert_eq!(lb["spec"]["ports"][0]["nodePort"], 30001);
    assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
    assert_eq!(
        lb["status"],
        json!({"loadBalancer": {"ingress": [{"ip": test_node_address().to_string(), "ipMode": "VIP"}]}})
    );

    let rv = api.list_rv(SERVICES).await;
    let taken = service_ip(1);
    assert_invalid_service(
        &api.post(
            SERVICES,
            &service("b", json!({"clusterIP": taken, "ports": [{"port": 80}]})),
        )
        .await,
        "b",
        &[(
            "spec.clusterIPs",
            "FieldValueInvalid",
            &format!(
                "Invalid value: []string{{\"{taken}\"}}: failed to allocate IP {taken}: provided IP is already allocated"
            ),
        )],
    );
    let cidr = test_service_cidr();
    assert_invalid_service(
        &api.post(
            SERVICES,
            &service(
                "b",
                json!({"clusterIP": "127.9.9.9", "ports": [{"port": 80}]}),
            ),
        )
        .await,
        "b",
        &[(
            "spec.clusterIPs",
            "FieldValueInvalid",
            &format!(
                "Invalid value: []string{{\"127.9.9.9\"}}: failed to allocate IP 127.9.9.9: the provided IP (127.9.9.9) is not in the valid range. The range of valid IPs is {cidr}"
            ),
        )],
    );
    assert_invalid_service(
        &api.post(
            SERVICES,
            &service(
                "b",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30000}]}),
            ),
        )
        .await,
        "b",
        &[(
            "spec.ports[0].nodePort",
            "FieldValueInvalid",
            "Invalid value: 30000: provided port is already allocated",
        )],
    );
    assert_invalid_service(
        &api.post(
            SERVICES,
            &service(
                "b",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}),
            ),
        )
        .await,
        "b",
        &[(
            "spec.ports[0].nodePort",
            "FieldValueInvalid",
            "Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767",
        )],
    );
    assert_invalid_service(
        &api.post(
            SERVICES,
            &service(
                "b",
                json!({"type": "LoadBalancer", "ports": [{"port": 8080}]}),
            ),
        )
        .await,
        "b",
        &[(
            "spec.ports[0].port",
            "FieldValueInvalid",
            &format!(
                "Invalid value: 8080: port 8080/TCP of the node address {} is already used by LoadBalancer service default/lb; podvisor serves LoadBalancer services on the node address at their own port, so two of them cannot share a port and protocol",
                test_node_address()
            ),
        )],
    );
    assert_eq!(
        api.list_rv(SERVICES).await,
        rv,
        "a refused Service wrote nothing"
    );

    // A dry run allocates for the answer only.
    let preview = api
        .post(
            &format!("{SERVICES}?dryRun=All"),
            &service("dry", json!({"ports": [{"port": 80}]})),
        )
        .await
        .expect(201);
    assert!(
        preview["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .starts_with("127.")
    );
    assert_eq!(api.names(SERVICES).await, ["lb", "np", "web"]);
    assert_eq!(api.list_rv(SERVICES).await, rv);
    api.stop().await;
}

/// Bad ports and selectors are upstream's 422s with one cause per problem; an ExternalName
/// Service is refused with the types podvisor serves.
#[tokio::test]
async fn invalid_services_are_upstreams_422s() {
    let api = Api::start().await;
    assert_invalid_service(
        &api.post(
            SERVICES,
            &service(
                "bad",
                json!({"selector": {"app": "a b"},
                    "ports": [{"port": 0}, {"name": "x", "port": 80, "targetPort": "not_a_name"}]}),
            ),
        )
        .await,
        "bad",
        &[
            ("spec.ports[0].name", "FieldValueRequired", "Required value"),
            (
                "spec.ports[0].port",
                "FieldValueInvalid",
                "Invalid value: 0: must be between 1 and 65535, inclusive",
            ),
            (
                "spec.ports[0].targetPort",
                "FieldValueInvalid",
                "Invalid value: 0: must be between 1 and 65535, inclusive",
            ),
            (
                "spec.ports[1].targetPort",
                "FieldValueInvalid",
                "Invalid value: \"not_a_name\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            ),
            (
                "spec.selector",
                "FieldValueInvalid",
                "Invalid value: \"a b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ),
        ],
    );
    assert_invalid_service(
        &api.post(
            SERVICES,
            &service(
                "ext",
                json!({"type": "ExternalName", "externalName": "example.com"}),
            ),
        )
        .await,
        "ext",
        &[(
            "spec.type",
            "FieldValueNotSupported",
            "Unsupported value: \"ExternalName\": supported values: \"ClusterIP\", \"LoadBalancer\", \"NodePort\" (podvisor has no cluster DNS to answer an ExternalName; use a Service without selector and an EndpointSlice with the address instead)",
        )],
    );
    assert_eq!(api.names(SERVICES).await, Vec::<String>::new());
    api.stop().await;
}

/// Updates keep what was allocated when the body leaves it out (the same manifest applied
/// again), `clusterIP` may not change, `spec.ports` merge by `port` in a strategic merge
/// patch, a type change to ClusterIP releases the node ports, and a delete releases the
/// cluster IP for another Service to take.
#[tokio::test]
async fn service_updates_keep_allocations_and_the_cluster_ip() {
    let api = Api::start().await;
    let body = service(
        "web",
        json!({"type": "NodePort", "ports": [{"name": "a", "port": 80}]}),
    );
    let web = api.create(SERVICES, &body).await;
    let ip = web["spec"]["clusterIP"].as_str().unwrap().to_owned();
    let node_port = web["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    let path = format!("{SERVICES}/web");

    // PUT of the original body: allocations kept, nothing changed.
    let mut again = body.clone();
    again["metadata"]["resourceVersion"] = web["metadata"]["resourceVersion"].clone();
    let same = api.put(&path, &again).await.expect(200);
    assert_eq!(same["spec"], web["spec"]);
    assert_eq!(rv_of(&same), rv_of(&web));

    let other = service_ip(9);
    assert_invalid_service(
        &api.patch(
            &path,
            "application/merge-patch+json",
            &json!({"spec": {"clusterIP": other}}).to_string(),
        )
        .await,
        "web",
        &[(
            "spec.clusterIPs[0]",
            "FieldValueInvalid",
            &format!("Invalid value: []string{{\"{other}\"}}: may not change once set"),
        )],
    );

    let patched = api
        .patch(
            &path,
            "application/strategic-merge-patch+json",
            r#"{"spec": {"ports": [{"name": "b", "port": 81}]}}"#,
        )
        .await
        .expect(200);
    let ports: Vec<(String, i64)> = patched["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["port"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ports, [("b".to_owned(), 81), ("a".to_owned(), 80)]);
    assert_eq!(patched["spec"]["ports"][1]["nodePort"], node_port);
    assert_eq!(patched["spec"]["clusterIP"], ip.as_str());

    // NodePort -> ClusterIP drops the node ports; another Service can take them.
    let plain = api
        .patch(
            &path,
            "application/merge-patch+json",
            r#"{"spec": {"type": "ClusterIP"}}"#,
        )
        .await
        .expect(200);
    assert!(
        plain["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p.get("nodePort").is_none()),
        "{plain}"
    );
    assert!(
        plain["spec"].get("externalTrafficPolicy").is_none(),
        "{plain}"
    );
    api.create(
        SERVICES,
        &service(
            "np",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": node_port}]}),
        ),
    )
    .await;

    // Deleting web releases its cluster IP.
    api.delete(&path, None).await.expect(200);
    let reuse = api
        .create(
            SERVICES,
            &service("reuse", json!({"clusterIP": ip, "ports": [{"port": 80}]})),
        )
        .await;
    assert_eq!(reuse["spec"]["clusterIP"], ip.as_str());
    api.stop().await;
}

/// What Services hold is recomputed from the stored objects when the node starts again.
#[tokio::test]
async fn service_allocations_survive_a_restart() {
    let api = Api::start().await;
    let svc = api
        .create(
            SERVICES,
            &service(
                "np",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30123}]}),
            ),
        )
        .await;
    let ip = svc["spec"]["clusterIP"].as_str().unwrap().to_owned();
    let api = api.restart().await;
    assert_eq!(
        api.get(&format!("{SERVICES}/np")).await.expect(200)["spec"],
        svc["spec"]
    );
    let r = api
        .post(
            SERVICES,
            &service(
                "b",
                json!({"type": "NodePort", "clusterIP": ip,
                    "ports": [{"port": 80, "nodePort": 30123}]}),
            ),
        )
        .await;
    assert_invalid_service(
        &r,
        "b",
        &[(
            "spec.clusterIPs",
            "FieldValueInvalid",
            &format!(
                "Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: provided IP is already allocated"
            ),
        )],
    );
    let fresh = api
        .create(
            SERVICES,
            &service("c", json!({"type": "NodePort", "ports": [{"port": 80}]})),
        )
        .await;
    assert_ne!(fresh["spec"]["clusterIP"], ip.as_str());
    assert_ne!(fresh["spec"]["ports"][0]["nodePort"], 30123);
    api.stop().await;
}

/// Endpoints and EndpointSlices of a Service without selector: created with loopback
/// addresses (podvisor's deviation from `ValidateNonSpecialIP`), defaulted (a slice port's
/// name is `""`, so kubectl's `describe svc` never dereferences a missing one), a slice's
/// generation follows its changes, its endpoints list is replaced by a strategic merge patch
/// (atomic), `addressType` is immutable, and bad input is a 422.
#[tokio::test]
async fn endpoints_and_endpoint_slices() {
    let api = Api::start().await;
    let ep = api
        .create(
            ENDPOINTS,
            &json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext"},
                "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 9000}]}]}),
        )
        .await;
    assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");

    let slice = api
        .create(
            SLICES,
            &json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "ext-1", "labels": {"kubernetes.io/service-name": "ext"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}},
                    {"addresses": ["127.0.0.2"]}],
                "ports": [{"port": 9000}]}),
        )
        .await;
    assert_eq!(
        slice["ports"],
        json!([{"name": "", "port": 9000, "protocol": "TCP"}])
    );
    assert_eq!(slice["metadata"]["generation"], 1);
    let path = format!("{SLICES}/ext-1");
    let patched = api
        .patch(
            &path,
            "application/strategic-merge-patch+json",
            r#"{"endpoints": [{"addresses": ["127.0.0.3"]}]}"#,
        )
        .await
        .expect(200);
    assert_eq!(patched["endpoints"], json!([{"addresses": ["127.0.0.3"]}]));
    assert_eq!(patched["metadata"]["generation"], 2);
    let r = api
        .patch(
            &path,
            "application/merge-patch+json",
            r#"{"addressType": "FQDN", "endpoints": [{"addresses": ["db.example.com"]}]}"#,
        )
        .await;
    assert_status(
        &r,
        422,
        "Invalid",
        "EndpointSlice.discovery.k8s.io \"ext-1\" is invalid: addressType: Invalid value: \"FQDN\": field is immutable",
    );
    let r = api
        .post(
            SLICES,
            &json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "bad"}, "addressType": "IPv4",
                "endpoints": [{"addresses": ["0.0.0.0"]}],
                "ports": [{"name": "a", "port": 1}, {"name": "a", "port": 2}]}),
        )
        .await;
    assert_status(
        &r,
        422,
        "Invalid",
        "EndpointSlice.discovery.k8s.io \"bad\" is invalid: [ports[1].name: Duplicate value: \"a\", endpoints[0].addresses[0]: Invalid value: \"0.0.0.0\": may not be unspecified (0.0.0.0)]",
    );
    assert_eq!(api.names(SLICES).await, ["ext-1"]);
    api.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Deployments, ReplicaSets and ReplicationControllers as served objects (no controller yet).
// ---------------------------------------------------------------------------------------------

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";
const REPLICASETS: &str = "/apis/apps/v1/namespaces/default/replicasets";
const RCS: &str = "/api/v1/namespaces/default/replicationcontrollers";

fn deployment(name: &str, spec: Value) -> Value {
    let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": "web:1"}]}}}});
    for (k, v) in spec.as_object().unwrap() {
        d["spec"][k] = v.clone();
    }
    d
}

/// A Deployment gets upstream's defaults, generation 1 and an empty status; a spec change bumps
/// the generation, a status write does not; invalid strategies and a template that the
/// selector does not match are 422s with one cause each; the selector is immutable.
#[tokio::test]
async fn deployments_defaults_validation_and_selector_immutability() {
    let api = Api::start().await;
    let d = api.create(DEPLOYMENTS, &deployment("web", json!({}))).await;
    assert_eq!(d["metadata"]["generation"], 1);
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(
        d["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    assert_eq!(d["status"], json!({}));

    let mut changed = d.clone();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2");
    let updated = api
        .put(&format!("{DEPLOYMENTS}/web"), &changed)
        .await
        .expect(200);
    assert_eq!(updated["metadata"]["generation"], 2);
    let mut status = updated.clone();
    status["status"] = json!({"observedGeneration": 2, "replicas": 0});
    let with_status = api
        .put(&format!("{DEPLOYMENTS}/web/status"), &status)
        .await
        .expect(200);
    assert_eq!(with_status["metadata"]["generation"], 2);
    assert_eq!(with_status["status"]["observedGeneration"], 2);

    let r = api
        .post(
            DEPLOYMENTS,
            &deployment(
                "bad",
                json!({"strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}}),
            ),
        )
        .await;
    let s = assert_status(
        &r,
        422,
        "Invalid",
        "Deployment.apps \"bad\" is invalid: spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"0%\"}: may not be 0 when `maxSurge` is 0",
    );
    assert_eq!(
        s["details"],
        json!({"name": "bad", "group": "apps", "kind": "Deployment", "causes": [{
            "reason": "FieldValueInvalid",
            "message": "Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"0%\"}: may not be 0 when `maxSurge` is 0",
            "field": "spec.strategy.rollingUpdate.maxUnavailable"}]})
    );
    let r = api
        .post(
            DEPLOYMENTS,
            &deployment(
                "bad",
                json!({"selector": {"matchLabels": {"app": "other"}},
                       "strategy": {"rollingUpdate": {"maxUnavailable": "120%", "maxSurge": -1}}}),
            ),
        )
        .await;
    assert_status(
        &r,
        422,
        "Invalid",
        "Deployment.apps \"bad\" is invalid: [spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"bad\"}: `selector` does not match template `labels`, spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: must be greater than or equal to 0, spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"120%\"}: must not be greater than 100%]",
    );
    assert_eq!(api.names(DEPLOYMENTS).await, ["web"]);

    let r = api
        .patch(
            &format!("{DEPLOYMENTS}/web"),
            "application/merge-patch+json",
            r#"{"spec":{"selector":{"matchLabels":{"app":"web","v":"2"}},"template":{"metadata":{"labels":{"v":"2"}}}}}"#,
        )
        .await;
    assert_status(
        &r,
        422,
        "Invalid",
        "Deployment.apps \"web\" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"v\":\"2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
    );
    // A strategic merge patch merges the template's containers by name.
    let patched = api
        .patch(
            &format!("{DEPLOYMENTS}/web"),
            "application/strategic-merge-patch+json",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"web:3"}]}}}}"#,
        )
        .await
        .expect(200);
    let containers = &patched["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().unwrap().len(), 1);
    assert_eq!(containers[0]["image"], "web:3");
    assert_eq!(containers[0]["terminationMessagePolicy"], "File");
    assert_eq!(patched["metadata"]["generation"], 3);
    api.stop().await;
}

/// The `scale` subresource of the three kinds: GET answers an autoscaling/v1 Scale, a merge
/// patch or a PUT of it changes `spec.replicas` (and the generation), a negative count is the
/// Scale's 422, a stale resourceVersion a 409.
#[tokio::test]
async fn scale_subresource_reads_and_writes_spec_replicas() {
    let api = Api::start().await;
    let d = api.create(DEPLOYMENTS, &deployment("web", json!({}))).await;
    let scale = api
        .get(&format!("{DEPLOYMENTS}/web/scale"))
        .await
        .expect(200);
    assert_eq!(
        scale,
        json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
               "metadata": {"name": "web", "namespace": "default", "uid": d["metadata"]["uid"],
                            "resourceVersion": rv_of(&d), "creationTimestamp": d["metadata"]["creationTimestamp"]},
               "spec": {"replicas": 1}, "status": {"replicas": 0, "selector": "app=web"}})
    );
    let scaled = api
        .patch(
            &format!("{DEPLOYMENTS}/web/scale"),
            "application/merge-patch+json",
            r#"{"spec":{"replicas":3}}"#,
        )
        .await
        .expect(200);
    assert_eq!(scaled["spec"]["replicas"], 3);
    let d = api.get(&format!("{DEPLOYMENTS}/web")).await.expect(200);
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["metadata"]["generation"], 2);

    let mut put = scaled.clone();
    put["spec"]["replicas"] = json!(0);
    let zero = api
        .put(&format!("{DEPLOYMENTS}/web/scale"), &put)
        .await
        .expect(200);
    assert_eq!(zero["spec"], json!({}));
    let r = api.put(&format!("{DEPLOYMENTS}/web/scale"), &put).await;
    assert_eq!(r.status, 409, "{}", r.json());

    put["spec"]["replicas"] = json!(-1);
    put["metadata"]["resourceVersion"] = json!(rv_of(&zero));
    let r = api.put(&format!("{DEPLOYMENTS}/web/scale"), &put).await;
    assert_status(
        &r,
        422,
        "Invalid",
        "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0",
    );

    let mut rs = deployment("rs", json!({}));
    rs["kind"] = json!("ReplicaSet");
    api.create(REPLICASETS, &rs).await;
    let scaled = api
        .patch(
            &format!("{REPLICASETS}/rs/scale"),
            "application/merge-patch+json",
            r#"{"spec":{"replicas":2}}"#,
        )
        .await
        .expect(200);
    assert_eq!(scaled["status"]["selector"], "app=rs");
    let rc = json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "old"},
        "spec": {"template": {"metadata": {"labels": {"app": "old", "tier": "x"}},
                              "spec": {"containers": [{"name": "app", "image": "old:1"}]}}}});
    let rc = api.create(RCS, &rc).await;
    assert_eq!(rc["spec"]["selector"], json!({"app": "old", "tier": "x"}));
    let scale = api.get(&format!("{RCS}/old/scale")).await.expect(200);
    assert_eq!(scale["status"]["selector"], "app=old,tier=x");
    // Discovery lists the subresource with its group and version.
    let list = api.get("/apis/apps/v1").await.expect(200);
    let entry = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "deployments/scale")
        .cloned()
        .unwrap();
    assert_eq!(
        entry,
        json!({"name": "deployments/scale", "singularName": "", "namespaced": true, "kind": "Scale",
               "verbs": ["get", "patch", "update"], "group": "autoscaling", "version": "v1"})
    );
    api.stop().await;
}
