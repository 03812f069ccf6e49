use std::collections::BTreeMap;

use super::*;

const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

#[test]
fn dns1123_labels() {
    for ok in ["a", "ab", "a-b", "a--b", "0", "123-abc", &"a".repeat(63)] {
        assert!(is_dns1123_label(ok).is_empty(), "{ok}");
    }
    assert_eq!(is_dns1123_label(""), [LABEL_MSG]);
    assert_eq!(is_dns1123_label("-a"), [LABEL_MSG]);
    assert_eq!(is_dns1123_label("a-"), [LABEL_MSG]);
    assert_eq!(is_dns1123_label("A"), [LABEL_MSG]);
    assert_eq!(is_dns1123_label("a_b"), [LABEL_MSG]);
    assert_eq!(is_dns1123_label("a.b"), ["must not contain dots"]);
    assert_eq!(
        is_dns1123_label(&"a".repeat(64)),
        ["must be no more than 63 characters"]
    );
}

#[test]
fn dns1123_subdomains() {
    for ok in [
        "a",
        "a.b",
        "example.com",
        "1.2.3.4",
        "a-b.c-d",
        &"a".repeat(253),
    ] {
        assert!(is_dns1123_subdomain(ok).is_empty(), "{ok}");
    }
    for bad in ["", ".a", "a.", "a..b", "A.com", "a_b", "-a.b", "a.b-"] {
        assert_eq!(is_dns1123_subdomain(bad), [SUBDOMAIN_MSG], "{bad}");
    }
    assert_eq!(
        is_dns1123_subdomain(&"a".repeat(254)),
        ["must be no more than 253 characters"]
    );
}

#[test]
fn qualified_names() {
    for ok in [
        "a",
        "A",
        "simple",
        "now-with-dashes",
        "1-starts-with-num",
        "1234",
        "simple/simple",
        "now-with-dashes/simple",
        "now-with-dashes/now-with-dashes",
        "now.with.dots/simple",
        "now-with.dashes-and.dots/simple",
        "1-num.2-num/3-num",
        "1234/5678",
        "1.2.3.4/5678",
        "Uppercase_Is_OK_123",
        "example.com/Uppercase_Is_OK_123",
        "requests.storage-foo",
        &"a".repeat(63),
        &format!("{}/b", "a".repeat(253)),
    ] {
        assert!(is_qualified_name(ok).is_empty(), "{ok}");
    }
    let name_part = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    assert_eq!(is_qualified_name("nospecialchars%^=@"), [name_part]);
    assert_eq!(is_qualified_name("cantendwithadash-"), [name_part]);
    assert_eq!(is_qualified_name("-cantstartwithadash-"), [name_part]);
    assert_eq!(
        is_qualified_name(""),
        ["name part must be non-empty", name_part]
    );
    assert_eq!(
        is_qualified_name("/simple"),
        ["prefix part must be non-empty"]
    );
    assert_eq!(
        is_qualified_name(&"a".repeat(64)),
        ["name part must be no more than 63 characters"]
    );
    assert_eq!(
        is_qualified_name("Example.com/x"),
        [format!("prefix part {SUBDOMAIN_MSG}")]
    );
    assert_eq!(
        is_qualified_name("a/b/c"),
        [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    );
}

#[test]
fn label_values() {
    for ok in [
        "",
        "a",
        "simple",
        "now-with-dashes",
        "now.with.dots",
        "now_with_underscores",
        "1234",
        "A.B_C-D",
        &"a".repeat(63),
    ] {
        assert!(is_valid_label_value(ok).is_empty(), "{ok}");
    }
    let msg = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    for bad in [
        "nospecialchars%^=@",
        "Tama-nui-te-rā",
        "-leading",
        "trailing-",
        "with space",
    ] {
        assert_eq!(is_valid_label_value(bad), [msg], "{bad}");
    }
    assert_eq!(
        is_valid_label_value(&"a".repeat(64)),
        ["must be no more than 63 characters"]
    );
}

#[test]
fn env_var_names() {
    for ok in [
        "A", "ABC", "AbC_123", "_", "abc", "a.b", "a-b", "-a", "A_B.c-d",
    ] {
        assert!(is_env_var_name(ok).is_empty(), "{ok}");
    }
    let msg = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')";
    assert_eq!(is_env_var_name("1ABC"), [msg]);
    assert_eq!(is_env_var_name("A B"), [msg]);
    assert_eq!(is_env_var_name(".."), ["must not be '..'"]);
    assert_eq!(is_env_var_name("..a"), ["must not start with '..'"]);

    // The relaxed rule of 1.33.
    for ok in ["1ABC", "A B", "a.b", "$HOME", "~", "!@#%^&*()", " "] {
        assert!(is_relaxed_env_var_name(ok).is_empty(), "{ok}");
    }
    let relaxed = "a valid environment variable name must consist only of printable ASCII characters other than '='";
    assert_eq!(is_relaxed_env_var_name("A=B"), [relaxed]);
    assert_eq!(is_relaxed_env_var_name("tab\there"), [relaxed]);
    assert_eq!(is_relaxed_env_var_name("ünïcode"), [relaxed]);
    assert_eq!(
        is_relaxed_env_var_name(""),
        ["environment variable name must be non-empty"]
    );
}

#[test]
fn config_map_keys() {
    for ok in ["a", "a.b", ".a", "a-b", "A_B", "1"] {
        assert!(is_config_map_key(ok).is_empty(), "{ok}");
    }
    let msg = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
    assert_eq!(is_config_map_key("a/b"), [msg]);
    assert_eq!(is_config_map_key(""), [msg]);
    assert_eq!(is_config_map_key("."), ["must not be '.'"]);
    assert_eq!(is_config_map_key("..a"), ["must not start with '..'"]);
}

#[test]
fn ports() {
    assert!(is_valid_port_num(1).is_empty());
    assert!(is_valid_port_num(65535).is_empty());
    assert_eq!(
        is_valid_port_num(0),
        ["must be between 1 and 65535, inclusive"]
    );
    assert_eq!(
        is_valid_port_num(65536),
        ["must be between 1 and 65535, inclusive"]
    );

    for ok in [
        "telnet",
        "re-mail-ck",
        "pop3",
        "a",
        "a-1",
        "1-a",
        "a-1-b-2-c",
        "1-a-2-b-3",
    ] {
        assert!(is_valid_port_name(ok).is_empty(), "{ok}");
    }
    assert_eq!(
        is_valid_port_name("longerthan15characters"),
        ["must be no more than 15 characters"]
    );
    assert_eq!(
        is_valid_port_name(""),
        [
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            "must contain at least one letter (a-z)",
        ]
    );
    assert_eq!(
        is_valid_port_name("12345"),
        ["must contain at least one letter (a-z)"]
    );
    assert_eq!(
        is_valid_port_name("a--b"),
        ["must not contain consecutive hyphens"]
    );
    assert_eq!(
        is_valid_port_name("-ab"),
        ["must not begin or end with a hyphen"]
    );
    assert_eq!(
        is_valid_port_name("Upper"),
        ["must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"]
    );
}

#[test]
fn header_names_and_ids() {
    assert!(is_http_header_name("X-Forwarded-For").is_empty());
    assert_eq!(
        is_http_header_name("X Forwarded"),
        [
            "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')"
        ]
    );
    assert!(is_valid_user_id(0).is_empty());
    assert!(is_valid_user_id(2_147_483_647).is_empty());
    assert_eq!(
        is_valid_user_id(-1),
        ["must be between 0 and 2147483647, inclusive"]
    );
    assert_eq!(
        is_valid_group_id(2_147_483_648),
        ["must be between 0 and 2147483647, inclusive"]
    );
}

#[test]
fn generate_name_prefixes_may_end_in_a_dash() {
    assert!(name_is_dns_subdomain("web-", true).is_empty());
    assert!(!name_is_dns_subdomain("web-", false).is_empty());
    assert!(name_is_dns_label("job-", true).is_empty());
    assert!(name_is_dns_subdomain("a-", true).is_empty());
    // Upstream replaces the last two characters, so a dash before the trailing one is hidden too.
    assert!(name_is_dns_subdomain("a--", true).is_empty());
    assert!(!name_is_dns_subdomain("-", true).is_empty());
}

#[test]
fn labels_and_annotations_report_on_the_map() {
    let path = FieldPath::new("metadata").child("labels");
    let labels: BTreeMap<String, String> = [("ok".to_owned(), "bad value".to_owned())]
        .into_iter()
        .collect();
    let errs: Vec<String> = validate_labels(&labels, &path)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("metadata.labels: Invalid value: \"bad value\": a valid label"));

    let path = FieldPath::new("metadata").child("annotations");
    let annotations: BTreeMap<String, String> = [
        ("Example.COM/Key".to_owned(), "v".to_owned()),
        ("bad key".to_owned(), "v".to_owned()),
    ]
    .into_iter()
    .collect();
    let errs: Vec<String> = validate_annotations(&annotations, &path)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("metadata.annotations: Invalid value: \"bad key\": name part"));
}

#[test]
fn go_quote_matches_strconv_quote() {
    assert_eq!(go_quote("plain"), "\"plain\"");
    assert_eq!(go_quote("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
    assert_eq!(go_quote("tab\tback\\slash"), "\"tab\\tback\\\\slash\"");
    assert_eq!(
        go_quote("bell\u{7}del\u{7f}nul\0"),
        "\"bell\\adel\\x7fnul\\x00\""
    );
    assert_eq!(go_quote("héllo"), "\"héllo\"");
    assert_eq!(go_quote("zero\u{200b}width"), "\"zero\\u200bwidth\"");
}
