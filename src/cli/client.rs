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
        match self.json() {
            Ok(v) if v["kind"] == "Status" => anyhow!(
                "Error from server ({}): {}",
                v["reason"].as_str().unwrap_or("Unknown"),
                v["message"].as_str().unwrap_or_default()
            ),
            _ => anyhow!(
                "the server answered {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            ),
        }
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
                format!("cannot connect to the node at {}:{}", self.host, self.port)
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

/// The API path of a resource collection or object.
pub fn path(
    resource: &crate::store::resources::Resource,
    namespace: Option<&str>,
    name: Option<&str>,
) -> String {
    let mut p = resource.group_version_path();
    if resource.namespaced
        && let Some(ns) = namespace
    {
        p.push_str(&format!("/namespaces/{ns}"));
    }
    p.push('/');
    p.push_str(resource.plural);
    if let Some(n) = name {
        p.push('/');
        p.push_str(n);
    }
    p
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
        bail!(reply.error())
    }
}
