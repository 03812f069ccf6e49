use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use serde_json::json;

use super::field::{escape_value, split_term, split_terms, unescape_value};
use super::label::lex_all;
use super::*;

fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn parse(s: &str) -> LabelSelector {
    LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn parse_err(s: &str) -> String {
    match LabelSelector::parse(s) {
        Ok(sel) => panic!("{s:?} parsed as {sel:?}"),
        Err(e) => e.to_string(),
    }
}

fn req(key: &str, op: Operator, values: &[&str]) -> Requirement {
    Requirement::new(key, op, values.iter().map(|v| (*v).to_owned()).collect())
        .unwrap_or_else(|e| panic!("{key}: {e}"))
}

// labels/selector_test.go TestSelectorParse.
#[test]
fn label_parse_good_and_bad_strings() {
    for good in [
        "x=a,y=b,z=c",
        "",
        "x!=a,y=b",
        "x=",
        "x= ",
        "x=,z= ",
        "x= ,z= ",
        "!x",
        "x>1",
        "x>1,z<5",
    ] {
        let sel = parse(good);
        assert_eq!(sel.to_string(), good.replace(' ', ""), "{good:?}");
    }
    for bad in ["x=a||y=b", "x==a==b", "!x=a", "x<a"] {
        parse_err(bad);
    }
}

// TestDeterministicParse.
#[test]
fn label_parse_is_deterministic() {
    assert_eq!(parse("x=a,a=x").to_string(), parse("a=x,x=a").to_string());
    assert_eq!(parse("x=a,a=x").to_string(), "a=x,x=a");
}

// TestSelectorMatches.
#[test]
fn label_selector_matches() {
    let yes = [
        ("", set(&[("x", "y")])),
        ("x=y", set(&[("x", "y")])),
        ("x=y,z=w", set(&[("x", "y"), ("z", "w")])),
        ("x!=y,z!=w", set(&[("x", "z"), ("z", "a")])),
        ("notin=in", set(&[("notin", "in")])),
        ("x", set(&[("x", "z")])),
        ("!x", set(&[("y", "z")])),
        ("x>1", set(&[("x", "2")])),
        ("x<1", set(&[("x", "0")])),
    ];
    for (s, labels) in yes {
        assert!(parse(s).matches(&labels), "{s:?} should match {labels:?}");
    }
    let no = [
        ("x=z", set(&[])),
        ("x=y", set(&[("x", "z")])),
        ("x=y,z=w", set(&[("x", "w"), ("z", "w")])),
        ("x!=y,z!=w", set(&[("x", "z"), ("z", "w")])),
        ("x", set(&[("y", "z")])),
        ("!x", set(&[("x", "z")])),
        ("x>1", set(&[("x", "0")])),
        ("x<1", set(&[("x", "2")])),
    ];
    for (s, labels) in no {
        assert!(
            !parse(s).matches(&labels),
            "{s:?} should not match {labels:?}"
        );
    }
    let labels = set(&[("foo", "bar"), ("baz", "blah")]);
    assert!(parse("foo=bar").matches(&labels));
    assert!(parse("baz=blah").matches(&labels));
    assert!(parse("foo=bar,baz=blah").matches(&labels));
    assert!(!parse("foo=blah").matches(&labels));
    assert!(!parse("baz=bar").matches(&labels));
    assert!(!parse("foo=bar,foobar=bar,baz=blah").matches(&labels));
}

// TestSetMatches, TestEverything, TestNilMapIsValid, TestSetIsEmpty.
#[test]
fn label_selector_from_set_everything_and_nothing() {
    let labels = set(&[("foo", "bar"), ("baz", "blah")]);
    for s in [
        set(&[]),
        set(&[("foo", "bar")]),
        set(&[("baz", "blah")]),
        set(&[("foo", "bar"), ("baz", "blah")]),
    ] {
        assert!(LabelSelector::from_set(&s).matches(&labels), "{s:?}");
    }
    assert!(!LabelSelector::from_set(&set(&[("foo", "=blah")])).matches(&labels));
    assert!(LabelSelector::from_set(&set(&[])).is_empty());
    assert!(LabelSelector::everything().matches(&set(&[("x", "y")])));
    assert!(LabelSelector::everything().is_empty());
    assert!(!LabelSelector::nothing().matches(&set(&[])));
    assert!(!LabelSelector::nothing().is_empty());
    assert_eq!(LabelSelector::nothing().to_string(), "");
    assert_eq!(
        LabelSelector::from_set(&set(&[("b", "2"), ("a", "1")])).to_string(),
        "a=1,b=2"
    );
}

// TestLexer.
#[test]
fn lexer_single_tokens() {
    let cases = [
        (",", "Comma"),
        ("notin", "NotIn"),
        ("in", "In"),
        ("=", "Equals"),
        ("==", "DoubleEquals"),
        (">", "GreaterThan"),
        ("<", "LessThan"),
        ("!", "DoesNotExist"),
        ("!=", "NotEquals"),
        ("(", "OpenPar"),
        (")", "ClosedPar"),
        ("~", "Identifier"),
        ("||", "Identifier"),
    ];
    for (s, want) in cases {
        assert_eq!(lex_all(s), vec![(want, s.to_owned())], "{s:?}");
    }
    assert!(lex_all("").is_empty());
}

// TestLexerSequence.
#[test]
fn lexer_sequences() {
    let cases: &[(&str, &[&str])] = &[
        (
            "key in ( value )",
            &["Identifier", "In", "OpenPar", "Identifier", "ClosedPar"],
        ),
        (
            "key notin ( value )",
            &["Identifier", "NotIn", "OpenPar", "Identifier", "ClosedPar"],
        ),
        (
            "key in ( value1, value2 )",
            &[
                "Identifier",
                "In",
                "OpenPar",
                "Identifier",
                "Comma",
                "Identifier",
                "ClosedPar",
            ],
        ),
        ("key", &["Identifier"]),
        ("!key", &["DoesNotExist", "Identifier"]),
        ("()", &["OpenPar", "ClosedPar"]),
        (
            "x in (),y",
            &[
                "Identifier",
                "In",
                "OpenPar",
                "ClosedPar",
                "Comma",
                "Identifier",
            ],
        ),
        (
            "== != (), = notin",
            &[
                "DoubleEquals",
                "NotEquals",
                "OpenPar",
                "ClosedPar",
                "Comma",
                "Equals",
                "NotIn",
            ],
        ),
        ("key>2", &["Identifier", "GreaterThan", "Identifier"]),
        ("key<1", &["Identifier", "LessThan", "Identifier"]),
    ];
    for (s, want) in cases {
        let got: Vec<&str> = lex_all(s).into_iter().map(|(t, _)| t).collect();
        assert_eq!(&got, want, "{s:?}");
    }
}

// TestRequirementConstructor.
#[test]
fn requirement_constructor() {
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let long = "a".repeat(254);
    let cases: Vec<(&str, Operator, Vec<String>, bool)> = vec![
        ("x", Operator::In, vec![], false),
        ("x", Operator::NotIn, vec![], false),
        ("x", Operator::In, strings(&["foo"]), true),
        ("x", Operator::NotIn, strings(&["foo"]), true),
        ("x", Operator::Exists, vec![], true),
        ("x", Operator::DoesNotExist, vec![], true),
        ("1foo", Operator::In, strings(&["bar"]), true),
        ("1234", Operator::In, strings(&["bar"]), true),
        ("y", Operator::GreaterThan, strings(&["1"]), true),
        ("z", Operator::LessThan, strings(&["6"]), true),
        ("foo", Operator::GreaterThan, strings(&["bar"]), false),
        ("barz", Operator::LessThan, strings(&["blah"]), false),
        (&long, Operator::Exists, vec![], false),
    ];
    for (key, op, values, ok) in cases {
        let got = Requirement::new(key, op, values.clone());
        assert_eq!(got.is_ok(), ok, "{key} {op:?} {values:?}: {got:?}");
    }
}

// TestToString.
#[test]
fn requirements_to_string() {
    let sel = |reqs: Vec<Requirement>| {
        reqs.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(
        sel(vec![
            req("x", Operator::In, &["abc", "def"]),
            req("y", Operator::NotIn, &["jkl"]),
            req("z", Operator::Exists, &[]),
        ]),
        "x in (abc,def),y notin (jkl),z"
    );
    assert_eq!(
        sel(vec![
            req("x", Operator::NotIn, &["abc", "def"]),
            req("y", Operator::NotEquals, &["jkl"]),
            req("z", Operator::DoesNotExist, &[]),
        ]),
        "x notin (abc,def),y!=jkl,!z"
    );
    assert_eq!(
        sel(vec![
            req("x", Operator::NotIn, &["abc"]),
            req("y", Operator::In, &["jkl", "mno"]),
            req("z", Operator::NotIn, &[""]),
        ]),
        "x notin (abc),y in (jkl,mno),z notin ()"
    );
    assert_eq!(
        sel(vec![
            req("x", Operator::Equals, &["abc"]),
            req("y", Operator::DoubleEquals, &["jkl"]),
            req("z", Operator::NotEquals, &["a"]),
            req("z", Operator::Exists, &[]),
        ]),
        "x=abc,y==jkl,z!=a,z"
    );
    assert_eq!(
        sel(vec![
            req("x", Operator::GreaterThan, &["2"]),
            req("y", Operator::LessThan, &["8"]),
            req("z", Operator::Exists, &[]),
        ]),
        "x>2,y<8,z"
    );
    // Unsorted values print sorted without changing the requirement (TestSafeSort).
    let r = req("x", Operator::In, &["foo", "bar"]);
    assert_eq!(r.to_string(), "x in (bar,foo)");
    assert_eq!(r.values(), ["foo", "bar"]);
}

// TestRequirementSelectorMatching.
#[test]
fn requirement_selector_matching() {
    let m = |labels: BTreeMap<String, String>, reqs: Vec<Requirement>| {
        reqs.iter().all(|r| r.matches(&labels))
    };
    let xy = || set(&[("x", "foo"), ("y", "baz")]);
    assert!(m(
        xy(),
        vec![
            req("x", Operator::In, &["foo"]),
            req("y", Operator::NotIn, &["alpha"])
        ]
    ));
    assert!(!m(
        xy(),
        vec![
            req("x", Operator::In, &["foo"]),
            req("y", Operator::In, &["alpha"])
        ]
    ));
    let y = || set(&[("y", "")]);
    assert!(m(
        y(),
        vec![
            req("x", Operator::NotIn, &[""]),
            req("y", Operator::Exists, &[])
        ]
    ));
    assert!(m(
        y(),
        vec![
            req("x", Operator::DoesNotExist, &[]),
            req("y", Operator::Exists, &[])
        ]
    ));
    assert!(!m(
        y(),
        vec![
            req("x", Operator::NotIn, &[""]),
            req("y", Operator::DoesNotExist, &[])
        ]
    ));
    assert!(!m(
        set(&[("y", "baz")]),
        vec![req("x", Operator::In, &[""])]
    ));
    assert!(m(
        set(&[("z", "2")]),
        vec![req("z", Operator::GreaterThan, &["1"])]
    ));
    assert!(!m(
        set(&[("z", "v2")]),
        vec![req("z", Operator::GreaterThan, &["1"])]
    ));
}

// TestSetSelectorParser: (input, expected requirements or None for an error).
#[test]
fn set_selector_parser() {
    use Operator::*;
    let cases: Vec<(&str, Option<Vec<Requirement>>)> = vec![
        ("", Some(vec![])),
        ("\rx", Some(vec![req("x", Exists, &[])])),
        (
            "this-is-a-dns.domain.com/key-with-dash",
            Some(vec![req(
                "this-is-a-dns.domain.com/key-with-dash",
                Exists,
                &[],
            )]),
        ),
        (
            "this-is-another-dns.domain.com/key-with-dash in (so,what)",
            Some(vec![req(
                "this-is-another-dns.domain.com/key-with-dash",
                In,
                &["so", "what"],
            )]),
        ),
        (
            "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
            Some(vec![req(
                "0.1.2.domain/99",
                NotIn,
                &["10.10.100.1", "tick.tack.clock"],
            )]),
        ),
        ("foo  in\t (abc)", Some(vec![req("foo", In, &["abc"])])),
        ("x notin\n (abc)", Some(vec![req("x", NotIn, &["abc"])])),
        (
            "x  notin\t\t\t(abc,def)",
            Some(vec![req("x", NotIn, &["abc", "def"])]),
        ),
        ("x in (abc,def)", Some(vec![req("x", In, &["abc", "def"])])),
        ("x in (abc,)", Some(vec![req("x", In, &["", "abc"])])),
        ("x in ()", Some(vec![req("x", In, &[""])])),
        (
            "x notin (abc,def),bar,z in (),w",
            // Upstream's table lists "" among x's values, which its parser (ported here) does
            // not produce for `(abc,def)`; the parser wins.
            Some(vec![
                req("bar", Exists, &[]),
                req("w", Exists, &[]),
                req("x", NotIn, &["abc", "def"]),
                req("z", In, &[""]),
            ]),
        ),
        (
            "x,y in (a)",
            Some(vec![req("x", Exists, &[]), req("y", In, &["a"])]),
        ),
        ("x=a", Some(vec![req("x", Equals, &["a"])])),
        ("x>1", Some(vec![req("x", GreaterThan, &["1"])])),
        ("x<7", Some(vec![req("x", LessThan, &["7"])])),
        (
            "x=a,y!=b",
            Some(vec![req("x", Equals, &["a"]), req("y", NotEquals, &["b"])]),
        ),
        (
            "x=a,y!=b,z in (h,i,j)",
            Some(vec![
                req("x", Equals, &["a"]),
                req("y", NotEquals, &["b"]),
                req("z", In, &["h", "i", "j"]),
            ]),
        ),
        ("x=a||y=b", None),
        (
            "x,y",
            Some(vec![req("x", Exists, &[]), req("y", Exists, &[])]),
        ),
        (",x,y", None),
        ("x nott in (y)", None),
        ("x notin ( )", Some(vec![req("x", NotIn, &[""])])),
        ("x notin (, a)", Some(vec![req("x", NotIn, &["", "a"])])),
        ("a in (xyz),", None),
        ("a in (xyz)b notin ()", None),
        ("a ", Some(vec![req("a", Exists, &[])])),
        (
            "a in (x,y,notin, z,in)",
            Some(vec![req("a", In, &["in", "notin", "x", "y", "z"])]),
        ),
        ("a in (xyz abc)", None),
        ("a notin(", None),
        ("a (", None),
        ("(", None),
    ];
    for (input, want) in cases {
        match (LabelSelector::parse(input), want) {
            (Ok(sel), Some(want)) => assert_eq!(sel.requirements(), want, "{input:?}"),
            (Err(_), None) => {}
            (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
        }
    }
}

// Upstream's exact error texts, which the API returns in a 400 Status.
#[test]
fn label_parse_error_messages() {
    let cases = [
        (
            "a b",
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
        ),
        (
            "x=a||y=b",
            "unable to parse requirement: values[0][x]: Invalid value: \"a||y\": a valid label \
             must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and \
             must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  \
             or '12345', regex used for validation is \
             '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ),
        ("x==a==b", "found '==', expected: ',' or 'end of string'"),
        ("!x=a", "found '=', expected: ',' or 'end of string'"),
        (
            "x<a",
            "unable to parse requirement: values[0]: Invalid value: \"a\": \
             for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        (
            ",x",
            "found ',', expected: !, identifier, or 'end of string'",
        ),
        ("x,", "found '', expected: identifier after ','"),
        (
            "a in (xyz abc)",
            "unable to parse requirement: found 'abc', expected: ',' or ')'",
        ),
        (
            "a notin(",
            "unable to parse requirement: found '', expected: ',', ')' or identifier",
        ),
        (
            "a in x",
            "unable to parse requirement: found 'x' expected: '('",
        ),
        (
            "!",
            "unable to parse requirement: found '', expected: identifier",
        ),
        (
            "x=(",
            "unable to parse requirement: found '(', expected: identifier",
        ),
        (
            "a/b/c=d",
            "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must \
             consist of alphanumeric characters, '-', '_' or '.', and must start and end with an \
             alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for \
             validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS \
             subdomain prefix and '/' (e.g. 'example.com/MyName')",
        ),
        (
            "app=-bad",
            "unable to parse requirement: values[0][app]: Invalid value: \"-bad\": a valid label \
             must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and \
             must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  \
             or '12345', regex used for validation is \
             '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(parse_err(input), want, "{input:?}");
    }
}

#[test]
fn label_parse_values_are_sorted_and_unique_and_in_is_a_value_after_operator() {
    let sel = parse("env in (prod, dev, prod),tier notin (in)");
    assert_eq!(sel.to_string(), "env in (dev,prod),tier notin (in)");
    assert!(sel.matches(&set(&[("env", "dev"), ("tier", "web")])));
    assert!(!sel.matches(&set(&[("env", "dev"), ("tier", "in")])));
    assert!(!sel.matches(&set(&[("tier", "web")])));
    // `notin` and `in` are plain values after `=`.
    assert!(parse("a=in").matches(&set(&[("a", "in")])));
    // A NUL byte where a token starts ends the input, as upstream's lexer reads it.
    assert_eq!(parse("a=b \0garbage(").to_string(), "a=b");
}

fn label_selector_object(value: serde_json::Value) -> metav1::LabelSelector {
    serde_json::from_value(value).unwrap()
}

// metav1 helpers_test.go TestLabelSelectorAsSelector.
#[test]
fn from_label_selector_object() {
    let cases = [
        (json!({}), Some("")),
        (json!({"matchLabels": {"foo": "bar"}}), Some("foo=bar")),
        (
            json!({"matchExpressions": [{"key": "foo", "operator": "In", "values": ["bar", "baz"]}]}),
            Some("foo in (bar,baz)"),
        ),
        (
            json!({
                "matchLabels": {"foo": "bar"},
                "matchExpressions": [
                    {"key": "baz", "operator": "In", "values": ["qux", "norf"]},
                    {"key": "x", "operator": "NotIn", "values": ["a"]},
                    {"key": "y", "operator": "Exists"},
                    {"key": "z", "operator": "DoesNotExist"}
                ]
            }),
            Some("baz in (norf,qux),foo=bar,x notin (a),y,!z"),
        ),
        (
            json!({"matchExpressions": [{"key": "foo", "operator": "In"}]}),
            None,
        ),
        (
            json!({"matchExpressions": [{"key": "foo", "operator": "Gt", "values": ["1"]}]}),
            None,
        ),
    ];
    for (object, want) in cases {
        let got = LabelSelector::from_label_selector(&label_selector_object(object.clone()));
        match (got, want) {
            (Ok(sel), Some(want)) => assert_eq!(sel.to_string(), want, "{object}"),
            (Err(_), None) => {}
            (got, want) => panic!("{object}: got {got:?}, want {want:?}"),
        }
    }
    let sel = LabelSelector::from_label_selector(&label_selector_object(json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "track", "operator": "NotIn", "values": ["canary"]}]
    })))
    .unwrap();
    assert!(sel.matches(&set(&[("app", "web")])));
    assert!(sel.matches(&set(&[("app", "web"), ("track", "stable")])));
    assert!(!sel.matches(&set(&[("app", "web"), ("track", "canary")])));
    assert!(!sel.matches(&set(&[("app", "db")])));
    // A missing selector matches nothing; an empty one everything.
    assert!(
        !LabelSelector::from_optional_label_selector(None)
            .unwrap()
            .matches(&set(&[]))
    );
    assert!(
        LabelSelector::from_optional_label_selector(Some(&metav1::LabelSelector::default()))
            .unwrap()
            .matches(&set(&[("a", "b")]))
    );
}

#[test]
fn from_label_selector_object_errors() {
    let err = |value: serde_json::Value| {
        LabelSelector::from_label_selector(&label_selector_object(value))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(json!({"matchExpressions": [{"key": "foo", "operator": "Gt", "values": ["1"]}]})),
        "\"Gt\" is not a valid label selector operator"
    );
    assert_eq!(
        err(json!({"matchExpressions": [{"key": "foo", "operator": "In"}]})),
        "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"
    );
    assert_eq!(
        err(json!({"matchExpressions": [{"key": "foo", "operator": "Exists", "values": ["a"]}]})),
        "values: Invalid value: []string{\"a\"}: values set must be empty for exists and does not exist"
    );
    assert_eq!(
        err(json!({"matchLabels": {"-x": "a b"}})),
        "[key: Invalid value: \"-x\": name part must consist of alphanumeric characters, '-', '_' \
         or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or \
         'my.name',  or '123-abc', regex used for validation is \
         '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'), values[0][-x]: Invalid value: \"a b\": a \
         valid label must be an empty string or consist of alphanumeric characters, '-', '_' or \
         '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or \
         'my_value',  or '12345', regex used for validation is \
         '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')]"
    );
}

#[test]
fn format_label_selector_and_labels() {
    assert_eq!(format_label_selector(None), "<none>");
    assert_eq!(
        format_label_selector(Some(&metav1::LabelSelector::default())),
        "<none>"
    );
    assert_eq!(
        format_label_selector(Some(&label_selector_object(
            json!({"matchLabels": {"app": "web", "tier": "fe"}})
        ))),
        "app=web,tier=fe"
    );
    assert_eq!(
        format_label_selector(Some(&label_selector_object(
            json!({"matchExpressions": [{"key": "a", "operator": "Bad"}]})
        ))),
        "<error>"
    );
    assert_eq!(format_labels(&set(&[])), "<none>");
    assert_eq!(format_labels(&set(&[("b", "2"), ("a", "1")])), "a=1,b=2");
}

#[test]
fn matches_object_reads_metadata_labels() {
    let sel = parse("app=web");
    assert!(sel.matches_object(&json!({"metadata": {"labels": {"app": "web"}}})));
    assert!(!sel.matches_object(&json!({"metadata": {"name": "x"}})));
    assert!(parse("!app").matches_object(&json!({})));
}

// fields/selector_test.go TestSplitTerms.
#[test]
fn field_split_terms() {
    let cases: &[(&str, &[&str])] = &[
        ("a", &["a"]),
        ("a=avalue", &["a=avalue"]),
        ("a=avalue,b=bvalue", &["a=avalue", "b=bvalue"]),
        (
            "a=avalue,b==bvalue,c!=cvalue",
            &["a=avalue", "b==bvalue", "c!=cvalue"],
        ),
        ("", &[]),
        ("a=a,", &["a=a", ""]),
        (",a=a", &["", "a=a"]),
        (r"k=\,,k2=v2", &[r"k=\,", "k2=v2"]),
        (r"k=\\,k2=v2", &[r"k=\\", "k2=v2"]),
        (r"k=\\\,,k2=v2", &[r"k=\\\,", "k2=v2"]),
        (r"k=\a\b\", &[r"k=\a\b\"]),
        (r"k=\", &[r"k=\"]),
        ("함=수,목=록", &["함=수", "목=록"]),
    ];
    for (selector, want) in cases {
        assert_eq!(&split_terms(selector), want, "{selector:?}");
    }
}

// TestSplitTerm.
#[test]
fn field_split_term() {
    type Split<'a> = Option<(&'a str, &'a str, &'a str)>;
    let cases: &[(&str, Split)] = &[
        ("a=value", Some(("a", "=", "value"))),
        ("b==value", Some(("b", "==", "value"))),
        ("c!=value", Some(("c", "!=", "value"))),
        ("", None),
        ("a", None),
        (r"k=\,", Some(("k", "=", r"\,"))),
        (r"k=\=", Some(("k", "=", r"\="))),
        (r"k=\\\a\b\=\,\", Some(("k", "=", r"\\\a\b\=\,\"))),
        ("함=수", Some(("함", "=", "수"))),
    ];
    for (term, want) in cases {
        assert_eq!(split_term(term), *want, "{term:?}");
    }
}

// TestEscapeValue.
#[test]
fn field_escape_and_unescape() {
    let cases = [
        ("", ""),
        ("a", "a"),
        ("=", r"\="),
        (",", r"\,"),
        (r"\", r"\\"),
        (r"\=\,\", r"\\\=\\\,\\"),
    ];
    for (raw, escaped) in cases {
        assert_eq!(escape_value(raw), escaped);
        assert_eq!(unescape_value(escaped).unwrap(), raw);
    }
    for invalid in [r"\", r"\\\", r"\a"] {
        assert!(
            matches!(
                unescape_value(invalid),
                Err(SelectorError::InvalidEscapeSequence(_))
            ),
            "{invalid:?}"
        );
    }
}

// TestSelectorParse, TestDeterministicParse.
#[test]
fn field_parse_good_and_bad_strings() {
    for good in ["x=a,y=b,z=c", "", "x!=a,y=b", r"x=a||y\=b", r"x=a\=\=b"] {
        let sel = FieldSelector::parse(good).unwrap_or_else(|e| panic!("{good:?}: {e}"));
        assert_eq!(sel.to_string(), good);
    }
    for bad in [
        "x=a||y=b",
        "x==a==b",
        "x=a,b",
        "x in (a)",
        "x in (a,b,c)",
        "x",
    ] {
        assert!(FieldSelector::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        FieldSelector::parse("x=a,a=x").unwrap().to_string(),
        FieldSelector::parse("a=x,x=a").unwrap().to_string()
    );
}

#[test]
fn field_parse_error_messages() {
    let err = |s: &str| FieldSelector::parse(s).unwrap_err().to_string();
    assert_eq!(err("x"), "invalid selector: 'x'; can't understand 'x'");
    assert_eq!(
        err("a=b,x in (a)"),
        "invalid selector: 'a=b,x in (a)'; can't understand 'x in (a)'"
    );
    assert_eq!(
        err("x==a==b"),
        "invalid field selector: unescaped character in value: 61"
    );
    assert_eq!(
        err(r"x=a\b"),
        r"invalid field selector: invalid escape sequence: \b"
    );
    assert_eq!(
        err(r"x=a\"),
        r"invalid field selector: invalid escape sequence: \"
    );
}

// TestSelectorMatches, against a Pod's fields.
#[test]
fn field_selector_matches_pod_fields() {
    let pod = json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"nodeName": "node-1", "restartPolicy": "Always"},
        "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}]}
    });
    let m = |s: &str| {
        FieldSelector::parse(s)
            .unwrap()
            .matches("Pod", &pod)
            .unwrap()
    };
    assert!(m(""));
    assert!(m("metadata.name=web"));
    assert!(m("metadata.name==web,metadata.namespace=default"));
    assert!(!m("metadata.name=db"));
    assert!(m("metadata.name!=db"));
    assert!(m("status.phase=Running,spec.nodeName=node-1"));
    assert!(m("status.phase!=Pending,spec.restartPolicy=Always"));
    assert!(m("status.podIP=10.0.0.5"));
    assert!(m("spec.host=node-1"));
    assert!(m("spec.hostNetwork=false"));
    assert!(m("spec.schedulerName="));
    assert!(m("status.podIPs="));
    assert!(!m("status.nominatedNodeName!="));
    // A v1 pod with only `podIP`.
    let legacy = json!({"status": {"podIP": "10.0.0.6"}});
    assert!(
        FieldSelector::parse("status.podIP=10.0.0.6")
            .unwrap()
            .matches("Pod", &legacy)
            .unwrap()
    );
}

#[test]
fn field_selector_values_with_escapes() {
    let event = json!({"metadata": {"name": "a,b=c\\d"}});
    let sel = FieldSelector::parse(r"metadata.name=a\,b\=c\\d").unwrap();
    assert!(sel.matches("Event", &event).unwrap());
    assert_eq!(sel.requires_exact_match("metadata.name"), Some("a,b=c\\d"));
    assert_eq!(sel.to_string(), r"metadata.name=a\,b\=c\\d");
}

#[test]
fn field_selector_event_fields() {
    let event = json!({
        "metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "u1",
                           "apiVersion": "v1", "resourceVersion": "7",
                           "fieldPath": "spec.containers{app}"},
        "reason": "Started",
        "type": "Normal",
        "reportingComponent": "kubelet",
        "source": {}
    });
    let m = |s: &str| {
        FieldSelector::parse(s)
            .unwrap()
            .matches("Event", &event)
            .unwrap()
    };
    assert!(m(
        "involvedObject.name=web,involvedObject.namespace=default,involvedObject.uid=u1"
    ));
    assert!(m("involvedObject.kind=Pod,involvedObject.apiVersion=v1"));
    assert!(m("involvedObject.resourceVersion=7"));
    assert!(m(r"involvedObject.fieldPath=spec.containers{app}"));
    assert!(m("reason=Started,type=Normal,reportingComponent=kubelet"));
    // `source` falls back to the reporting component.
    assert!(m("source=kubelet"));
    assert!(!m("type=Warning"));
}

#[test]
fn field_selector_other_kinds() {
    let m = |kind: &str, s: &str, o: serde_json::Value| {
        FieldSelector::parse(s).unwrap().matches(kind, &o).unwrap()
    };
    assert!(m(
        "Secret",
        "type=Opaque",
        json!({"type": "Opaque", "metadata": {"name": "s"}})
    ));
    assert!(m(
        "Namespace",
        "status.phase=Active",
        json!({"status": {"phase": "Active"}})
    ));
    assert!(m("ReplicaSet", "status.replicas=0", json!({"status": {}})));
    assert!(m(
        "ReplicaSet",
        "status.replicas=3",
        json!({"status": {"replicas": 3}})
    ));
    assert!(m(
        "Service",
        "spec.type=ClusterIP,spec.clusterIP=10.96.0.1",
        json!({"spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1"}})
    ));
    assert!(m(
        "Deployment",
        "metadata.name=api,metadata.namespace=default",
        json!({"metadata": {"name": "api", "namespace": "default"}})
    ));
    assert!(m(
        "Node",
        "spec.unschedulable=false",
        json!({"metadata": {"name": "n"}})
    ));
}

#[test]
fn field_selector_unsupported_fields() {
    let err = |kind: &str, s: &str| {
        FieldSelector::parse(s)
            .unwrap()
            .matches(kind, &json!({}))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("Pod", "spec.foo=a"),
        "field label not supported: spec.foo"
    );
    assert_eq!(
        err("Event", "metadata.uid=a"),
        "field label not supported: metadata.uid"
    );
    assert_eq!(
        err("Namespace", "metadata.namespace=a"),
        "field label not supported: metadata.namespace"
    );
    assert_eq!(err("Secret", "data=a"), "field label not supported: data");
    assert_eq!(
        err("ConfigMap", "data.x=a"),
        "\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    );
    assert_eq!(
        err("Deployment", "status.replicas=1"),
        "\"status.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    );
    // The check does not need an object: `for_kind` fails before any listing.
    let sel = FieldSelector::parse("status.phase=Running,spec.x=1").unwrap();
    assert!(sel.for_kind("Pod").is_err());
    assert_eq!(
        FieldSelector::parse("spec.host=n")
            .unwrap()
            .for_kind("Pod")
            .unwrap()
            .to_string(),
        "spec.nodeName=n"
    );
}
