use serde_json::{Value, json};

use super::*;

fn config_map(value: Value) -> ConfigMap {
    let mut value = value;
    value["apiVersion"] = json!("v1");
    value["kind"] = json!("ConfigMap");
    serde_json::from_value(value).unwrap()
}

fn secret(value: Value) -> Secret {
    let mut value = value;
    value["apiVersion"] = json!("v1");
    value["kind"] = json!("Secret");
    let mut secret: Secret = serde_json::from_value(value).unwrap();
    set_secret_defaults(&mut secret);
    secret
}

fn messages(errors: Vec<FieldError>) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

const META: &str = "metadata";

fn meta() -> Value {
    json!({"name": "settings", "namespace": "default"})
}

#[test]
fn a_valid_config_map_has_no_errors() {
    let cm = config_map(json!({META: meta(), "data": {"a.conf": "x", "B_2": ""},
        "binaryData": {"logo.png": "iVBORw0KGgo="}, "immutable": true}));
    assert_eq!(messages(validate_config_map(&cm)), Vec::<String>::new());
}

#[test]
fn config_map_keys_and_duplicates() {
    let cm = config_map(
        json!({META: meta(), "data": {"a b": "x", "dup": "1", "..": ""},
        "binaryData": {"dup": "", "/etc": ""}}),
    );
    assert_eq!(
        messages(validate_config_map(&cm)),
        [
            "data[..]: Invalid value: \"..\": must not be '..'",
            "data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
            "data[dup]: Invalid value: \"dup\": duplicate of key present in binaryData",
            "binaryData[/etc]: Invalid value: \"/etc\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
        ]
    );
}

#[test]
fn config_map_size_counts_data_and_binary_data() {
    let half = "x".repeat(MAX_SECRET_SIZE / 2);
    let at_limit = config_map(json!({META: meta(), "data": {"a": half, "b": half}}));
    assert!(validate_config_map(&at_limit).is_empty());
    let over = config_map(json!({META: meta(), "data": {"a": half, "b": half},
        "binaryData": {"c": "eA=="}}));
    assert_eq!(
        messages(validate_config_map(&over)),
        ["[]: Too long: may not be more than 1048576 bytes"]
    );
}

#[test]
fn config_map_metadata_is_validated() {
    let cm = config_map(json!({META: {"name": "Bad_Name", "namespace": "default"}}));
    let errors = messages(validate_config_map(&cm));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
        ),
        "{errors:?}"
    );
}

#[test]
fn secret_defaults_type_and_merges_string_data() {
    let s = secret(json!({META: meta(), "data": {"a": "b2xk", "keep": "eA=="},
        "stringData": {"a": "new", "c": "plain"}}));
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    assert_eq!(s.string_data, None);
    let data = s.data.unwrap();
    let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    assert_eq!(
        (text("a"), text("keep"), text("c")),
        ("new".into(), "x".into(), "plain".into())
    );
    // A given type is kept; empty stringData leaves data alone.
    let s = secret(json!({META: meta(), "type": "example.com/x", "stringData": {}}));
    assert_eq!(s.type_.as_deref(), Some("example.com/x"));
    assert_eq!(s.data, None);
}

#[test]
fn secret_keys_and_size() {
    let big = "x".repeat(MAX_SECRET_SIZE);
    let s = secret(json!({META: meta(), "stringData": {"big": big, "bad key": "y"}}));
    assert_eq!(
        messages(validate_secret(&s)),
        [
            "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
            "data: Too long: may not be more than 1048576 bytes",
        ]
    );
}

#[test]
fn well_known_secret_types_need_their_keys() {
    let cases: &[(&str, Value, &[&str])] = &[
        (
            "kubernetes.io/tls",
            json!({}),
            &[
                "data[tls.crt]: Required value",
                "data[tls.key]: Required value",
            ],
        ),
        (
            "kubernetes.io/tls",
            json!({"tls.crt": "", "tls.key": ""}),
            &[],
        ),
        (
            "kubernetes.io/dockerconfigjson",
            json!({}),
            &["data[.dockerconfigjson]: Required value"],
        ),
        (
            "kubernetes.io/dockerconfigjson",
            json!({".dockerconfigjson": "{\"auths\": {}}"}),
            &[],
        ),
        (
            "kubernetes.io/dockerconfigjson",
            json!({".dockerconfigjson": "[]"}),
            &[
                "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": json: cannot unmarshal array into Go value of type map[string]interface {}",
            ],
        ),
        (
            "kubernetes.io/dockercfg",
            json!({".dockercfg": "{\"a\": "}),
            &[
                "data[.dockercfg]: Invalid value: \"<secret contents redacted>\": unexpected end of JSON input",
            ],
        ),
        (
            "kubernetes.io/dockercfg",
            json!({".dockercfg": "x{}"}),
            &[
                "data[.dockercfg]: Invalid value: \"<secret contents redacted>\": invalid character 'x' looking for beginning of value",
            ],
        ),
        (
            "kubernetes.io/basic-auth",
            json!({}),
            &[
                "data[username]: Required value",
                "data[password]: Required value",
            ],
        ),
        ("kubernetes.io/basic-auth", json!({"password": ""}), &[]),
        (
            "kubernetes.io/ssh-auth",
            json!({"ssh-privatekey": ""}),
            &["data[ssh-privatekey]: Required value"],
        ),
        (
            "kubernetes.io/service-account-token",
            json!({}),
            &["metadata.annotations[kubernetes.io/service-account.name]: Required value"],
        ),
        ("bootstrap.kubernetes.io/token", json!({}), &[]),
    ];
    for (type_, string_data, expected) in cases {
        let s = secret(json!({META: meta(), "type": type_, "stringData": string_data}));
        assert_eq!(
            messages(validate_secret(&s)),
            *expected,
            "{type_} {string_data}"
        );
    }
}
