use std::fs;

use serde_json::json;

use super::*;

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/manifests");

fn testdata(name: &str) -> String {
    format!("{TESTDATA}/{name}")
}

fn docs(source: &str, text: &str) -> Vec<Document> {
    parse(source, text.as_bytes()).expect("parses")
}

fn doc(text: &str) -> Document {
    let mut documents = docs("app.yaml", text);
    assert_eq!(documents.len(), 1, "{documents:?}");
    documents.remove(0)
}

fn report(text: &str) -> DocumentReport {
    decode(&doc(text), FieldValidation::Strict)
}

fn report_with(text: &str, validation: FieldValidation) -> DocumentReport {
    decode(&doc(text), validation)
}

const POD: &str = "
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
    - name: app
      image: busybox:1.36
      command: [sleep, '3600']
";

// --- Loading -----------------------------------------------------------------------------

#[test]
fn yaml_stream_skips_empty_and_comment_only_documents() {
    let documents = docs(
        "multi.yaml",
        "---\na: 1\n---\n---\n# only a comment\n---\n~\n---\nb: [1, 2]\n...\n",
    );
    let values: Vec<&Value> = documents.iter().map(|d| &d.value).collect();
    assert_eq!(values, [&json!({"a": 1}), &json!({"b": [1, 2]})]);
    let indexes: Vec<usize> = documents.iter().map(|d| d.index).collect();
    assert_eq!(indexes, [0, 1]);
    assert!(documents.iter().all(|d| d.source == "multi.yaml"));
}

#[test]
fn empty_source_has_no_documents() {
    assert!(docs("empty.yaml", "").is_empty());
    assert!(docs("empty.yaml", "# nothing\n").is_empty());
}

#[test]
fn yaml_is_read_as_kubectl_reads_it() {
    // go-yaml v2 (YAML 1.1): leading-zero octal, yes/on booleans; the BOM is skipped.
    let d = doc("\u{feff}mode: 0644\nhex: 0x1F\nflag: yes\nother: on\nplain: 1.25\n");
    assert_eq!(
        d.value,
        json!({"mode": 420, "hex": 31, "flag": true, "other": true, "plain": 1.25})
    );
    // Scalar keys become strings, as in sigs.k8s.io/yaml.
    assert_eq!(
        doc("80: http\ntrue: x\n").value,
        json!({"80": "http", "true": "x"})
    );
}

#[test]
fn yaml_anchors_and_merge_keys_are_expanded() {
    let d = doc("base: &b {x: 1}\nuse:\n  <<: *b\n  z: 2\n");
    assert_eq!(d.value, json!({"base": {"x": 1}, "use": {"x": 1, "z": 2}}));
}

#[test]
fn yaml_syntax_errors_name_the_source_and_position() {
    let error = parse("bad.yaml", b"a: 1\nb: [1,\nc: 2\n").unwrap_err();
    let LoadError::Parse { line, column, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(line.is_some() && column.is_some(), "{error:?}");
    let message = error.to_string();
    assert!(
        message.starts_with("failed to parse `bad.yaml` at line "),
        "{message}"
    );
    assert_eq!(error.path(), "bad.yaml");
}

#[test]
fn non_scalar_mapping_keys_are_errors() {
    // `{{x}}` templates, as found in the corpus: a map used as a key.
    let error = parse("t.yaml", b"data:\n  config: {{x}}\n").unwrap_err();
    assert!(matches!(error, LoadError::Parse { .. }), "{error:?}");
}

#[test]
fn not_utf8_is_an_error() {
    let error = parse("bin.yaml", b"a: \xff\xfe\n").unwrap_err();
    assert_eq!(error.to_string(), "manifest `bin.yaml` is not valid UTF-8");
}

#[test]
fn json_object_and_json_stream() {
    let one = docs("pod.json", r#"{"kind": "Pod", "apiVersion": "v1"}"#);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].value, json!({"kind": "Pod", "apiVersion": "v1"}));
    let stream = docs("pods.json", "{\"a\": 1}\n{\"b\": 2} null {\"c\": 3}");
    let values: Vec<&Value> = stream.iter().map(|d| &d.value).collect();
    assert_eq!(
        values,
        [&json!({"a": 1}), &json!({"b": 2}), &json!({"c": 3})]
    );
    assert_eq!(
        stream.iter().map(|d| d.index).collect::<Vec<_>>(),
        [0, 1, 2]
    );
}

#[test]
fn json_errors_name_the_source_and_position() {
    let error = parse("pod.json", b"{\n  \"a\": 1,\n  \"b\": \n}").unwrap_err();
    assert!(matches!(
        error,
        LoadError::Parse {
            line: Some(4),
            column: Some(1),
            ..
        }
    ));
    assert!(
        error
            .to_string()
            .starts_with("failed to parse `pod.json` at line 4, column 1: "),
        "{error}"
    );
}

#[test]
fn json_duplicate_keys_are_recorded() {
    let d = &docs("d.json", r#"{"a": 1, "b": {"c": 1, "c": 2}, "a": 3}"#)[0];
    assert_eq!(d.value, json!({"a": 3, "b": {"c": 2}}));
    let paths: Vec<&str> = d.duplicate_fields.iter().map(FieldPath::as_str).collect();
    assert_eq!(paths, ["b.c", "a"]);
}

#[test]
fn yaml_duplicate_keys_are_recorded_with_paths_and_the_last_wins() {
    let d = doc(
        "metadata:\n  name: a\n  name: b\nspec:\n  containers:\n  - name: x\n    image: i\n    image: j\n",
    );
    assert_eq!(d.value["metadata"]["name"], json!("b"));
    assert_eq!(d.value["spec"]["containers"][0]["image"], json!("j"));
    let paths: Vec<&str> = d.duplicate_fields.iter().map(FieldPath::as_str).collect();
    assert_eq!(paths, ["metadata.name", "spec.containers[0].image"]);
}

#[test]
fn list_documents_are_expanded_into_their_items() {
    let documents = docs(
        "list.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: a}}\n- {apiVersion: v1, kind: Pod, metadata: {name: b, name: c}}\n---\n{apiVersion: v1, kind: Pod, metadata: {name: d}}\n",
    );
    let names: Vec<&Value> = documents
        .iter()
        .map(|d| &d.value["metadata"]["name"])
        .collect();
    assert_eq!(names, [&json!("a"), &json!("c"), &json!("d")]);
    assert_eq!(
        documents.iter().map(|d| d.index).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    // Duplicates inside an item are reported relative to the item.
    assert!(documents[0].duplicate_fields.is_empty());
    assert_eq!(
        documents[1].duplicate_fields,
        [FieldPath::new("metadata.name")]
    );
}

#[test]
fn typed_list_items_get_the_item_kind_and_list_version() {
    let documents = docs(
        "pods.yaml",
        "apiVersion: v1\nkind: PodList\nitems:\n- metadata: {name: a}\n- {apiVersion: v1, kind: Pod, metadata: {name: b}}\n",
    );
    assert_eq!(documents[0].value["kind"], json!("Pod"));
    assert_eq!(documents[0].value["apiVersion"], json!("v1"));
    assert_eq!(documents.len(), 2);
}

#[test]
fn an_empty_list_has_no_documents() {
    assert!(docs("l.yaml", "apiVersion: v1\nkind: List\nitems: []\n").is_empty());
}

#[test]
fn load_reads_files_and_stdin_in_order() {
    let paths = vec![testdata("pod.json"), "-".to_owned(), testdata("multi.yaml")];
    let documents = load_from(&paths, POD.as_bytes()).unwrap();
    let sources: Vec<(&str, usize)> = documents
        .iter()
        .map(|d| (d.source.as_str(), d.index))
        .collect();
    let json = testdata("pod.json");
    let multi = testdata("multi.yaml");
    assert_eq!(
        sources,
        [
            (json.as_str(), 0),
            (STDIN_SOURCE, 0),
            (multi.as_str(), 0),
            (multi.as_str(), 1)
        ]
    );
}

#[test]
fn folders_are_read_recursively_sorted_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("b/nested")).unwrap();
    fs::write(root.join("b/nested/z.yml"), "{kind: Z}\n").unwrap();
    fs::write(root.join("b/a.json"), r#"{"kind": "A"}"#).unwrap();
    fs::write(root.join("c.yaml"), "kind: C\n---\nkind: C2\n").unwrap();
    fs::write(root.join("notes.txt"), "kind: ignored\n").unwrap();
    fs::write(root.join("README.md"), "# ignored\n").unwrap();
    let documents = load_from(&[root.to_string_lossy().into_owned()], io::empty()).unwrap();
    let kinds: Vec<&str> = documents
        .iter()
        .map(|d| d.value["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["A", "Z", "C", "C2"]);
    let root_str = root.to_string_lossy();
    assert_eq!(documents[0].source, format!("{root_str}/b/a.json"));
}

#[test]
fn a_folder_without_manifests_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), "x").unwrap();
    let path = dir.path().to_string_lossy().into_owned();
    let error = load_from(std::slice::from_ref(&path), io::empty()).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("no manifest files (*.yaml, *.yml, *.json) in folder `{path}`")
    );
}

#[test]
fn a_missing_file_names_the_path_and_the_os_error() {
    let error = load_from(&["missing.yaml".to_owned()], io::empty()).unwrap_err();
    assert_eq!(error.to_string(), "failed to read manifest `missing.yaml`");
    let source = std::error::Error::source(&error).expect("has the io error");
    assert!(source.to_string().contains("No such file"), "{source}");
}

#[test]
fn load_each_reports_each_source_separately() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    let bad = dir.path().join("bad.yaml");
    fs::write(&good, POD).unwrap();
    fs::write(&bad, "a: [").unwrap();
    let paths = [bad, good].map(|p| p.to_string_lossy().into_owned());
    let results = load_each(&paths, io::empty());
    assert_eq!(results.len(), 2);
    assert!(matches!(results[0], Err(LoadError::Parse { .. })));
    assert_eq!(results[1].as_ref().unwrap().len(), 1);
}

// --- Decoding ----------------------------------------------------------------------------

#[test]
fn a_valid_pod_decodes_with_defaults() {
    let r = report(POD);
    assert_eq!(r.errors, Vec::<String>::new());
    assert_eq!(r.warnings, Vec::<String>::new());
    assert_eq!(r.display_name(), "app.yaml: Pod \"web\"");
    assert_eq!(r.api_version.as_deref(), Some("v1"));
    assert_eq!(r.kind.as_deref(), Some("Pod"));
    assert_eq!(r.namespace, "default");
    let Some(Object::Pod(pod)) = &r.object else {
        panic!("{r:?}")
    };
    assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(pod.spec.as_ref().unwrap().containers[0].name, "app");
    assert_eq!(r.object.as_ref().unwrap().kind(), "Pod");
}

#[test]
fn testdata_web_pod_is_clean() {
    let documents = load_from(&[testdata("web.yaml")], io::empty()).unwrap();
    let reports = decode_all(&documents, FieldValidation::Strict);
    assert_eq!(reports.len(), 1);
    assert!(reports[0].is_ok(), "{reports:?}");
    assert!(reports[0].object.is_some());
}

#[test]
fn display_names() {
    let named_in_ns = report(&POD.replace("name: web", "name: web\n  namespace: prod"));
    assert_eq!(named_in_ns.display_name(), "app.yaml: Pod \"prod/web\"");
    assert_eq!(named_in_ns.namespace, "prod");
    let documents = docs(
        "app.yaml",
        "kind: Pod\napiVersion: v1\nmetadata: {name: a}\n---\nkind: Pod\napiVersion: v1\nmetadata: {generateName: web-}\n---\nfoo: bar\n",
    );
    let names: Vec<String> = documents
        .iter()
        .map(|d| decode(d, FieldValidation::Strict).display_name())
        .collect();
    assert_eq!(
        names,
        [
            "app.yaml: Pod \"a\"",
            "app.yaml: document 2: Pod",
            "app.yaml: document 3"
        ]
    );
}

#[test]
fn missing_api_version_and_kind_are_required() {
    let r = report("metadata: {name: web}\n");
    assert_eq!(
        r.errors,
        [
            "app.yaml: document 1: apiVersion: Required value",
            "app.yaml: document 1: kind: Required value"
        ]
    );
    assert!(r.object.is_none());
    let r = report("apiVersion: v1\nmetadata: {name: web}\n");
    assert_eq!(r.errors, ["app.yaml: document 1: kind: Required value"]);
}

#[test]
fn a_document_must_be_an_object() {
    let r = report("- a\n- b\n");
    assert_eq!(
        r.errors,
        ["app.yaml: document 1: a manifest document must be an object, not a list"]
    );
}

#[test]
fn unsupported_kinds_name_the_supported_ones() {
    let r = report("apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web}\n");
    assert_eq!(
        r.errors,
        [
            "app.yaml: StatefulSet \"web\": kind StatefulSet (apps/v1) is not supported by podvisor yet; supported kinds: Pod (v1), ConfigMap (v1), Secret (v1), Namespace (v1), Service (v1), Endpoints (v1), EndpointSlice (discovery.k8s.io/v1), Deployment (apps/v1), ReplicaSet (apps/v1), ReplicationController (v1)"
        ]
    );
    assert!(r.object.is_none());
    assert!(r.warnings.is_empty());
}

#[test]
fn a_served_kind_in_the_wrong_version_names_the_expected_version() {
    let r = report(&POD.replace("apiVersion: v1", "apiVersion: apps/v1"));
    assert_eq!(
        r.errors,
        [
            "app.yaml: Pod \"web\": apiVersion: Unsupported value: \"apps/v1\": supported values: \"v1\""
        ]
    );
}

#[test]
fn unknown_fields_are_errors_with_their_full_path() {
    let text = POD
        .replace(
            "      image:",
            "      imagePullPolicyy: Always\n      image:",
        )
        .replace("spec:\n", "spec:\n  restartPolicyy: Never\n")
        .replace("  name: web\n", "  name: web\n  labelz: {a: b}\n")
        + "status:\n  phase: Running\n  bogus: 1\n";
    let r = report(&text);
    assert_eq!(
        r.errors,
        [
            "app.yaml: Pod \"web\": unknown field \"metadata.labelz\"",
            "app.yaml: Pod \"web\": unknown field \"spec.containers[0].imagePullPolicyy\"",
            "app.yaml: Pod \"web\": unknown field \"spec.restartPolicyy\"",
            "app.yaml: Pod \"web\": unknown field \"status.bogus\"",
        ]
    );
    assert!(r.object.is_none());
    // Unknown fields are not also reported as unimplemented.
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn unknown_fields_deep_in_lists() {
    let text = POD.replace(
        "      command:",
        "      env:\n        - name: A\n          value: x\n        - name: B\n          valueFrom:\n            fieldRef: {fieldPath: metadata.name, extra: 1}\n      command:",
    );
    let r = report(&text);
    assert_eq!(
        r.errors,
        [
            "app.yaml: Pod \"web\": unknown field \"spec.containers[0].env[1].valueFrom.fieldRef.extra\""
        ]
    );
}

#[test]
fn unknown_top_level_field() {
    let r = report(&format!("{POD}extra: 1\n"));
    assert_eq!(r.errors, ["app.yaml: Pod \"web\": unknown field \"extra\""]);
}

#[test]
fn field_validation_warn_and_ignore() {
    let text = POD.replace(
        "      image:",
        "      imagePullPolicyy: Always\n      image:",
    );
    let r = report_with(&text, FieldValidation::Warn);
    assert!(r.errors.is_empty());
    assert_eq!(
        r.warnings,
        ["app.yaml: Pod \"web\": unknown field \"spec.containers[0].imagePullPolicyy\""]
    );
    assert!(r.object.is_some());
    let r = report_with(&text, FieldValidation::Ignore);
    assert!(r.is_ok(), "{r:?}");
    assert!(r.object.is_some());
}

#[test]
fn field_validation_parses_kubectl_values() {
    for (text, expected) in [
        ("strict", FieldValidation::Strict),
        ("true", FieldValidation::Strict),
        ("warn", FieldValidation::Warn),
        ("ignore", FieldValidation::Ignore),
        ("false", FieldValidation::Ignore),
    ] {
        assert_eq!(text.parse::<FieldValidation>().unwrap(), expected);
    }
    let error = "loose".parse::<FieldValidation>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid --validate value \"loose\": must be one of strict, warn, ignore, true, false"
    );
    assert_eq!(FieldValidation::default(), FieldValidation::Strict);
    assert_eq!(FieldValidation::Warn.to_string(), "warn");
}

#[test]
fn null_values_empty_values_quantities_and_int_or_string_are_not_unknown() {
    let text = "
apiVersion: v1
kind: Pod
metadata:
  name: web
  creationTimestamp: null
  labels: {}
  annotations: null
spec:
  nodeSelector: {}
  volumes: []
  containers:
    - name: app
      image: busybox:1.36
      command: [sleep, '3600']
      env: []
      resources:
        limits: {memory: 1Gi}
      readinessProbe: null
      lifecycle:
        preStop:
          httpGet: {port: http, path: /quit}
        postStart:
          tcpSocket: {port: 8080}
status: {}
";
    let r = report(text);
    assert!(r.is_ok(), "{r:?}");
}

#[test]
fn numbers_for_quantities_decode() {
    let text = POD.replace(
        "      command:",
        "      resources:\n        limits: {memory: 268435456}\n      command:",
    );
    let r = report(&text);
    assert!(r.is_ok(), "{r:?}");
}

#[test]
fn duplicate_fields_follow_field_validation() {
    let text = POD.replace("  name: web\n", "  name: web\n  name: web\n");
    let r = report(&text);
    assert_eq!(
        r.errors,
        ["app.yaml: Pod \"web\": duplicate field \"metadata.name\""]
    );
    let r = report_with(&text, FieldValidation::Warn);
    assert_eq!(
        r.warnings,
        ["app.yaml: Pod \"web\": duplicate field \"metadata.name\""]
    );
    assert!(r.object.is_some());
    assert!(report_with(&text, FieldValidation::Ignore).is_ok());
}

#[test]
fn type_errors_are_all_reported_with_paths() {
    let text = "
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  terminationGracePeriodSeconds: soon
  containers:
    - name: app
      image: busybox:1.36
      command: sleep
      ports:
        - containerPort: '80'
      env:
        - name: A
          value: 1
";
    let r = report(text);
    assert_eq!(
        r.errors,
        [
            "app.yaml: Pod \"web\": spec.containers[0].command: invalid type: string \"sleep\", expected a sequence",
            "app.yaml: Pod \"web\": spec.containers[0].env[0].value: invalid type: integer `1`, expected a string",
            "app.yaml: Pod \"web\": spec.containers[0].ports[0].containerPort: invalid type: string \"80\", expected i32",
            "app.yaml: Pod \"web\": spec.terminationGracePeriodSeconds: invalid type: string \"soon\", expected i64",
        ]
    );
    assert!(r.object.is_none());
}

#[test]
fn a_map_where_a_string_belongs_is_located() {
    let r = report(&POD.replace("image: busybox:1.36", "image: {name: busybox}"));
    assert_eq!(
        r.errors,
        ["app.yaml: Pod \"web\": spec.containers[0].image: invalid type: map, expected a string"]
    );
}

#[test]
fn unimplemented_fields_make_one_warning() {
    let text = "
apiVersion: v1
kind: Pod
metadata:
  name: web
  ownerReferences:
    - {apiVersion: v1, kind: ReplicaSet, name: rs, uid: '1'}
  uid: abc
  resourceVersion: '5'
spec:
  dnsPolicy: ClusterFirst
  schedulerName: default-scheduler
  enableServiceLinks: true
  hostNetwork: true
  volumes:
    - name: data
      emptyDir: {}
  containers:
    - name: app
      image: busybox:1.36
      command: [sleep, '3600']
      terminationMessagePath: /dev/termination-log
      volumeMounts:
        - {name: data, mountPath: /data}
      resources:
        limits: {memory: 64Mi, cpu: 500m}
        requests: {cpu: 100m}
      livenessProbe:
        exec: {command: ['true']}
";
    let r = report(text);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(
        r.warnings,
        [
            "app.yaml: Pod \"web\": fields not implemented by podvisor (ignored): metadata.ownerReferences, spec.containers[0].resources.limits[cpu], spec.containers[0].resources.requests, spec.containers[0].volumeMounts, spec.hostNetwork, spec.volumes"
        ]
    );
    assert!(r.object.is_some(), "warnings keep the object");
}

#[test]
fn defaulted_fields_warn_only_at_other_values() {
    let text = POD.replace(
        "spec:\n",
        "spec:\n  dnsPolicy: Default\n  schedulerName: other\n  enableServiceLinks: false\n",
    );
    let r = report(&text);
    assert_eq!(
        r.warnings,
        [
            "app.yaml: Pod \"web\": fields not implemented by podvisor (ignored): spec.dnsPolicy, spec.schedulerName"
        ]
    );
}

#[test]
fn duplicates_across_documents_are_errors_on_the_second() {
    let a = doc(POD);
    let mut b = a.clone();
    b.source = "other.yaml".to_owned();
    let mut c = a.clone();
    c.index = 1;
    let reports = decode_all(&[a.clone(), b, c], FieldValidation::Strict);
    assert!(reports[0].errors.is_empty());
    assert_eq!(
        reports[1].errors,
        ["other.yaml: Pod \"web\": Pod \"web\" is defined twice: already defined in `app.yaml`"]
    );
    assert!(reports[1].object.is_none());
    assert_eq!(
        reports[2].errors,
        [
            "app.yaml: Pod \"web\": Pod \"web\" is defined twice: already defined in document 1 of the same source"
        ]
    );
}

#[test]
fn same_name_in_other_namespaces_or_unsupported_kinds_is_not_a_duplicate() {
    let a = doc(POD);
    let b = doc(&POD.replace("name: web", "name: web\n  namespace: prod"));
    let explicit_default = doc(&POD.replace("name: web", "name: web\n  namespace: default"));
    let reports = decode_all(&[a, b, explicit_default], FieldValidation::Strict);
    assert!(reports[0].errors.is_empty());
    assert!(reports[1].errors.is_empty());
    assert_eq!(reports[2].errors.len(), 1, "default is default");

    let ingress = doc("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\n");
    let reports = decode_all(&[ingress.clone(), ingress], FieldValidation::Strict);
    assert_eq!(
        reports[1].errors.len(),
        1,
        "only the unsupported-kind error"
    );
}

#[test]
fn every_served_kind_has_an_implemented_fields_table() {
    for served in SUPPORTED_KINDS {
        assert!(
            unimplemented::IMPLEMENTED
                .iter()
                .any(|t| t.kind == served.kind),
            "{}",
            served.kind
        );
    }
    assert_eq!(
        supported_kinds_list(),
        "Pod (v1), ConfigMap (v1), Secret (v1), Namespace (v1), Service (v1), Endpoints (v1), EndpointSlice (discovery.k8s.io/v1), Deployment (apps/v1), ReplicaSet (apps/v1), ReplicationController (v1)"
    );
}

#[test]
fn strict_decode_reports_unknown_fields_of_derived_types_too() {
    #[derive(serde::Deserialize, serde::Serialize)]
    struct Small {
        a: Option<i32>,
        b: Option<Vec<Small>>,
    }
    let decoded = decode_strict::<Small>(&json!({"a": 1, "x": 2, "b": [{"a": "no"}, {"y": 1}]}));
    let errors: Vec<String> = decoded
        .type_errors
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        ["b[0].a: invalid type: string \"no\", expected i32"]
    );
    assert_eq!(
        decoded.unknown_fields,
        [FieldPath::new("b[1].y"), FieldPath::new("x")]
    );
    assert_eq!(decoded.known_input, Some(json!({"a": 1, "b": [{}, {}]})));
    // A bad list element drops its whole list, so the other paths stay stable.
    let decoded = decode_strict::<Small>(&json!({"a": 1, "b": [1, {"y": 1}]}));
    let errors: Vec<String> = decoded
        .type_errors
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        ["b[0]: invalid type: integer `1`, expected struct Small"]
    );
    assert!(decoded.unknown_fields.is_empty());
    assert_eq!(decoded.known_input, Some(json!({"a": 1})));
}

// --- ConfigMaps, Secrets, Namespaces -------------------------------------------------------

#[test]
fn config_maps_secrets_and_namespaces_decode_with_defaults() {
    let documents = docs(
        "app.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, namespace: elsewhere}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\ndata: {a: '1'}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {password: x}\n",
    );
    let reports = decode_all(&documents, FieldValidation::Strict);
    let names: Vec<String> = reports.iter().map(DocumentReport::display_name).collect();
    assert_eq!(
        names,
        [
            "app.yaml: Namespace \"shop\"",
            "app.yaml: ConfigMap \"shop/settings\"",
            "app.yaml: Secret \"creds\"",
        ]
    );
    assert!(reports.iter().all(DocumentReport::is_ok), "{reports:?}");
    let Some(Object::Namespace(ns)) = &reports[0].object else {
        panic!("{:?}", reports[0].object)
    };
    assert_eq!(ns.metadata.namespace, None);
    assert_eq!(
        ns.spec.as_ref().unwrap().finalizers.as_ref().unwrap(),
        &["kubernetes"]
    );
    let Some(Object::Secret(secret)) = &reports[2].object else {
        panic!("{:?}", reports[2].object)
    };
    assert_eq!(secret.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    assert_eq!(secret.data.as_ref().unwrap()["password"].0, b"x");
    assert_eq!(secret.string_data, None);
    let json = reports[2].object.as_ref().unwrap().to_json();
    assert_eq!(json["apiVersion"], "v1");
    assert_eq!(json["kind"], "Secret");
    assert_eq!(json["data"]["password"], "eA==");
}

#[test]
fn a_namespace_is_defined_once_whatever_its_metadata_namespace() {
    let documents = docs(
        "app.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n\
         apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, namespace: other}\n",
    );
    let reports = decode_all(&documents, FieldValidation::Strict);
    assert_eq!(
        reports[1].errors,
        [
            "app.yaml: Namespace \"shop\": Namespace \"shop\" is defined twice: already defined in document 1 of the same source"
        ]
    );
}

#[test]
fn config_kinds_report_unknown_and_unimplemented_fields() {
    let r = report(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  ownerReferences:\n    \
         - {apiVersion: v1, kind: Pod, name: web, uid: '1'}\ndata: {a: '1'}\nstringData: {b: '2'}\n",
    );
    assert_eq!(
        r.errors,
        ["app.yaml: ConfigMap \"settings\": unknown field \"stringData\""]
    );
    assert_eq!(
        r.warnings,
        [
            "app.yaml: ConfigMap \"settings\": fields not implemented by podvisor (ignored): metadata.ownerReferences"
        ]
    );
}
