//! Module rules clippy cannot scope, checked by reading `src/` (rust-analyzer's tidy tests).
//! See ARCHITECTURE.md "Invariants".

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(path relative to src/, contents)` of every library source (the test app excluded: it is
/// a separate program that must not use the library).
fn library() -> Vec<(String, String)> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .filter(|(rel, _)| !rel.starts_with("bin/"))
        .collect()
}

/// Code only, without comments, so a rule can be explained in prose.
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn only_runtime_spawns_processes() {
    for (rel, text) in library() {
        let code = code(&text);
        let spawns = code.contains("Command::new") || code.contains("tokio::process");
        assert!(
            !spawns || rel.starts_with("runtime/"),
            "{rel} spawns a process: only runtime may (hooks and probes go through Runtime::exec)"
        );
    }
}

#[test]
fn unsafe_only_in_runtime_sys() {
    for (rel, text) in library() {
        let code = code(&text);
        let unsafe_used = code.contains("allow(unsafe_code)") || code.contains("unsafe {");
        assert!(
            !unsafe_used || rel == "runtime/sys.rs",
            "{rel} uses unsafe: only runtime/sys.rs may"
        );
    }
    let testapp = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/bin");
    let mut files = Vec::new();
    sources(&testapp, &mut files);
    for f in files {
        assert!(
            !code(&std::fs::read_to_string(&f).unwrap()).contains("unsafe"),
            "{f:?}"
        );
    }
}

#[test]
fn lifecycle_is_pure() {
    for (rel, text) in library() {
        if !rel.starts_with("lifecycle/") || rel.ends_with("tests.rs") {
            continue;
        }
        let code = code(&text);
        for forbidden in [
            "tokio",
            "Instant::now",
            "Timestamp::now",
            "SystemTime::now",
            "std::fs",
            "std::process",
        ] {
            assert!(
                !code.contains(forbidden),
                "{rel} uses {forbidden}: lifecycle is pure"
            );
        }
    }
}

#[test]
fn model_does_no_async_or_processes() {
    for (rel, text) in library() {
        if !rel.starts_with("model/") {
            continue;
        }
        let code = code(&text);
        for forbidden in ["tokio", "std::process", "crate::runtime", "crate::node"] {
            assert!(
                !code.contains(forbidden),
                "{rel} uses {forbidden}: model is pure"
            );
        }
    }
}

#[test]
fn store_knows_no_processes() {
    for (rel, text) in library() {
        if rel.starts_with("store/") {
            let code = code(&text);
            for forbidden in ["crate::runtime", "crate::node", "crate::hooks"] {
                assert!(!code.contains(forbidden), "{rel} uses {forbidden}");
            }
        }
    }
}

#[test]
fn gateway_knows_no_store_api_or_kubernetes() {
    for (rel, text) in library() {
        if rel == "gateway.rs" || rel.starts_with("gateway/") {
            let code = code(&text);
            for forbidden in [
                "crate::store",
                "crate::api",
                "crate::model",
                "crate::controller",
                "crate::node",
                "crate::runtime",
                "k8s_openapi",
            ] {
                assert!(
                    !code.contains(forbidden),
                    "{rel} uses {forbidden}: the gateway is fed through its interface only"
                );
            }
        }
    }
}

#[test]
fn no_waitpid_any() {
    for (rel, text) in library() {
        let code = code(&text);
        assert!(
            !code.contains("WaitId::All") && !code.contains("waitpid(None"),
            "{rel}: never wait for any child; see runtime::process"
        );
    }
}

#[test]
fn testapp_does_not_use_the_library() {
    let testapp = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/bin");
    let mut files = Vec::new();
    sources(&testapp, &mut files);
    for f in files {
        assert!(
            !std::fs::read_to_string(&f).unwrap().contains("podvisor::"),
            "{f:?}"
        );
    }
}
