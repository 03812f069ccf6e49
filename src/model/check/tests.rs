use std::fs;
use std::path::Path;

use k8s_openapi::api::core::v1::Pod;

use super::*;
use crate::model::pod;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn testdata(name: &str) -> String {
    format!("{ROOT}/testdata/{name}")
}

fn example_map() -> ImageMap {
    ImageMap::load(&testdata("image-maps/example.yaml")).unwrap()
}

const NGINX: &str = "
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
    - name: app
      image: nginx:1.25
";

fn check_stdin(text: &str, options: &CheckOptions) -> CheckReport {
    check_from(&["-".to_owned()], text.as_bytes(), options)
}

#[test]
fn renders_ok_warnings_errors_and_summary() {
    let text = format!(
        "{NGINX}---{}---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: web}}\n---{}",
        NGINX
            .replace("name: web", "name: db")
            .replace("nginx:1.25", "mysql:8"),
        NGINX.replace("name: web", "name: vol").replace(
            "image: nginx:1.25",
            "image: nginx:1.25\n      volumeMounts: [{name: v, mountPath: /v}]"
        ) + "  volumes: [{name: v, emptyDir: {}}]\n"
    );
    let options = CheckOptions {
        image_map: Some(example_map()),
        ..CheckOptions::default()
    };
    let report = check_stdin(&text, &options);
    assert_eq!(
        report.to_string(),
        "\
<stdin>: Pod \"web\": OK
warning: <stdin>: Pod \"db\": spec.containers[0].image: image \"mysql:8\" has no entry in the image map and the container has no command; add \"mysql:8\" to the file given with --image-map, or set command
error: <stdin>: StatefulSet \"web\": kind StatefulSet (apps/v1) is not supported by podvisor yet; supported kinds: Pod (v1), ConfigMap (v1), Secret (v1), Namespace (v1), Service (v1), Endpoints (v1), EndpointSlice (discovery.k8s.io/v1), Deployment (apps/v1), ReplicaSet (apps/v1), ReplicationController (v1)
warning: <stdin>: Pod \"vol\": fields not implemented by podvisor (ignored): spec.containers[0].volumeMounts, spec.volumes
4 documents: 1 OK, 2 with warnings, 1 with errors
"
    );
    assert!(report.has_errors());
    assert_eq!(
        report.summary(),
        CheckSummary {
            documents: 4,
            ok: 1,
            with_warnings: 2,
            with_errors: 1,
            failed_sources: 0
        }
    );
    let names: Vec<&str> = report
        .objects()
        .map(|o| o.metadata().name.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["web", "db", "vol"]);
}

#[test]
fn missing_image_mappings_are_errors_for_up() {
    let options = CheckOptions::default().for_up();
    let report = check_stdin(NGINX, &options);
    let documents: Vec<&DocumentReport> = report.documents().collect();
    assert_eq!(documents.len(), 1);
    assert_eq!(
        documents[0].errors,
        [
            "<stdin>: Pod \"web\": spec.containers[0].image: image \"nginx:1.25\" would run its own entrypoint, but podvisor does not pull images and the container has no command; give an image map with --image-map that maps \"nginx:1.25\" to a command, or set command"
        ]
    );
    assert!(documents[0].object.is_none());
    assert!(report.has_errors());

    let report = check_stdin(NGINX, &CheckOptions::default());
    assert!(!report.has_errors());
    assert_eq!(report.summary().with_warnings, 1);

    let options = CheckOptions {
        image_map: Some(example_map()),
        ..CheckOptions::default().for_up()
    };
    assert_eq!(check_stdin(NGINX, &options).summary().ok, 1);
}

#[test]
fn load_errors_are_reported_and_other_sources_still_checked() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    fs::write(&broken, "a: [\n").unwrap();
    let paths = vec![
        "missing.yaml".to_owned(),
        broken.to_string_lossy().into_owned(),
        testdata("manifests/web.yaml"),
    ];
    let report = check_from(&paths, std::io::empty(), &CheckOptions::default());
    let text = report.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with("error: failed to read manifest `missing.yaml`: No such file"),
        "{text}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "error: failed to parse `{}` at line ",
            broken.display()
        )),
        "{text}"
    );
    assert_eq!(
        lines[2],
        format!("{}: Pod \"web\": OK", testdata("manifests/web.yaml"))
    );
    assert_eq!(
        lines[3],
        "1 document: 1 OK, 0 with warnings, 0 with errors; 2 sources could not be loaded"
    );
    assert!(report.has_errors());
    assert!(matches!(
        &report.entries[0],
        CheckEntry::LoadFailed { source, .. } if source == "missing.yaml"
    ));
}

#[test]
fn testdata_manifests_folder() {
    let report = check(
        &[testdata("manifests")],
        &CheckOptions {
            image_map: Some(example_map()),
            ..CheckOptions::default()
        },
    );
    let lines: Vec<String> = report
        .to_string()
        .lines()
        .map(|l| l.replace(&testdata("manifests/"), ""))
        .collect();
    assert_eq!(
        lines,
        [
            "config.yaml: Namespace \"shop\": OK",
            "config.yaml: ConfigMap \"shop/settings\": OK",
            "config.yaml: Secret \"shop/credentials\": OK",
            "list.yaml: Pod \"listed-a\": OK",
            "list.yaml: Pod \"listed-b\": OK",
            "multi.yaml: Pod \"first\": OK",
            "multi.yaml: Pod \"staging/second\": OK",
            "pod.json: Pod \"json-pod\": OK",
            "error: unsupported-kinds.yaml: StatefulSet \"web\": kind StatefulSet (apps/v1) is not supported by podvisor yet; supported kinds: Pod (v1), ConfigMap (v1), Secret (v1), Namespace (v1), Service (v1), Endpoints (v1), EndpointSlice (discovery.k8s.io/v1), Deployment (apps/v1), ReplicaSet (apps/v1), ReplicationController (v1)",
            "error: unsupported-kinds.yaml: Ingress \"prod/web\": kind Ingress (networking.k8s.io/v1) is not supported by podvisor yet; supported kinds: Pod (v1), ConfigMap (v1), Secret (v1), Namespace (v1), Service (v1), Endpoints (v1), EndpointSlice (discovery.k8s.io/v1), Deployment (apps/v1), ReplicaSet (apps/v1), ReplicationController (v1)",
            "error: unsupported-kinds.yaml: ServiceAccount \"builder\": kind ServiceAccount (v1) is not supported by podvisor yet; supported kinds: Pod (v1), ConfigMap (v1), Secret (v1), Namespace (v1), Service (v1), Endpoints (v1), EndpointSlice (discovery.k8s.io/v1), Deployment (apps/v1), ReplicaSet (apps/v1), ReplicationController (v1)",
            "web.yaml: Pod \"web\": OK",
            "12 documents: 9 OK, 0 with warnings, 3 with errors",
        ]
    );
}

#[test]
fn an_empty_check_says_so() {
    let report = check_stdin("", &CheckOptions::default());
    assert_eq!(
        report.to_string(),
        "0 documents: 0 OK, 0 with warnings, 0 with errors\n"
    );
    assert!(!report.has_errors());
}

// --- Corpus ------------------------------------------------------------------------------

/// Corpus Pods that Kubernetes 1.33 itself rejects (with `kubectl apply`'s default
/// `--validate=strict`), with the reason and a piece of the error podvisor must give.
/// Paths are relative to `testdata/corpus/kubernetes-examples/_archived/`.
const INVALID_CORPUS_PODS: &[InvalidPod] = &[
    InvalidPod {
        file: "volumes/fibre_channel/fc.yaml",
        reason: "`lun: <ADD LUN ID Here>` is a placeholder string where an int32 belongs",
        error: "spec.volumes[0].fc.lun: invalid type: string \"<ADD LUN ID Here>\", expected i32",
        stage: Stage::Decoding,
    },
    InvalidPod {
        file: "volumes/rbd/rbd.yaml",
        reason: "`imageformat` and `imagefeatures` are StorageClass parameters, not RBDVolumeSource fields",
        error: "unknown field \"spec.volumes[0].rbd.imagefeatures\"",
        stage: Stage::StrictFields,
    },
    InvalidPod {
        file: "volumes/scaleio/pod.yaml",
        reason: "`protectionDoamin` is a typo of `protectionDomain`",
        error: "unknown field \"spec.volumes[0].scaleIO.protectionDoamin\"",
        stage: Stage::StrictFields,
    },
    InvalidPod {
        file: "volumes/storageos/storageos-pod.yaml",
        reason: "`pool` is not a StorageOSVolumeSource field",
        error: "unknown field \"spec.volumes[0].storageos.pool\"",
        stage: Stage::StrictFields,
    },
    InvalidPod {
        file: "volumes/aws_ebs/aws-ebs-web.yaml",
        reason: "`protocol: tcp`: port protocols are case-sensitive (`TCP`, `UDP`, `SCTP`)",
        error: "spec.containers[0].ports[0].protocol: Unsupported value: \"tcp\"",
        stage: Stage::Validation,
    },
    InvalidPod {
        file: "volumes/cinder/cinder-web.yaml",
        reason: "`protocol: tcp`: port protocols are case-sensitive (`TCP`, `UDP`, `SCTP`)",
        error: "spec.containers[0].ports[0].protocol: Unsupported value: \"tcp\"",
        stage: Stage::Validation,
    },
    InvalidPod {
        file: "storage/vitess/vttablet-pod-template.yaml",
        reason: "a template: `vttablet-{{uid}}` is not a DNS-1123 subdomain and `{{keyspace}}` \
                 is not a valid label value",
        error: "metadata.name: Invalid value: \"vttablet-{{uid}}\"",
        stage: Stage::Validation,
    },
];

struct InvalidPod {
    file: &'static str,
    reason: &'static str,
    error: &'static str,
    stage: Stage,
}

/// Which part of podvisor finds the problem.
#[derive(PartialEq)]
enum Stage {
    /// Decoding into the typed object (a type error).
    Decoding,
    /// Strict field validation: an error with `--validate=strict`, a warning with `warn`.
    StrictFields,
    /// `model::pod::validate`.
    Validation,
}

fn corpus_files() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path.to_string_lossy().into_owned());
            }
        }
    }
    let mut files = Vec::new();
    walk(Path::new(&testdata("corpus")), &mut files);
    files.sort();
    files
}

/// Each example is its own application, so each file is checked on its own (checked together,
/// several examples reuse names such as `nginx`).
#[test]
fn corpus_pods_are_rejected_only_where_kubernetes_rejects_them() {
    // Until the real `model::pod::validate` is merged, the placeholder finds nothing.
    let validation_active = !pod::validate(&Pod::default()).is_empty();
    let files = corpus_files();
    assert_eq!(files.len(), 56, "every corpus file with a Pod");
    let mut n_pods = 0;
    for file in &files {
        let report = check(std::slice::from_ref(file), &CheckOptions::default());
        let relative = file
            .strip_prefix(&testdata("corpus/kubernetes-examples/_archived/"))
            .unwrap_or(file);
        let invalid = INVALID_CORPUS_PODS.iter().find(|p| p.file == relative);
        for entry in &report.entries {
            let CheckEntry::Document(document) = entry else {
                panic!("{file} does not load: {entry:?}")
            };
            assert_eq!(document.kind.as_deref(), Some("Pod"), "{file}");
            n_pods += 1;
            match invalid {
                None => assert!(
                    document.errors.is_empty(),
                    "{file} is valid Kubernetes but was rejected: {:#?}",
                    document.errors
                ),
                Some(p) if p.stage == Stage::Validation && !validation_active => {}
                Some(p) => assert!(
                    document.errors.iter().any(|e| e.contains(p.error)),
                    "{file} ({}) should fail with {:?}, got {:#?}",
                    p.reason,
                    p.error,
                    document.errors
                ),
            }
        }
    }
    assert_eq!(n_pods, 56);
    for p in INVALID_CORPUS_PODS {
        assert!(
            files.iter().any(|f| f.ends_with(p.file)),
            "{} is not in the corpus",
            p.file
        );
    }
}

#[test]
fn corpus_strict_field_errors_are_warnings_with_validate_warn() {
    for p in INVALID_CORPUS_PODS
        .iter()
        .filter(|p| p.stage == Stage::StrictFields)
    {
        let file = testdata(&format!("corpus/kubernetes-examples/_archived/{}", p.file));
        let options = CheckOptions {
            validation: FieldValidation::Warn,
            ..CheckOptions::default()
        };
        let report = check(&[file], &options);
        let document = report.documents().next().unwrap();
        assert!(document.errors.is_empty(), "{:#?}", document.errors);
        assert!(
            document.warnings.iter().any(|w| w.contains(p.error)),
            "{:#?}",
            document.warnings
        );
    }
}

#[test]
fn corpus_fields_podvisor_ignores_are_warnings() {
    let file = testdata("corpus/kubernetes-examples/_archived/javaweb-tomcat-sidecar/javaweb.yaml");
    let report = check(std::slice::from_ref(&file), &CheckOptions::default());
    let document = report.documents().next().unwrap();
    assert_eq!(
        document.warnings,
        [format!(
            "{file}: Pod \"javaweb\": fields not implemented by podvisor (ignored): spec.containers[0].ports[0].hostPort, spec.containers[0].volumeMounts, spec.initContainers[0].volumeMounts, spec.volumes"
        )]
    );
    assert!(document.object.is_some());
}

#[test]
fn other_kinds_get_the_unsupported_kind_error() {
    let report = check(
        &[testdata("manifests/unsupported-kinds.yaml")],
        &CheckOptions::default(),
    );
    let kinds: Vec<(&str, &str)> = report
        .documents()
        .map(|d| (d.kind.as_deref().unwrap(), d.errors[0].as_str()))
        .collect();
    assert_eq!(kinds.len(), 3);
    for (kind, error) in kinds {
        assert!(error.contains(&format!(": kind {kind} (")), "{error}");
        assert!(
            error.ends_with(") is not supported by podvisor yet; supported kinds: Pod (v1), ConfigMap (v1), Secret (v1), Namespace (v1), Service (v1), Endpoints (v1), EndpointSlice (discovery.k8s.io/v1), Deployment (apps/v1), ReplicaSet (apps/v1), ReplicationController (v1)"),
            "{error}"
        );
    }
    assert_eq!(report.summary().with_errors, 3);
}

// --- ConfigMaps, Secrets, Namespaces -----------------------------------------------------

/// The invalid manifests of the other kinds report exactly their `# expect:` lines (the Pod
/// ones are checked against `model::pod` directly).
#[test]
fn invalid_manifests_of_other_kinds_report_exactly_the_expected_errors() {
    let mut files: Vec<_> = fs::read_dir(testdata("invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| fs::read_to_string(p).is_ok_and(|t| !t.lines().any(|l| l == "kind: Pod")))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let mut expected: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        let path = file.to_string_lossy().into_owned();
        let report = check(std::slice::from_ref(&path), &CheckOptions::default());
        let mut actual: Vec<String> = report
            .documents()
            .flat_map(|d| {
                let prefix = format!("{}: ", d.display_name());
                d.errors
                    .iter()
                    .map(move |e| e.strip_prefix(&prefix).unwrap_or(e).to_owned())
            })
            .collect();
        expected.sort();
        actual.sort();
        assert_eq!(actual, expected, "{path}");
        assert!(report.documents().all(|d| d.warnings.is_empty()), "{path}");
    }
}

#[test]
fn config_kinds_are_valid_without_an_image_map_even_for_up() {
    let report = check(
        &[testdata("manifests/config.yaml")],
        &CheckOptions::default().for_up(),
    );
    assert!(!report.has_errors(), "{report}");
    let kinds: Vec<&str> = report.objects().map(Object::kind).collect();
    assert_eq!(kinds, ["Namespace", "ConfigMap", "Secret"]);
}
