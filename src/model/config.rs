//! Defaults and validation of ConfigMaps and Secrets, ported from Kubernetes 1.33:
//! `pkg/apis/core/v1/defaults.go` (`SetDefaults_Secret`), the v1 to internal conversion of
//! Secrets (`stringData` merged into `data`), and `pkg/apis/core/validation/validation.go`
//! (`ValidateConfigMap`, `ValidateSecret`).
//!
//! A decoded object goes through the defaults, then validation, like a `kubectl create` through
//! the API server; validation reports every problem at once, rendered as the API server renders
//! it. `immutable` is only enforced on update (`ValidateConfigMapUpdate`,
//! `ValidateSecretUpdate`), which is the API's business.
//!
//! Pure: no IO, no tokio.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use crate::model::field::{FieldError, FieldPath};
use crate::model::validation::{is_config_map_key, name_is_dns_subdomain, validate_object_meta};

#[cfg(test)]
mod tests;

/// Upstream `core.MaxSecretSize`: the most bytes of data a Secret (and a ConfigMap) may hold.
pub const MAX_SECRET_SIZE: usize = 1024 * 1024;

/// The type of a Secret without one (upstream `SecretTypeOpaque`).
pub const SECRET_TYPE_OPAQUE: &str = "Opaque";

/// Secret types whose data upstream checks, and the keys they need.
const SECRET_TYPE_SERVICE_ACCOUNT_TOKEN: &str = "kubernetes.io/service-account-token";
const SERVICE_ACCOUNT_NAME_KEY: &str = "kubernetes.io/service-account.name";
const SECRET_TYPE_DOCKERCFG: &str = "kubernetes.io/dockercfg";
const DOCKER_CONFIG_KEY: &str = ".dockercfg";
const SECRET_TYPE_DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
const SECRET_TYPE_BASIC_AUTH: &str = "kubernetes.io/basic-auth";
const BASIC_AUTH_USERNAME_KEY: &str = "username";
const BASIC_AUTH_PASSWORD_KEY: &str = "password";
const SECRET_TYPE_SSH_AUTH: &str = "kubernetes.io/ssh-auth";
const SSH_AUTH_PRIVATE_KEY: &str = "ssh-privatekey";
const SECRET_TYPE_TLS: &str = "kubernetes.io/tls";
const TLS_CERT_KEY: &str = "tls.crt";
const TLS_PRIVATE_KEY_KEY: &str = "tls.key";

/// What upstream shows instead of the contents of a Secret key that is not valid JSON.
const REDACTED: &str = "<secret contents redacted>";

/// Upstream `ValidateConfigMap`: the name is a DNS subdomain, keys are config keys, a key is
/// not in both `data` and `binaryData`, and all values together fit in [`MAX_SECRET_SIZE`].
pub fn validate_config_map(config_map: &ConfigMap) -> Vec<FieldError> {
    let mut errs = validate_object_meta(
        &config_map.metadata,
        &FieldPath::new("metadata"),
        true,
        name_is_dns_subdomain,
    );
    let data_path = FieldPath::new("data");
    let binary_path = FieldPath::new("binaryData");
    let binary = config_map.binary_data.as_ref();
    let mut total = 0usize;
    for (key, value) in config_map.data.iter().flatten() {
        for msg in is_config_map_key(key) {
            errs.push(FieldError::invalid(&data_path.key(key), key.as_str(), msg));
        }
        if binary.is_some_and(|b| b.contains_key(key)) {
            errs.push(FieldError::invalid(
                &data_path.key(key),
                key.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
        total += value.len();
    }
    for (key, value) in binary.into_iter().flatten() {
        for msg in is_config_map_key(key) {
            errs.push(FieldError::invalid(
                &binary_path.key(key),
                key.as_str(),
                msg,
            ));
        }
        total += value.0.len();
    }
    if total > MAX_SECRET_SIZE {
        // Upstream reports it on the empty path ("the whole object"), which renders as `[]`.
        errs.push(FieldError::too_long(
            &FieldPath::default().key(""),
            MAX_SECRET_SIZE,
        ));
    }
    errs
}

/// Upstream `SetDefaults_Secret` (`type: Opaque`), then what the API server's conversion of a
/// v1 Secret does on every write: `stringData` is merged into `data` (a key in both takes the
/// `stringData` value) and dropped.
pub fn set_secret_defaults(secret: &mut Secret) {
    if secret.type_.as_deref().unwrap_or_default().is_empty() {
        secret.type_ = Some(SECRET_TYPE_OPAQUE.to_owned());
    }
    if let Some(string_data) = secret.string_data.take()
        && !string_data.is_empty()
    {
        let data = secret.data.get_or_insert_with(Default::default);
        for (key, value) in string_data {
            data.insert(key, ByteString(value.into_bytes()));
        }
    }
}

/// Upstream `ValidateSecret` on a defaulted Secret ([`set_secret_defaults`]): the name is a DNS
/// subdomain, keys are config keys, the data fits in [`MAX_SECRET_SIZE`], and the keys the
/// well-known types need are there.
pub fn validate_secret(secret: &Secret) -> Vec<FieldError> {
    let mut errs = validate_object_meta(
        &secret.metadata,
        &FieldPath::new("metadata"),
        true,
        name_is_dns_subdomain,
    );
    let data_path = FieldPath::new("data");
    let data = secret.data.as_ref();
    let mut total = 0usize;
    for (key, value) in data.into_iter().flatten() {
        for msg in is_config_map_key(key) {
            errs.push(FieldError::invalid(&data_path.key(key), key.as_str(), msg));
        }
        total += value.0.len();
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long(&data_path, MAX_SECRET_SIZE));
    }
    let get = |key: &str| data.and_then(|d| d.get(key)).map(|v| v.0.as_slice());
    let required = |key: &str| FieldError::required(&data_path.key(key), "");
    match secret.type_.as_deref().unwrap_or_default() {
        SECRET_TYPE_SERVICE_ACCOUNT_TOKEN => {
            let name = secret
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(SERVICE_ACCOUNT_NAME_KEY))
                .map(String::as_str)
                .unwrap_or_default();
            if name.is_empty() {
                errs.push(FieldError::required(
                    &FieldPath::new("metadata")
                        .child("annotations")
                        .key(SERVICE_ACCOUNT_NAME_KEY),
                    "",
                ));
            }
        }
        kind @ (SECRET_TYPE_DOCKERCFG | SECRET_TYPE_DOCKER_CONFIG_JSON) => {
            let key = if kind == SECRET_TYPE_DOCKERCFG {
                DOCKER_CONFIG_KEY
            } else {
                DOCKER_CONFIG_JSON_KEY
            };
            match get(key) {
                None => errs.push(required(key)),
                Some(bytes) => {
                    if let Some(message) = go_json_object_error(bytes) {
                        errs.push(FieldError::invalid(&data_path.key(key), REDACTED, message));
                    }
                }
            }
        }
        // Either may be empty, but one of them must be there.
        SECRET_TYPE_BASIC_AUTH
            if get(BASIC_AUTH_USERNAME_KEY).is_none() && get(BASIC_AUTH_PASSWORD_KEY).is_none() =>
        {
            errs.push(required(BASIC_AUTH_USERNAME_KEY));
            errs.push(required(BASIC_AUTH_PASSWORD_KEY));
        }
        SECRET_TYPE_SSH_AUTH if get(SSH_AUTH_PRIVATE_KEY).is_none_or(<[u8]>::is_empty) => {
            errs.push(required(SSH_AUTH_PRIVATE_KEY));
        }
        SECRET_TYPE_TLS => {
            for key in [TLS_CERT_KEY, TLS_PRIVATE_KEY_KEY] {
                if get(key).is_none() {
                    errs.push(required(key));
                }
            }
        }
        // Opaque, any other type, and the cases above that are fine: no rules.
        _ => {}
    }
    errs
}

/// What Go's `json.Unmarshal(bytes, &map[string]interface{}{})` says about `bytes`, or `None`
/// when it succeeds (an object, or `null`). Type mismatches and a truncated input are worded
/// exactly as Go words them; for other syntax errors the offending character is named as Go
/// does, but the context is always `looking for beginning of value`.
fn go_json_object_error(bytes: &[u8]) -> Option<String> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Null | serde_json::Value::Object(_)) => None,
        Ok(other) => {
            let kind = match other {
                serde_json::Value::Bool(_) => "bool",
                serde_json::Value::Number(_) => "number",
                serde_json::Value::String(_) => "string",
                _ => "array",
            };
            Some(format!(
                "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
            ))
        }
        Err(error) if error.is_eof() => Some("unexpected end of JSON input".to_owned()),
        Err(error) => {
            let text = String::from_utf8_lossy(bytes);
            let line = text.lines().nth(error.line().saturating_sub(1));
            let c = line.and_then(|l| l.chars().nth(error.column().saturating_sub(1)));
            Some(match c {
                Some(c) => format!("invalid character '{c}' looking for beginning of value"),
                None => "unexpected end of JSON input".to_owned(),
            })
        }
    }
}
