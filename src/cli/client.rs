//! The CLI's HTTP client: finds the node (kubeconfig from `--kubeconfig`, else the data
//! dir's), speaks HTTPS with the node's CA and bearer token, and returns JSON or streams.
//!
//! Must not: link node internals; everything comes over the API.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;

/// A connection to a node's API.
#[derive(Clone)]
pub struct Client {
    host: String,
    port: u16,
    token: String,
    tls: tokio_rustls::TlsConnector,
    /// The namespace of the kubeconfig's context.
    pub namespace: String,
}

/// A response: status code and body.
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body).context("the server sent something that is not JSON")
    }

    /// The Status message of an error reply, as kubectl prints it:
    /// `Error from server (NotFound): pods "x" not found`.
    pub fn error(&self) -> anyhow::Error {
        self.server_error(None)
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl Client {
    /// Connects through `kubeconfig`, or `<data dir>/kubeconfig`.
    pub fn from_config(kubeconfig: Option<&Path>, data_dir: &Path) -> anyhow::Result<Client> {
        let path: PathBuf = kubeconfig
            .map(Path::to_owned)
            .unwrap_or_else(|| data_dir.join("kubeconfig"));
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {} (is `podvisor up` running with this data dir? set --data-dir, PODVISOR_DATA_DIR or --kubeconfig)",
                path.display()
            )
        })?;
        let config: Value = serde_saphyr::from_str(&text)
            .with_context(|| format!("{} is not a kubeconfig", path.display()))?;
        let current = config["current-context"].as_str().unwrap_or_default();
        let find = |list: &str, name: &str| {
            config[list]
                .as_array()
                .and_then(|l| l.iter().find(|e| e["name"].as_str() == Some(name)).cloned())
        };
        let context = find("contexts", current)
            .with_context(|| format!("context {current:?} not found in {}", path.display()))?;
        let cluster_name = context["context"]["cluster"].as_str().unwrap_or_default();
        let user_name = context["context"]["user"].as_str().unwrap_or_default();
        let cluster =
            find("clusters", cluster_name).context("the kubeconfig has no such cluster")?;
        let user = find("users", user_name).context("the kubeconfig has no such user")?;
        let server = cluster["cluster"]["server"].as_str().unwrap_or_default();
        let rest = server
            .strip_prefix("https://")
            .with_context(|| format!("unsupported server URL {server:?} (https only)"))?;
        let (host, port) = rest
            .trim_end_matches('/')
            .rsplit_once(':')
            .context("the server URL has no port")?;
        let ca = cluster["cluster"]["certificate-authority-data"]
            .as_str()
            .context("the kubeconfig has no certificate-authority-data")?;
        let ca = base64::engine::general_purpose::STANDARD
            .decode(ca)
            .context("invalid certificate-authority-data")?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&ca) {
            roots.add(cert.context("invalid CA certificate")?)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Client {
            host: host.to_owned(),
            port: port.parse().context("invalid port in the server URL")?,
            token: user["user"]["token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            namespace: context["context"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_owned(),
        })
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        accept: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .with_context(|| {
                format!(
                    "cannot connect to the node at {}:{} (is `podvisor up` running?)",
                    self.host, self.port
                )
            })?;
        let name = ServerName::try_from(self.host.clone()).context("invalid server name")?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .context("TLS handshake failed")?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            // Why ignored: a broken connection shows up as an error on the request.
            let _ = conn.await;
        });
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("{}:{}", self.host, self.port))
            .header("authorization", format!("Bearer {}", self.token))
            .header("accept", accept)
            .header(
                "user-agent",
                concat!("podvisor/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = sender
            .send_request(request.body(Full::new(Bytes::from(body)))?)
            .await
            .context("the request failed")?;
        Ok(response)
    }

    /// A request whose whole reply is read.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        accept: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<Reply> {
        let response = self.send(method, path, content_type, accept, body).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Reply { status, body })
    }

    pub async fn get(&self, path: &str, accept: &str) -> anyhow::Result<Reply> {
        self.call("GET", path, None, accept, Vec::new()).await
    }

    /// A streaming request (watch, log follow): `each` gets every chunk until it returns false
    /// or the stream ends.
    pub async fn stream(
        &self,
        path: &str,
        accept: &str,
        mut each: impl FnMut(&[u8]) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let response = self.send("GET", path, None, accept, Vec::new()).await?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        if !(200..300).contains(&status) {
            let body = body.collect().await?.to_bytes();
            return Err(Reply { status, body }.error());
        }
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            if let Some(data) = frame.data_ref()
                && !each(data)?
            {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Fails with the reply's Status unless it succeeded.
pub fn check(reply: Reply) -> anyhow::Result<Reply> {
    if reply.ok() {
        Ok(reply)
    } else {
        Err(reply.error())
    }
}

/// What kubectl's `Accept` asks for when it wants server-side printing (a `meta.k8s.io/v1`
/// Table), falling back to the plain object.
pub const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
/// Plain JSON.
pub const JSON: &str = "application/json";
/// Aggregated discovery (apidiscovery.k8s.io/v2), falling back to the legacy documents.
const DISCOVERY_ACCEPT: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";

/// An error the server answered with a `Status`; its `Display` is kubectl's wording, printed
/// without an `error: ` prefix, as kubectl does.
#[derive(Debug)]
pub struct ServerError {
    /// The Status `reason` (`NotFound`, `Invalid`, …).
    pub reason: String,
    /// The HTTP status code.
    pub code: u16,
    /// The whole line kubectl prints.
    pub text: String,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for ServerError {}

impl ServerError {
    /// kubectl's `StandardErrorMessage` for a Status; `source` is the manifest the object
    /// came from (`error when creating "pod.yaml": …`), with the verb kubectl uses.
    pub fn from_status(status: &Value, code: u16, source: Option<(&str, &str)>) -> ServerError {
        let reason = status["reason"].as_str().unwrap_or("Unknown").to_owned();
        let mut message = status["message"].as_str().unwrap_or_default().to_owned();
        if let Some((verb, file)) = source {
            message = format!("error when {verb} {file:?}: {message}");
        }
        let details = &status["details"];
        let causes = details["causes"].as_array().filter(|c| !c.is_empty());
        let text = match (reason.as_str(), causes) {
            ("Invalid", Some(causes)) if source.is_none() => {
                let kind = details["kind"].as_str().unwrap_or_default();
                let name = details["name"].as_str().unwrap_or_default();
                let subject = if !kind.is_empty() || !name.is_empty() {
                    format!("The {kind} {name:?} is invalid")
                } else {
                    "The request is invalid".to_owned()
                };
                let each: Vec<String> = causes
                    .iter()
                    .map(|c| {
                        let field = c["field"].as_str().unwrap_or_default();
                        let m = c["message"].as_str().unwrap_or_default();
                        if field.is_empty() {
                            m.to_owned()
                        } else {
                            format!("{field}: {m}")
                        }
                    })
                    .collect();
                if each.len() == 1 {
                    format!("{subject}: {}", each[0])
                } else {
                    format!("{subject}: [{}]", each.join(", "))
                }
            }
            _ => format!("Error from server ({reason}): {message}"),
        };
        ServerError { reason, code, text }
    }

    pub fn is_not_found(&self) -> bool {
        self.code == 404 && self.reason == "NotFound"
    }
}

/// Whether an error is the server's NotFound.
pub fn is_not_found(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<ServerError>()
        .is_some_and(ServerError::is_not_found)
}

impl Reply {
    /// The reply's Status as a [`ServerError`] (or a plain error for a body that is not one).
    pub fn server_error(&self, source: Option<(&str, &str)>) -> anyhow::Error {
        match self.json() {
            Ok(v) if v["kind"] == "Status" => {
                anyhow::Error::new(ServerError::from_status(&v, self.status, source))
            }
            _ => anyhow!(
                "the server answered {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body).trim()
            ),
        }
    }
}

/// One resource type the server serves, as discovery describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiResource {
    /// API group; "" for the core group.
    pub group: String,
    pub version: String,
    /// Plural, lower case: `pods`.
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    /// `all`, for `get all`.
    pub categories: Vec<String>,
    pub verbs: Vec<String>,
}

impl ApiResource {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// How kubectl prefixes names: `pod`, `deployment.apps`.
    pub fn kind_prefix(&self) -> String {
        let kind = self.kind.to_lowercase();
        if self.group.is_empty() {
            kind
        } else {
            format!("{kind}.{}", self.group)
        }
    }

    /// How the API server names the resource in messages: `pods`, `deployments.apps`.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The API path of the collection (in `namespace`, or across all for None) or of an object.
    pub fn path(&self, namespace: Option<&str>, name: Option<&str>) -> String {
        let mut p = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        if self.namespaced
            && let Some(ns) = namespace
        {
            p.push_str("/namespaces/");
            p.push_str(&encode(ns));
        }
        p.push('/');
        p.push_str(&self.plural);
        if let Some(n) = name {
            p.push('/');
            p.push_str(&encode(n));
        }
        p
    }

    fn matches(&self, name: &str) -> bool {
        self.plural == name
            || self.singular == name
            || self.kind.eq_ignore_ascii_case(name)
            || self.short_names.iter().any(|s| s == name)
    }
}

/// Everything the server serves (the RESTMapper's input).
#[derive(Clone, Debug, Default)]
pub struct Discovery {
    /// In discovery order: the core group first, each group's preferred version first.
    pub resources: Vec<ApiResource>,
}

impl Discovery {
    /// The resource types a command-line word names: a plural, singular, short name or kind,
    /// optionally qualified (`deployments.apps`, `deployments.v1.apps`), or a category (`all`).
    pub fn resolve(&self, word: &str) -> anyhow::Result<Vec<ApiResource>> {
        let lower = word.to_ascii_lowercase();
        // The whole word first (a plural has no dots), then `resource.group` and
        // `resource.version.group`, as kubectl's ParseResourceArg.
        let mut candidates: Vec<(String, Option<String>, Option<String>)> =
            vec![(lower.clone(), None, None)];
        if let Some((resource, rest)) = lower.split_once('.') {
            candidates.push((resource.to_owned(), None, Some(rest.to_owned())));
            if let Some((version, group)) = rest.split_once('.') {
                candidates.push((
                    resource.to_owned(),
                    Some(version.to_owned()),
                    Some(group.to_owned()),
                ));
            }
        }
        for (resource, version, group) in &candidates {
            let found = self.resources.iter().find(|r| {
                r.matches(resource)
                    && group.as_deref().is_none_or(|g| {
                        r.group == g
                            || (g == "core" && r.group.is_empty())
                            || r.group.starts_with(&format!("{g}."))
                    })
                    && version.as_deref().is_none_or(|v| r.version == v)
            });
            if let Some(r) = found {
                return Ok(vec![r.clone()]);
            }
        }
        let in_category: Vec<ApiResource> = self
            .resources
            .iter()
            .filter(|r| r.categories.contains(&lower))
            .cloned()
            .collect();
        if !in_category.is_empty() {
            return Ok(in_category);
        }
        bail!("the server doesn't have a resource type {word:?}")
    }

    /// The one resource type a word names (categories are refused).
    pub fn resolve_one(&self, word: &str) -> anyhow::Result<ApiResource> {
        let mut found = self.resolve(word)?;
        if found.len() != 1 {
            bail!("{word:?} names several resource types; name one of them");
        }
        Ok(found.remove(0))
    }

    /// The resource of an object's `apiVersion` and `kind`.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&ApiResource> {
        self.resources
            .iter()
            .find(|r| r.api_version() == api_version && r.kind == kind)
    }
}

impl Client {
    /// Reads what the server serves: aggregated discovery (two requests), or the legacy
    /// documents (one more request per group-version) from a server without it.
    pub async fn discover(&self) -> anyhow::Result<Discovery> {
        let mut resources = Vec::new();
        let mut legacy = Vec::new();
        for root in ["/api", "/apis"] {
            let response = self
                .send("GET", root, None, DISCOVERY_ACCEPT, Vec::new())
                .await?;
            let aggregated = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.contains("as=APIGroupDiscoveryList"));
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            let reply = Reply { status, body };
            if !reply.ok() {
                if root == "/api" && status == 404 {
                    continue;
                }
                return Err(reply.server_error(None));
            }
            let doc = reply.json()?;
            if aggregated {
                parse_aggregated(&doc, &mut resources);
            } else if root == "/api" {
                for v in doc["versions"].as_array().into_iter().flatten() {
                    if let Some(v) = v.as_str() {
                        legacy.push((String::new(), v.to_owned()));
                    }
                }
            } else {
                for g in doc["groups"].as_array().into_iter().flatten() {
                    let name = g["name"].as_str().unwrap_or_default();
                    let preferred = g["preferredVersion"]["version"].as_str();
                    let mut versions: Vec<&str> = g["versions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v["version"].as_str())
                        .collect();
                    if let Some(p) = preferred {
                        versions.retain(|v| *v != p);
                        versions.insert(0, p);
                    }
                    for v in versions {
                        legacy.push((name.to_owned(), v.to_owned()));
                    }
                }
            }
        }
        for (group, version) in legacy {
            let path = if group.is_empty() {
                format!("/api/{version}")
            } else {
                format!("/apis/{group}/{version}")
            };
            let doc = check(self.get(&path, JSON).await?)?.json()?;
            for r in doc["resources"].as_array().into_iter().flatten() {
                let plural = r["name"].as_str().unwrap_or_default();
                if plural.is_empty() || plural.contains('/') {
                    continue;
                }
                resources.push(ApiResource {
                    group: group.clone(),
                    version: version.clone(),
                    plural: plural.to_owned(),
                    singular: r["singularName"].as_str().unwrap_or_default().to_owned(),
                    kind: r["kind"].as_str().unwrap_or_default().to_owned(),
                    namespaced: r["namespaced"].as_bool().unwrap_or(false),
                    short_names: strings(&r["shortNames"]),
                    categories: strings(&r["categories"]),
                    verbs: strings(&r["verbs"]),
                });
            }
        }
        Ok(Discovery { resources })
    }

    /// A watch (or any newline-delimited JSON stream): `each` gets every decoded line until
    /// it returns false or the server ends the stream.
    pub async fn watch(
        &self,
        path: &str,
        accept: &str,
        mut each: impl FnMut(Value) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let mut pending: Vec<u8> = Vec::new();
        self.stream(path, accept, |chunk| {
            pending.extend_from_slice(chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let value: Value = serde_json::from_slice(&line)
                    .context("the server sent a watch event that is not JSON")?;
                if !each(value)? {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .await
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

fn parse_aggregated(doc: &Value, out: &mut Vec<ApiResource>) {
    for group in doc["items"].as_array().into_iter().flatten() {
        let name = group["metadata"]["name"].as_str().unwrap_or_default();
        for version in group["versions"].as_array().into_iter().flatten() {
            let v = version["version"].as_str().unwrap_or_default();
            for r in version["resources"].as_array().into_iter().flatten() {
                let kind = r["responseKind"]["kind"].as_str().unwrap_or_default();
                if kind.is_empty() {
                    // client-go drops resources without a responseKind.
                    continue;
                }
                out.push(ApiResource {
                    group: name.to_owned(),
                    version: v.to_owned(),
                    plural: r["resource"].as_str().unwrap_or_default().to_owned(),
                    singular: r["singularResource"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    kind: kind.to_owned(),
                    namespaced: r["scope"] == "Namespaced",
                    short_names: strings(&r["shortNames"]),
                    categories: strings(&r["categories"]),
                    verbs: strings(&r["verbs"]),
                });
            }
        }
    }
}
