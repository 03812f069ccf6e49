//! `$(VAR)` expansion in env values, `command` and `args`: a port of Kubernetes'
//! `third_party/forked/golang/expansion` and of the kubelet's `ExpandContainerCommandAndArgs` /
//! `ExpandContainerCommandOnlyStatic` (`pkg/kubelet/container/helpers.go`).
//!
//! Rules, as upstream: `$(NAME)` is replaced by the value of `NAME`; `$$` is an escaped `$`;
//! a reference to an unknown name, an unterminated `$(`, and a `$` followed by anything else
//! are kept as written. Nothing is expanded recursively.
//!
//! One deliberate difference: upstream works on bytes and mangles a multi-byte UTF-8 character
//! that directly follows a `$`; here that character is copied unchanged.
//!
//! Pure: no IO, no tokio.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, EnvVar};

const OPERATOR: char = '$';
const REFERENCE_OPENER: char = '(';
const REFERENCE_CLOSER: char = ')';

/// Expands the variable references in `input`, resolving names with `mapping`.
///
/// `mapping` decides what an unknown name becomes; [`mapping_for`] keeps it as `$(NAME)`.
pub fn expand(input: &str, mapping: impl Fn(&str) -> String) -> String {
    let mut buf = String::with_capacity(input.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    let bytes = input.as_bytes();
    while cursor < bytes.len() {
        if bytes[cursor] == OPERATOR as u8 && cursor + 1 < bytes.len() {
            // Copy what lies between the last checkpoint and this operator.
            buf.push_str(&input[checkpoint..cursor]);
            let (read, is_var, advance) = try_read_variable_name(&input[cursor + 1..]);
            if is_var {
                buf.push_str(&mapping(read));
            } else {
                buf.push(OPERATOR);
                buf.push_str(read);
            }
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    buf.push_str(&input[checkpoint..]);
    buf
}

/// Reads what follows a `$`: the text read, whether it names a variable, and how many bytes
/// were consumed. `input` is non-empty and does not include the operator.
fn try_read_variable_name(input: &str) -> (&str, bool, usize) {
    let first = input.chars().next().unwrap_or_default();
    match first {
        // An escaped operator.
        OPERATOR => ("", false, 1),
        REFERENCE_OPENER => match input[1..].find(REFERENCE_CLOSER) {
            Some(i) => (&input[1..=i], true, i + 2),
            // An incomplete reference: keep the `$(` and go on after it.
            None => ("(", false, 1),
        },
        // Not a reference: keep the operator and the character after it.
        c => (&input[..c.len_utf8()], false, c.len_utf8()),
    }
}

/// Upstream `MappingFuncFor`: looks a name up in each context in turn and keeps an unknown
/// reference as `$(NAME)`.
pub fn mapping_for<'a>(
    contexts: &'a [&'a HashMap<String, String>],
) -> impl Fn(&str) -> String + 'a {
    move |name: &str| {
        for context in contexts {
            if let Some(value) = context.get(name) {
                return value.clone();
            }
        }
        syntax_wrap(name)
    }
}

/// `$(name)`.
fn syntax_wrap(name: &str) -> String {
    format!("{OPERATOR}{REFERENCE_OPENER}{name}{REFERENCE_CLOSER}")
}

/// Upstream `ExpandContainerCommandAndArgs`: expands the container's `command` and `args`
/// against its resolved environment (later entries win, as in upstream's map).
pub fn expand_command_and_args(
    container: &Container,
    env: &[(String, String)],
) -> (Vec<String>, Vec<String>) {
    let map: HashMap<String, String> = env.iter().cloned().collect();
    let contexts = [&map];
    let mapping = mapping_for(&contexts);
    let command = container
        .command
        .iter()
        .flatten()
        .map(|c| expand(c, &mapping))
        .collect();
    let args = container
        .args
        .iter()
        .flatten()
        .map(|a| expand(a, &mapping))
        .collect();
    (command, args)
}

/// Upstream `ExpandContainerCommandOnlyStatic`, used for exec probes: expands against the
/// literal `value`s of the container's `env` only (a `valueFrom` variable expands to "").
pub fn expand_command_only_static(command: &[String], env: &[EnvVar]) -> Vec<String> {
    let map: HashMap<String, String> = env
        .iter()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    let contexts = [&map];
    let mapping = mapping_for(&contexts);
    command.iter().map(|c| expand(c, &mapping)).collect()
}

#[cfg(test)]
mod tests;
