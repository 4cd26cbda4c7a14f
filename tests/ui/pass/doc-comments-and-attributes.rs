#![deny(missing_docs)]
//! Points keep their docs and other attributes.

use extend_hooks::{extension_point, Container};

/// Scores a lead.
///
/// The description spans paragraphs.
#[extension_point(name = "score-lead")]
#[allow(clippy::needless_lifetimes)]
pub async fn score_lead(tenant: &Container, email: &str) -> u8 {
    let _ = email;
    50
}

fn main() {
    let catalog = extend_hooks::Catalog::collect().unwrap();
    let point = catalog.get("score-lead").unwrap();
    assert_eq!(point.description(), "Scores a lead.\n\nThe description spans paragraphs.");
}
