//! JSON patch: RFC 6902 appendix A, what `kubectl rollout undo` sends, and upstream's errors.

use serde_json::{Value, json};

use super::super::{PatchError, json_patch};

fn ok(doc: Value, ops: Value) -> Value {
    json_patch(&doc, &ops).unwrap_or_else(|e| panic!("{ops}: {e}"))
}

fn failed(doc: Value, ops: Value) -> (usize, String, String) {
    match json_patch(&doc, &ops) {
        Err(PatchError::OperationFailed { index, op, message }) => (index, op, message),
        other => panic!("{ops}: expected a failed operation, got {other:?}"),
    }
}

#[test]
fn rfc6902_appendix_a() {
    // A.1 .. A.8, A.10, A.11, A.14, A.16.
    assert_eq!(
        ok(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz", "value": "qux"}])
        ),
        json!({"baz": "qux", "foo": "bar"})
    );
    assert_eq!(
        ok(
            json!({"foo": ["bar", "baz"]}),
            json!([{"op": "add", "path": "/foo/1", "value": "qux"}])
        ),
        json!({"foo": ["bar", "qux", "baz"]})
    );
    assert_eq!(
        ok(
            json!({"baz": "qux", "foo": "bar"}),
            json!([{"op": "remove", "path": "/baz"}])
        ),
        json!({"foo": "bar"})
    );
    assert_eq!(
        ok(
            json!({"foo": ["bar", "qux", "baz"]}),
            json!([{"op": "remove", "path": "/foo/1"}])
        ),
        json!({"foo": ["bar", "baz"]})
    );
    assert_eq!(
        ok(
            json!({"baz": "qux", "foo": "bar"}),
            json!([{"op": "replace", "path": "/baz", "value": "boo"}])
        ),
        json!({"baz": "boo", "foo": "bar"})
    );
    assert_eq!(
        ok(
            json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
            json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}])
        ),
        json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}})
    );
    assert_eq!(
        ok(
            json!({"foo": ["all", "grass", "cows", "eat"]}),
            json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}])
        ),
        json!({"foo": ["all", "cows", "eat", "grass"]})
    );
    let doc = json!({"baz": "qux", "foo": ["a", 2, "c"]});
    assert_eq!(
        ok(
            doc.clone(),
            json!([
                {"op": "test", "path": "/baz", "value": "qux"},
                {"op": "test", "path": "/foo/1", "value": 2}
            ])
        ),
        doc
    );
    assert_eq!(
        ok(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/child", "value": {"grandchild": {}}}])
        ),
        json!({"foo": "bar", "child": {"grandchild": {}}})
    );
    assert_eq!(
        ok(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}])
        ),
        json!({"foo": "bar", "baz": "qux"})
    );
    let escaped = json!({"/": 9, "~1": 10});
    assert_eq!(
        ok(
            escaped.clone(),
            json!([{"op": "test", "path": "/~01", "value": 10}])
        ),
        escaped
    );
    assert_eq!(
        ok(
            json!({"foo": ["bar"]}),
            json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}])
        ),
        json!({"foo": ["bar", ["abc", "def"]]})
    );
}

#[test]
fn rfc6902_appendix_a_errors() {
    // A.9: a failed test.
    let (index, op, message) = failed(
        json!({"baz": "qux", "foo": ["a", 2, "c"]}),
        json!([
            {"op": "test", "path": "/baz", "value": "qux"},
            {"op": "test", "path": "/baz", "value": "bar"}
        ]),
    );
    assert_eq!((index, op.as_str()), (1, "test"));
    assert_eq!(message, "testing value /baz failed: test failed");
    // A.12: adding to a nonexistent target.
    let (_, op, message) = failed(
        json!({"foo": "bar"}),
        json!([{"op": "add", "path": "/baz/bat", "value": "qux"}]),
    );
    assert_eq!(op, "add");
    assert_eq!(
        message,
        "add operation does not apply: doc is missing path: \"/baz/bat\": missing value"
    );
    // A.15: strings and numbers are different.
    let (_, _, message) = failed(
        json!({"/": 9, "~1": 10}),
        json!([{"op": "test", "path": "/~01", "value": "10"}]),
    );
    assert_eq!(message, "testing value /~01 failed: test failed");
}

#[test]
fn copy_add_whole_document_and_numbers() {
    assert_eq!(
        ok(
            json!({"a": {"b": [1]}}),
            json!([{"op": "copy", "from": "/a/b", "path": "/c"}])
        ),
        json!({"a": {"b": [1]}, "c": [1]})
    );
    assert_eq!(
        ok(
            json!({"a": 1}),
            json!([{"op": "add", "path": "", "value": [1]}])
        ),
        json!([1])
    );
    // Numbers compare by value, as RFC 6902 section 4.6 says.
    ok(
        json!({"a": 1}),
        json!([{"op": "test", "path": "/a", "value": 1.0}]),
    );
    // A key that is the empty string.
    assert_eq!(
        ok(
            json!({"": 1}),
            json!([{"op": "replace", "path": "/", "value": 2}])
        ),
        json!({"": 2})
    );
    // `null` is no patch at all, as Go decodes it.
    assert_eq!(ok(json!({"a": 1}), Value::Null), json!({"a": 1}));
}

#[test]
fn operation_errors_name_the_operation() {
    let doc = json!({"a": {"b": 1}, "list": [1, 2]});
    let cases = [
        (
            json!({"op": "remove", "path": "/a/c"}),
            "remove",
            "error in remove for path: '/a/c': Unable to remove nonexistent key: c: missing value",
        ),
        (
            json!({"op": "replace", "path": "/a/c", "value": 1}),
            "replace",
            "replace operation does not apply: doc is missing key: /a/c: missing value",
        ),
        (
            json!({"op": "replace", "path": "/x/c", "value": 1}),
            "replace",
            "replace operation does not apply: doc is missing path: /x/c: missing value",
        ),
        (
            json!({"op": "add", "path": "/list/5", "value": 1}),
            "add",
            "error in add for path: '/list/5': Unable to access invalid index: 5: invalid index referenced",
        ),
        (
            json!({"op": "add", "path": "/list/01", "value": 1}),
            "add",
            "error in add for path: '/list/01': Unable to access invalid index: 01: invalid index referenced",
        ),
        (
            json!({"op": "remove", "path": "/list/-"}),
            "remove",
            "error in remove for path: '/list/-': Unable to access invalid index: -: invalid index referenced",
        ),
        (
            json!({"op": "move", "from": "/x", "path": "/y"}),
            "move",
            "move operation does not apply: doc is missing from path: /x: missing value",
        ),
        (
            json!({"op": "move", "from": "/a", "path": "/a/b/c"}),
            "move",
            "move operation does not apply: cannot move /a into its own child /a/b/c",
        ),
        (
            json!({"op": "copy", "from": "/a", "path": "/x/y"}),
            "copy",
            "copy operation does not apply: doc is missing destination path: /x/y: missing value",
        ),
        (
            json!({"op": "test", "path": "/a/zzz", "value": 1}),
            "test",
            "testing value /a/zzz failed: test failed",
        ),
        (
            json!({"op": "add", "path": "/a/c"}),
            "add",
            "operation, missing value field: missing value",
        ),
        (
            json!({"op": "remove"}),
            "remove",
            "operation missing path field: missing value",
        ),
        (
            json!({"op": "remove", "path": "a"}),
            "remove",
            "remove operation does not apply: invalid JSON pointer: \"a\"",
        ),
        (
            json!({"op": "frobnicate", "path": "/a"}),
            "frobnicate",
            "Unexpected kind: frobnicate",
        ),
    ];
    for (operation, name, expected) in cases {
        let ops = json!([{"op": "test", "path": "/a/b", "value": 1}, operation]);
        let (index, op, message) = failed(doc.clone(), ops);
        assert_eq!((index, op.as_str()), (1, name), "{operation}");
        assert_eq!(message, expected, "{operation}");
    }
}

#[test]
fn patch_documents_that_are_not_patches() {
    assert_eq!(
        json_patch(&json!({}), &json!({"op": "add"})),
        Err(PatchError::BadRequest(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch".to_owned()
        ))
    );
    assert!(matches!(
        json_patch(&json!({}), &json!([1])),
        Err(PatchError::BadRequest(_))
    ));
    let many = Value::Array(vec![json!({"op": "test", "path": "", "value": {}}); 10_001]);
    let error = json_patch(&json!({}), &many).unwrap_err();
    assert_eq!(
        error.to_string(),
        "The allowed maximum operations in a JSON patch is 10000, got 10001"
    );
}

#[test]
fn kubectl_rollout_undo() {
    // What `kubectl rollout undo` sends (spec §9.4): the template of the chosen ReplicaSet and
    // the Deployment's annotations, replaced.
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "annotations": {"deployment.kubernetes.io/revision": "3"}},
        "spec": {"replicas": 2, "template": {
            "metadata": {"labels": {"app": "api"}},
            "spec": {"containers": [{"name": "app", "image": "myapp:v3"}]}
        }}
    });
    let template = json!({
        "metadata": {"labels": {"app": "api"}},
        "spec": {"containers": [{"name": "app", "image": "myapp:v2"}]}
    });
    let ops = json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations",
         "value": {"deployment.kubernetes.io/revision": "2"}}
    ]);
    let undone = ok(deployment, ops);
    assert_eq!(undone["spec"]["template"], template);
    assert_eq!(undone["spec"]["replicas"], 2);
    assert_eq!(
        undone["metadata"]["annotations"],
        json!({"deployment.kubernetes.io/revision": "2"})
    );
}
