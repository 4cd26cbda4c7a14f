//! The catalog as a platform sees it at startup: points from this crate, from
//! the examples crate, and from nested modules.

use extend_hooks::{Catalog, Container, Mode, extension_point};

mod billing {
    pub(crate) mod invoices {
        use extend_hooks::{Container, extension_point};

        /// Lets a tenant veto an invoice.
        ///
        /// Second paragraph of the description.
        #[extension_point(name = "invoice-veto", timeout = "1m")]
        pub async fn invoice_veto(tenant: &Container, amount_cents: &u64) -> bool;
    }
}

/// Renamed runtime crates work with `crate = path`.
mod renamed {
    pub(crate) use extend_hooks as hooks;
}

#[extension_point(name = "renamed-crate", mode = "async", crate = renamed::hooks)]
fn renamed_crate(tenant: &Container, note: &String);

fn catalog() -> Catalog {
    Catalog::collect().expect("no duplicate points in this binary")
}

#[test]
fn collects_points_from_every_linked_crate_and_module() {
    // Keep the examples crate linked: its points are part of this binary.
    let _ = extend_hooks_examples::on_new_lead;
    let catalog = catalog();
    let names: Vec<&str> = catalog.iter().map(|p| p.name()).collect();
    assert_eq!(
        names,
        [
            "enrich-lead",
            "format-email",
            "invoice-veto",
            "lead-archived",
            "on-new-lead",
            "renamed-crate",
            "type-names"
        ]
    );
    assert!(!catalog.is_empty());
    assert_eq!(catalog.len(), 7);
    // The CRM's e-mail is written in its Mustache; the other points in JavaScript.
    assert_eq!(
        catalog.get("format-email").unwrap().language(),
        Some("mustache")
    );
    assert_eq!(catalog.get("on-new-lead").unwrap().language(), None);
    assert_eq!(
        catalog.missing_languages(),
        [("format-email", "mustache")],
        "Catalog::collect() alone publishes no language"
    );
    let crm = extend_hooks_examples::catalog().unwrap();
    assert!(crm.missing_languages().is_empty());
    assert!(crm.template("format-email").unwrap().contains("{{name}}"));
    assert_eq!(
        crm.to_json()["languages"]["mustache"]["editor_mode"],
        "handlebars"
    );
    assert_eq!(crm.to_json()["points"][1]["language"], "mustache");

    let veto = catalog.get("invoice-veto").unwrap();
    assert_eq!(veto.mode(), Mode::Sync);
    assert_eq!(veto.timeout(), std::time::Duration::from_secs(60));
    assert_eq!(
        veto.description(),
        "Lets a tenant veto an invoice.\n\nSecond paragraph of the description."
    );
    assert_eq!(veto.rust_path(), "catalog::billing::invoices::invoice_veto");
    assert_eq!(veto.location().file, "tests/tests/catalog.rs");
    assert!(!veto.has_default());
    assert_eq!(veto.payload_type(), "u64");
    assert_eq!(veto.response_type(), Some("bool"));

    let lead = catalog.get("on-new-lead").unwrap();
    assert!(lead.has_default());
    assert_eq!(lead.rust_path(), "extend_hooks_examples::on_new_lead");
    assert_eq!(lead.timeout(), std::time::Duration::from_secs(2));

    let archived = catalog.get("lead-archived").unwrap();
    assert_eq!(archived.mode(), Mode::Async);
    assert_eq!(archived.timeout(), std::time::Duration::from_secs(30));
    assert_eq!(archived.payload_type(), "{ lead: NewLead, reason: str }");
    assert!(archived.response_schema().is_none());

    assert!(catalog.get("nope").is_none());
}

#[test]
fn schemas_are_draft_2020_12_with_definitions() {
    let catalog = catalog();
    let lead = catalog.get("on-new-lead").unwrap();
    let payload = lead.payload_schema().to_value();
    assert_eq!(
        payload["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(payload["type"], "object");
    assert_eq!(payload["properties"]["email"]["type"], "string");
    assert_eq!(payload["required"], serde_json::json!(["name", "email"]));
    let response = lead.response_schema().unwrap().to_value();
    assert_eq!(response["properties"]["score"]["maximum"], 255);

    let archived = catalog
        .get("lead-archived")
        .unwrap()
        .payload_schema()
        .to_value();
    assert_eq!(archived["required"], serde_json::json!(["lead", "reason"]));
    assert_eq!(archived["properties"]["reason"]["type"], "string");
    // Several parameters reference shared definitions.
    assert_eq!(archived["properties"]["lead"]["$ref"], "#/$defs/NewLead");
    assert_eq!(archived["$defs"]["NewLead"]["type"], "object");
}

#[test]
fn json_rendering_is_stable_and_sorted() {
    let catalog = catalog();
    let first = serde_json::to_string(&catalog.to_json()).unwrap();
    let second = serde_json::to_string(&Catalog::collect().unwrap().to_json()).unwrap();
    assert_eq!(first, second);
    let doc = catalog.to_json();
    let points = doc["points"].as_array().unwrap();
    assert_eq!(points.len(), 7);
    assert_eq!(points[0]["name"], "enrich-lead");
    assert_eq!(points[0]["timeout_ms"], 500);
    assert_eq!(points[0]["source"]["file"], "examples/crm/lib.rs");
    let keys: Vec<&String> = points[0].as_object().unwrap().keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[test]
fn display_is_an_aligned_table() {
    let table = catalog().to_string();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 8);
    assert!(lines[0].starts_with("POINT"));
    let mode_column = lines[0].find("MODE").unwrap();
    for line in &lines[1..] {
        assert!(
            line[mode_column..].starts_with("sync") || line[mode_column..].starts_with("async"),
            "{line}"
        );
    }
    assert!(table.contains("on-new-lead"));
    assert!(table.contains("NewLead -> LeadDecision"));
    assert!(table.contains("{ lead: NewLead, reason: str } -> ()"));
}

#[test]
fn markdown_documents_each_point() {
    let md = catalog().to_markdown();
    assert!(md.starts_with("# Extension points\n"));
    assert!(md.contains("| `on-new-lead` | sync | 2s | yes | `NewLead` | `LeadDecision` |"));
    assert!(md.contains("## `invoice-veto`\n\nLets a tenant veto an invoice."));
    assert!(md.contains("### Response"));
}

#[test]
fn an_empty_catalog_is_easy_to_assert_on() {
    let empty = Catalog::from_points([]).unwrap();
    assert!(empty.is_empty());
    assert_eq!(
        empty.to_string(),
        "no extension points are linked into this binary\n"
    );
    assert_eq!(empty.to_json(), serde_json::json!({"points": []}));
}

mod shapes {
    use extend_hooks::{Container, extension_point};
    use std::collections::BTreeMap;

    #[extension_point(name = "type-names", mode = "async")]
    pub(crate) fn type_names<'a>(
        tenant: &Container,
        tags: &'a Vec<&'a str>,
        counts: BTreeMap<String, Option<u32>>,
        path: &std::path::PathBuf,
    );
}

#[test]
fn type_names_read_as_written() {
    let _ = shapes::type_names;
    let catalog = catalog();
    assert_eq!(
        catalog.get("type-names").unwrap().payload_type(),
        "{ tags: Vec<&'a str>, counts: BTreeMap<String,Option<u32>>, path: std::path::PathBuf }"
    );
}
