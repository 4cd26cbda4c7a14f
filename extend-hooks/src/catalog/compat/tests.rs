//! Each rule, in both directions, on schemas as schemars writes them.
#![allow(dead_code)] // the types exist for their schemas
#![allow(clippy::needless_pass_by_value)] // helpers take what `json!` builds

use super::{Comparison, compare_documents};
use schemars::{JsonSchema, schema_for};
use serde::Serialize;
use serde_json::{Value, json};

fn point(name: &str, mode: &str, payload: Value, response: Value) -> Value {
    json!({ "name": name, "mode": mode, "timeout_ms": 2000, "payload_schema": payload, "response_schema": response })
}

fn doc(points: Vec<Value>) -> Value {
    json!({ "points": points })
}

fn schema<T: JsonSchema>() -> Value {
    serde_json::to_value(schema_for!(T)).unwrap()
}

fn compare_docs(old: Vec<Value>, new: Vec<Value>) -> Comparison {
    compare_documents(&doc(old), &doc(new)).unwrap()
}

/// The single difference: pointer, whether it breaks, and its reason.
fn only(c: &Comparison) -> (String, bool, String) {
    assert_eq!(c.differences.len(), 1, "{c}");
    let d = &c.differences[0];
    (d.pointer.clone(), d.breaking, d.reason.clone())
}

fn payload_change<A: JsonSchema, B: JsonSchema>() -> Comparison {
    compare_docs(
        vec![point("p", "sync", schema::<A>(), Value::Null)],
        vec![point("p", "sync", schema::<B>(), Value::Null)],
    )
}

fn response_change<A: JsonSchema, B: JsonSchema>() -> Comparison {
    compare_docs(
        vec![point("p", "sync", json!({}), schema::<A>())],
        vec![point("p", "sync", json!({}), schema::<B>())],
    )
}

#[test]
fn removed_points_and_changed_modes_break_new_points_and_timeouts_do_not() {
    let a = point("a", "sync", json!({}), Value::Null);
    let b = point("b", "async", json!({}), Value::Null);
    let removed = compare_docs(vec![a.clone(), b.clone()], vec![a.clone()]);
    let (at, breaking, why) = only(&removed);
    assert_eq!((at.as_str(), breaking), ("/points/b", true));
    assert!(why.contains("was removed"), "{why}");
    assert_eq!(
        removed.broken_points().into_iter().collect::<Vec<_>>(),
        ["b"]
    );
    let added = compare_docs(vec![a.clone()], vec![a.clone(), b.clone()]);
    assert_eq!(only(&added).0, "/points/b");
    assert!(!added.is_breaking());

    let mut slower = a.clone();
    slower["timeout_ms"] = json!(5000);
    let c = compare_docs(vec![a.clone()], vec![slower]);
    assert_eq!(
        (only(&c).0.as_str(), only(&c).1),
        ("/points/a/timeout_ms", false)
    );

    let mut now_async = a.clone();
    now_async["mode"] = json!("async");
    let c = compare_docs(vec![a.clone()], vec![now_async.clone()]);
    assert_eq!((only(&c).0.as_str(), only(&c).1), ("/points/a/mode", true));
    let back = compare_docs(vec![now_async], vec![a.clone()]);
    assert!(back.is_breaking(), "either way: {back}");
    assert!(
        compare_docs(vec![a.clone()], vec![a])
            .differences
            .is_empty()
    );
}

#[derive(JsonSchema)]
struct LeadV1 {
    email: String,
    name: String,
}
#[derive(JsonSchema)]
struct LeadV2 {
    email: String,
}

#[test]
fn a_payload_field_removed_breaks_and_one_added_does_not() {
    let (at, breaking, why) = only(&payload_change::<LeadV1, LeadV2>());
    assert_eq!(
        (at.as_str(), breaking),
        ("/points/p/payload_schema/properties/name", true)
    );
    assert!(why.contains("field `name` was removed"), "{why}");
    let (at, breaking, why) = only(&payload_change::<LeadV2, LeadV1>());
    assert_eq!(
        (at.as_str(), breaking),
        ("/points/p/payload_schema/properties/name", false)
    );
    assert!(why.contains("was added"), "{why}");
}

#[derive(JsonSchema)]
struct Email {
    email: String,
}
#[derive(JsonSchema)]
struct MaybeEmail {
    email: Option<String>,
}
#[derive(JsonSchema)]
struct Address {
    city: String,
}
#[derive(JsonSchema)]
struct WithAddress {
    address: Address,
}
#[derive(JsonSchema)]
struct WithMaybeAddress {
    address: Option<Address>,
}

#[test]
fn a_payload_that_may_now_be_null_breaks_and_one_that_may_no_longer_does_not() {
    // Option<String> is `type: [string, null]` and not required.
    let c = payload_change::<Email, MaybeEmail>();
    assert!(c.is_breaking(), "{c}");
    assert!(
        c.breaking().any(|d| d.reason.contains("may now be null")),
        "{c}"
    );
    assert!(!payload_change::<MaybeEmail, Email>().is_breaking());
    // Option of a named type is `anyOf: [{$ref}, {type: null}]`.
    let c = payload_change::<WithAddress, WithMaybeAddress>();
    assert!(
        c.breaking().any(
            |d| d.pointer == "/points/p/payload_schema/properties/address"
                && d.reason.contains("may now be null")
        ),
        "{c}"
    );
    assert!(!payload_change::<WithMaybeAddress, WithAddress>().is_breaking());
}

#[derive(JsonSchema, Serialize)]
enum StageV1 {
    New,
    Won,
}
#[derive(JsonSchema, Serialize)]
enum StageV2 {
    New,
    Won,
    Lost,
}
#[derive(JsonSchema)]
struct DealV1 {
    stage: StageV1,
}
#[derive(JsonSchema)]
struct DealV2 {
    stage: StageV2,
}

#[test]
fn an_enum_that_gains_a_variant_breaks_payloads_and_one_that_loses_one_breaks_responses() {
    let (_, breaking, why) = only(&payload_change::<DealV1, DealV2>());
    assert!(breaking && why.contains("may now be \"Lost\""), "{why}");
    let (_, breaking, why) = only(&payload_change::<DealV2, DealV1>());
    assert!(
        !breaking && why.contains("may no longer be \"Lost\""),
        "{why}"
    );
    let (_, breaking, _) = only(&response_change::<DealV1, DealV2>());
    assert!(!breaking, "a response enum may gain a variant");
    let (_, breaking, why) = only(&response_change::<DealV2, DealV1>());
    assert!(breaking && why.contains("no longer be \"Lost\""), "{why}");
}

#[derive(JsonSchema)]
struct Decision {
    score: i64,
}
#[derive(JsonSchema)]
struct DecisionWithReason {
    score: i64,
    reason: String,
}
#[derive(JsonSchema)]
struct DecisionMaybeReason {
    score: i64,
    reason: Option<String>,
}
#[derive(JsonSchema)]
struct DecisionOptionalScore {
    #[serde(default)]
    score: i64,
}

#[test]
fn response_fields_may_be_added_optional_and_made_optional_not_added_or_made_required() {
    let (at, breaking, why) = only(&response_change::<Decision, DecisionWithReason>());
    assert_eq!(at, "/points/p/response_schema/properties/reason");
    assert!(
        breaking && why.contains("required field `reason` was added"),
        "{why}"
    );
    let c = response_change::<Decision, DecisionMaybeReason>();
    assert!(!c.is_breaking(), "an optional field may be added: {c}");
    let (_, breaking, why) = only(&response_change::<Decision, DecisionOptionalScore>());
    assert!(!breaking && why.contains("became optional"), "{why}");
    let (_, breaking, why) = only(&response_change::<DecisionOptionalScore, Decision>());
    assert!(breaking && why.contains("became required"), "{why}");
    // A field the platform stops reading is no break.
    assert!(!response_change::<DecisionWithReason, Decision>().is_breaking());
}

#[derive(JsonSchema)]
#[serde(tag = "kind")]
enum EventV1 {
    Created { id: u64 },
    Deleted { id: u64 },
}
#[derive(JsonSchema)]
#[serde(tag = "kind")]
enum EventV2 {
    Created { id: u64 },
    Deleted { id: u64 },
    Merged { id: u64, into: u64 },
}
#[derive(JsonSchema)]
enum ExternalV1 {
    Created { id: u64 },
}
#[derive(JsonSchema)]
enum ExternalV2 {
    Created { id: u64 },
    Deleted { id: u64 },
}
#[derive(JsonSchema)]
#[serde(tag = "t", content = "c")]
enum AdjacentV1 {
    A(u32),
}
#[derive(JsonSchema)]
#[serde(tag = "t", content = "c")]
enum AdjacentV2 {
    A(u32),
    B(String),
}

#[test]
fn tagged_enum_variants_are_matched_by_tag_in_every_representation() {
    let c = payload_change::<EventV1, EventV2>();
    let (_, breaking, why) = only(&c);
    assert!(
        breaking && why.contains("variant kind=\"Merged\" was added"),
        "{why}"
    );
    assert!(!payload_change::<EventV2, EventV1>().is_breaking());
    let (_, breaking, why) = only(&payload_change::<ExternalV1, ExternalV2>());
    assert!(breaking && why.contains("\"Deleted\""), "{why}");
    let (_, breaking, why) = only(&response_change::<AdjacentV2, AdjacentV1>());
    assert!(breaking && why.contains("t=\"B\""), "{why}");
    assert!(payload_change::<EventV1, EventV1>().differences.is_empty());
}

#[derive(JsonSchema)]
struct Inner {
    n: u32,
}
#[derive(JsonSchema)]
struct InnerMore {
    n: u32,
    m: u32,
}
#[derive(JsonSchema)]
struct Nested {
    items: Vec<Inner>,
    by_name: std::collections::BTreeMap<String, Inner>,
}
#[derive(JsonSchema)]
struct NestedMore {
    items: Vec<InnerMore>,
    by_name: std::collections::BTreeMap<String, InnerMore>,
}

#[test]
fn arrays_maps_and_refs_are_followed_and_the_report_names_each_place() {
    let c = response_change::<Nested, NestedMore>();
    let pointers: Vec<&str> = c.breaking().map(|d| d.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/points/p/response_schema/properties/by_name/additionalProperties/properties/m",
            "/points/p/response_schema/properties/items/items/properties/m",
        ],
        "{c}"
    );
    let report = c.to_string();
    assert!(
        report.starts_with("2 breaking change(s):\n  BREAKING /points/p/"),
        "{report}"
    );
    assert!(
        report.contains("extensions written before do not return it"),
        "{report}"
    );
}

#[test]
fn documents_that_are_not_catalogs_are_named() {
    let e = compare_documents(&json!([]), &doc(vec![])).unwrap_err();
    assert!(e.starts_with("the old catalog"), "{e}");
}

#[derive(JsonSchema)]
struct Tree {
    n: u32,
    children: Vec<Tree>,
}
#[derive(JsonSchema)]
#[schemars(rename = "Tree")]
struct TreeWider {
    n: Option<u32>,
    children: Vec<TreeWider>,
}

#[test]
fn recursive_types_end_and_report_their_difference_once() {
    let c = payload_change::<Tree, TreeWider>();
    assert_eq!(
        c.breaking().count(),
        2,
        "`n` may now be null and may be absent: {c}"
    );
    assert!(
        c.differences
            .iter()
            .all(|d| d.pointer == "/points/p/payload_schema/properties/n"),
        "{c}"
    );
}

#[derive(JsonSchema)]
struct WholeScore {
    score: i64,
}
#[derive(JsonSchema)]
struct FractionalScore {
    score: f64,
}
#[derive(JsonSchema)]
struct TextScore {
    score: String,
}

#[test]
fn a_type_that_widens_breaks_payloads_and_one_that_narrows_breaks_responses() {
    let (_, breaking, why) = only(&payload_change::<WholeScore, FractionalScore>());
    assert!(breaking && why.contains("fractional"), "{why}");
    let (_, breaking, why) = only(&payload_change::<FractionalScore, WholeScore>());
    assert!(!breaking && why.contains("whole number"), "{why}");
    let (_, breaking, _) = only(&response_change::<FractionalScore, WholeScore>());
    assert!(
        breaking,
        "a response that must now be whole refuses old answers"
    );
    // A different type altogether breaks either way.
    let c = payload_change::<WholeScore, TextScore>();
    assert!(c.is_breaking(), "{c}");
    assert!(response_change::<WholeScore, TextScore>().is_breaking());
}

#[test]
fn recording_inputs_is_a_compatible_change_either_way_and_missing_means_off() {
    let a = point("a", "sync", json!({}), Value::Null);
    let mut recording = a.clone();
    recording["record_inputs"] = json!(true);
    let on = compare_docs(vec![a.clone()], vec![recording.clone()]);
    let (at, breaking, why) = only(&on);
    assert_eq!((at.as_str(), breaking), ("/points/a/record_inputs", false));
    assert!(why.contains("now keeps the last inputs"), "{why}");
    let off = compare_docs(vec![recording], vec![a.clone()]);
    assert!(only(&off).2.contains("no longer keeps"), "{off}");
    let mut explicit_off = a.clone();
    explicit_off["record_inputs"] = json!(false);
    assert!(
        compare_docs(vec![a], vec![explicit_off])
            .differences
            .is_empty()
    );
}
