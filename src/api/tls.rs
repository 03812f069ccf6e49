//! The API's credentials: a certificate authority and a serving certificate generated on
//! first start, a bearer token, and `<data dir>/kubeconfig` (mode 0600) that points kubectl
//! at the node with both.

use std::fs;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Errors preparing the credentials.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot generate a certificate")]
    Generate(#[source] rcgen::Error),
    #[error("invalid key or certificate in `{}`: {message}", path.display())]
    Pem { path: PathBuf, message: String },
    #[error("invalid TLS configuration")]
    Rustls(#[source] rustls::Error),
}

/// The credentials of a node's API.
pub struct Credentials {
    pub ca_pem: String,
    pub token: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const SERVER_CERT: &str = "apiserver.crt";
const SERVER_KEY: &str = "apiserver.key";
const TOKEN: &str = "token";

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "podvisor-ca");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// Loads the credentials from `dir`, generating what is missing. The serving certificate
/// names `127.0.0.1`, `localhost` and `address`.
pub fn prepare(dir: &Path, address: &str) -> Result<Credentials, Error> {
    fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_owned(),
        source,
    })?;
    let ca_key_path = dir.join(CA_KEY);
    let (ca_key, ca_pem) = if ca_key_path.exists() {
        let key = read(&ca_key_path)?;
        let key = KeyPair::from_pem(&key).map_err(|e| Error::Pem {
            path: ca_key_path.clone(),
            message: e.to_string(),
        })?;
        (key, read(&dir.join(CA_CERT))?)
    } else {
        let key = KeyPair::generate().map_err(Error::Generate)?;
        let cert = ca_params().self_signed(&key).map_err(Error::Generate)?;
        write_private(&ca_key_path, &key.serialize_pem())?;
        write_private(&dir.join(CA_CERT), &cert.pem())?;
        (key, cert.pem())
    };
    // The serving certificate is made anew at every start (the address may have changed),
    // signed by the same CA, so kubeconfigs stay valid.
    let server_key = KeyPair::generate().map_err(Error::Generate)?;
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned()]).map_err(Error::Generate)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "podvisor-apiserver");
    params.distinguished_name = dn;
    for ip in ["127.0.0.1", address] {
        if let Ok(ip) = ip.parse() {
            params.subject_alt_names.push(SanType::IpAddress(ip));
        }
    }
    let issuer = Issuer::new(ca_params(), &ca_key);
    let server_cert = params
        .signed_by(&server_key, &issuer)
        .map_err(Error::Generate)?;
    write_private(&dir.join(SERVER_CERT), &server_cert.pem())?;
    write_private(&dir.join(SERVER_KEY), &server_key.serialize_pem())?;

    let token_path = dir.join(TOKEN);
    let token = if token_path.exists() {
        read(&token_path)?.trim().to_owned()
    } else {
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        write_private(&token_path, &token)?;
        token
    };

    let certs = vec![CertificateDer::from(server_cert.der().to_vec())];
    let key =
        PrivateKeyDer::from_pem_slice(server_key.serialize_pem().as_bytes()).map_err(|e| {
            Error::Pem {
                path: dir.join(SERVER_KEY),
                message: e.to_string(),
            }
        })?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(Error::Rustls)?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(Error::Rustls)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Credentials {
        ca_pem,
        token,
        server_config: Arc::new(config),
    })
}

/// Writes `<dir>/kubeconfig` (0600) for a server at `url`.
pub fn write_kubeconfig(path: &Path, url: &str, credentials: &Credentials) -> Result<(), Error> {
    let ca = base64::engine::general_purpose::STANDARD.encode(credentials.ca_pem.as_bytes());
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: podvisor
  cluster:
    server: {url}
    certificate-authority-data: {ca}
users:
- name: podvisor
  user:
    token: {token}
contexts:
- name: podvisor
  context:
    cluster: podvisor
    user: podvisor
    namespace: default
current-context: podvisor
",
        token = credentials.token
    );
    write_private(path, &text)
}

fn read(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

/// Writes a file only its owner can read, replacing it atomically.
fn write_private(path: &Path, text: &str) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    let err = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    {
        use std::io::Write;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        f.write_all(text.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    fs::rename(&tmp, path).map_err(err)
}
