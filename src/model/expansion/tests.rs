use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, EnvVar};

use super::{expand, expand_command_and_args, expand_command_only_static, mapping_for};

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Upstream `TestMapReference`: each variable sees the ones before it.
#[test]
fn map_reference() {
    let envs = [("FOO", "bar"), ("ZOO", "$(FOO)-1"), ("BLU", "$(ZOO)-2")];
    let mut declared = map(&envs);
    let service = HashMap::new();
    for (name, value) in envs {
        let expanded = {
            let contexts = [&declared, &service];
            expand(value, mapping_for(&contexts))
        };
        declared.insert(name.to_owned(), expanded);
    }
    assert_eq!(
        declared,
        map(&[("FOO", "bar"), ("ZOO", "bar-1"), ("BLU", "bar-1-2")])
    );
}

/// Upstream `doExpansionTest`, every case.
fn expansion_cases(mapping: impl Fn(&str) -> String) {
    let cases = [
        ("whole string", "$(VAR_A)", "A"),
        ("repeat", "$(VAR_A)-$(VAR_A)", "A-A"),
        ("beginning", "$(VAR_A)-1", "A-1"),
        ("middle", "___$(VAR_B)___", "___B___"),
        ("end", "___$(VAR_C)", "___C"),
        ("compound", "$(VAR_A)_$(VAR_B)_$(VAR_C)", "A_B_C"),
        ("escape & expand", "$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),
        (
            "compound escape",
            "$$(VAR_A)_$$(VAR_B)",
            "$(VAR_A)_$(VAR_B)",
        ),
        ("mixed in escapes", "f000-$$VAR_A", "f000-$VAR_A"),
        ("backslash escape ignored", "foo\\$(VAR_C)bar", "foo\\Cbar"),
        (
            "backslash escape ignored",
            "foo\\\\$(VAR_C)bar",
            "foo\\\\Cbar",
        ),
        (
            "lots of backslashes",
            "foo\\\\\\\\$(VAR_A)bar",
            "foo\\\\\\\\Abar",
        ),
        (
            "nested var references",
            "$(VAR_A$(VAR_B))",
            "$(VAR_A$(VAR_B))",
        ),
        (
            "nested var references second type",
            "$(VAR_A$(VAR_B)",
            "$(VAR_A$(VAR_B)",
        ),
        ("value is a reference", "$(VAR_REF)", "$(VAR_A)"),
        (
            "value is a reference x 2",
            "%%$(VAR_REF)--$(VAR_REF)%%",
            "%%$(VAR_A)--$(VAR_A)%%",
        ),
        ("empty var", "foo$(VAR_EMPTY)bar", "foobar"),
        (
            "unterminated expression",
            "foo$(VAR_Awhoops!",
            "foo$(VAR_Awhoops!",
        ),
        (
            "expression without operator",
            "f00__(VAR_A)__",
            "f00__(VAR_A)__",
        ),
        ("shell special vars pass through", "$?_boo_$!", "$?_boo_$!"),
        ("bare operators are ignored", "$VAR_A", "$VAR_A"),
        (
            "undefined vars are passed through",
            "$(VAR_DNE)",
            "$(VAR_DNE)",
        ),
        (
            "multiple (even) operators, var undefined",
            "$$$$$$(BIG_MONEY)",
            "$$$(BIG_MONEY)",
        ),
        (
            "multiple (even) operators, var defined",
            "$$$$$$(VAR_A)",
            "$$$(VAR_A)",
        ),
        (
            "multiple (odd) operators, var undefined",
            "$$$$$$$(GOOD_ODDS)",
            "$$$$(GOOD_ODDS)",
        ),
        (
            "multiple (odd) operators, var defined",
            "$$$$$$$(VAR_A)",
            "$$$A",
        ),
        ("missing open expression", "$VAR_A)", "$VAR_A)"),
        ("shell syntax ignored", "${VAR_A}", "${VAR_A}"),
        (
            "trailing incomplete expression not consumed",
            "$(VAR_B)_______$(A",
            "B_______$(A",
        ),
        (
            "trailing incomplete expression, no content, is not consumed",
            "$(VAR_C)_______$(",
            "C_______$(",
        ),
        (
            "operator at end of input string is preserved",
            "$(VAR_A)foobarzab$",
            "Afoobarzab$",
        ),
        (
            "shell escaped incomplete expr",
            "foo-\\$(VAR_A",
            "foo-\\$(VAR_A",
        ),
        ("lots of $( in middle", "--$($($($($--", "--$($($($($--"),
        (
            "lots of $( in beginning",
            "$($($($($--foo$(",
            "$($($($($--foo$(",
        ),
        ("lots of $( at end", "foo0--$($($($(", "foo0--$($($($("),
        (
            "escaped operators in variable names are not escaped",
            "$(foo$$var)",
            "$(foo$$var)",
        ),
        ("newline not expanded", "\n", "\n"),
    ];
    for (name, input, expected) in cases {
        assert_eq!(expand(input, &mapping), expected, "{name}: {input:?}");
    }
}

/// Upstream `TestMapping`.
#[test]
fn mapping() {
    let context = map(&[
        ("VAR_A", "A"),
        ("VAR_B", "B"),
        ("VAR_C", "C"),
        ("VAR_REF", "$(VAR_A)"),
        ("VAR_EMPTY", ""),
    ]);
    let contexts = [&context];
    expansion_cases(mapping_for(&contexts));
}

/// Upstream `TestMappingDual`: the first context wins.
#[test]
fn mapping_dual() {
    let first = map(&[("VAR_A", "A"), ("VAR_EMPTY", "")]);
    let second = map(&[
        ("VAR_B", "B"),
        ("VAR_C", "C"),
        ("VAR_REF", "$(VAR_A)"),
        ("VAR_A", "not me"),
    ]);
    let contexts = [&first, &second];
    expansion_cases(mapping_for(&contexts));
}

#[test]
fn non_ascii_text_is_kept() {
    let context = map(&[("NAME", "wörld")]);
    let contexts = [&context];
    let mapping = mapping_for(&contexts);
    assert_eq!(
        expand("héllo $(NAME) ünd $é $", &mapping),
        "héllo wörld ünd $é $"
    );
    assert_eq!(expand("$(NÄME)", &mapping), "$(NÄME)");
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Upstream `TestExpandCommandAndArgs` (pkg/kubelet/container/helpers_test.go).
#[test]
fn command_and_args() {
    let vars = env(&[("VAR_TEST", "zoo"), ("VAR_TEST2", "boo")]);
    let container = |command: &[&str], args: &[&str]| Container {
        name: "c".to_owned(),
        command: (!command.is_empty()).then(|| command.iter().map(|s| (*s).to_owned()).collect()),
        args: (!args.is_empty()).then(|| args.iter().map(|s| (*s).to_owned()).collect()),
        ..Container::default()
    };
    let none = expand_command_and_args(&container(&[], &[]), &vars);
    assert_eq!(none, (vec![], vec![]));

    let (command, args) = expand_command_and_args(
        &container(&["foo", "$(VAR_TEST)", "$(VAR_TEST2)"], &[]),
        &vars,
    );
    assert_eq!(command, ["foo", "zoo", "boo"]);
    assert!(args.is_empty());

    let (command, args) = expand_command_and_args(
        &container(&[], &["zap", "$(VAR_TEST)", "$(VAR_TEST2)"]),
        &vars,
    );
    assert!(command.is_empty());
    assert_eq!(args, ["zap", "zoo", "boo"]);

    let (command, args) = expand_command_and_args(
        &container(
            &["$(VAR_TEST2)--$(VAR_TEST)", "foo", "$(VAR_TEST3)"],
            &["foo", "$(VAR_TEST)", "$(VAR_TEST2)"],
        ),
        &vars,
    );
    assert_eq!(command, ["boo--zoo", "foo", "$(VAR_TEST3)"]);
    assert_eq!(args, ["foo", "zoo", "boo"]);

    // A later definition of the same name wins, as in upstream's map.
    let (command, _) = expand_command_and_args(
        &container(&["$(X)"], &[]),
        &env(&[("X", "first"), ("X", "second")]),
    );
    assert_eq!(command, ["second"]);
}

#[test]
fn command_only_static_ignores_value_from() {
    let vars = vec![
        EnvVar {
            name: "STATIC".to_owned(),
            value: Some("s".to_owned()),
            ..EnvVar::default()
        },
        EnvVar {
            name: "DYNAMIC".to_owned(),
            value_from: Some(Default::default()),
            ..EnvVar::default()
        },
    ];
    let command = [
        "echo".to_owned(),
        "$(STATIC)-$(DYNAMIC)-$(MISSING)".to_owned(),
    ];
    assert_eq!(
        expand_command_only_static(&command, &vars),
        ["echo", "s--$(MISSING)"]
    );
}
