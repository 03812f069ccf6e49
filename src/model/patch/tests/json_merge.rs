//! JSON merge patch: RFC 7386 appendix A, and what kubectl sends.

use serde_json::json;

use super::super::json_merge;

#[test]
fn rfc7386_appendix_a() {
    // (original, patch, result), RFC 7386 appendix A.
    let cases = [
        (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
        (
            json!({"a": "b"}),
            json!({"b": "c"}),
            json!({"a": "b", "b": "c"}),
        ),
        (json!({"a": "b"}), json!({"a": null}), json!({})),
        (
            json!({"a": "b", "b": "c"}),
            json!({"a": null}),
            json!({"b": "c"}),
        ),
        (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
        (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
        (
            json!({"a": {"b": "c"}}),
            json!({"a": {"b": "d", "c": null}}),
            json!({"a": {"b": "d"}}),
        ),
        (
            json!({"a": [{"b": "c"}]}),
            json!({"a": [1]}),
            json!({"a": [1]}),
        ),
        (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
        (json!({"a": "b"}), json!(["c"]), json!(["c"])),
        (json!({"a": "foo"}), json!(null), json!(null)),
        (json!({"a": "foo"}), json!("bar"), json!("bar")),
        (
            json!({"e": null}),
            json!({"a": 1}),
            json!({"e": null, "a": 1}),
        ),
        (
            json!([1, 2]),
            json!({"a": "b", "c": null}),
            json!({"a": "b"}),
        ),
        (
            json!({}),
            json!({"a": {"bb": {"ccc": null}}}),
            json!({"a": {"bb": {}}}),
        ),
    ];
    for (original, patch, expected) in cases {
        assert_eq!(
            json_merge(&original, &patch),
            expected,
            "{original} + {patch}"
        );
    }
}

#[test]
fn kubectl_scale_and_label() {
    let deployment = json!({
        "metadata": {"name": "api", "labels": {"app": "api"}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "app"}]}}}
    });
    let scaled = json_merge(&deployment, &json!({"spec": {"replicas": 3}}));
    assert_eq!(scaled["spec"]["replicas"], 3);
    assert_eq!(scaled["spec"]["template"], deployment["spec"]["template"]);

    let labelled = json_merge(
        &deployment,
        &json!({"metadata": {"labels": {"tier": "fe"}}}),
    );
    assert_eq!(
        labelled["metadata"]["labels"],
        json!({"app": "api", "tier": "fe"})
    );
    let unlabelled = json_merge(&labelled, &json!({"metadata": {"labels": {"app": null}}}));
    assert_eq!(unlabelled["metadata"]["labels"], json!({"tier": "fe"}));
}
