//! The CRM platform's data types and extension points.
//!
//! Tenants extend four moments of a lead's life: scoring a new lead (sync,
//! with the platform's own scoring as the default), enriching it (sync, no
//! default), the e-mail it is sent (a Mustache template, in the platform's
//! own language) and its archiving (async notification).

use extend_hooks::catalog::DuplicatePoint;
use extend_hooks::{Catalog, Container, extension_point};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A lead as the CRM receives it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct NewLead {
    /// The person's name.
    pub name: String,
    /// Where to reach them.
    pub email: String,
    /// Their company, when known.
    pub company: Option<String>,
}

/// A scoring decision.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
pub struct LeadDecision {
    /// 0 to 100.
    pub score: u8,
    /// Whether sales should follow up.
    pub accept: bool,
}

/// Extra facts a tenant's extension found about a lead.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
pub struct Enrichment {
    /// The company's industry.
    pub industry: Option<String>,
    /// Its head count.
    pub employees: Option<u32>,
}

/// Scores a new lead. This doc comment is the point's description in the catalog.
#[extension_point(name = "on-new-lead", mode = "sync", timeout = "2s", record_inputs)]
pub async fn on_new_lead(tenant: &Container, lead: &NewLead) -> LeadDecision {
    // The platform's own scoring, used when the tenant has no extension.
    let score = if lead.company.is_some() { 60 } else { 40 };
    LeadDecision {
        score,
        accept: score >= 50,
    }
}

/// Adds what the tenant knows about the lead's company. Without a body there is
/// no default: the caller gets `None` when the tenant has no extension.
#[extension_point(name = "enrich-lead", timeout = "500ms")]
pub async fn enrich_lead(tenant: &Container, lead: &NewLead) -> Enrichment;

/// Tells the tenant a lead was archived, and why. Nothing waits for the answer.
#[extension_point(name = "lead-archived", mode = "async")]
pub fn lead_archived(tenant: &Container, lead: &NewLead, reason: &str);

/// The e-mail the CRM sends a new lead. Tenants write it as a Mustache
/// template (`language = "mustache"`), rendered with the lead; without one
/// the platform's own text is sent.
#[extension_point(name = "format-email", timeout = "1s", language = "mustache")]
pub async fn format_email(tenant: &Container, lead: &NewLead) -> String {
    format!("Hello {},\n\nThank you for your interest.\n", lead.name)
}

/// The Mustache compiler the CRM publishes with its catalog: a JavaScript
/// module that runs inside each tenant's sandbox.
pub const MUSTACHE_COMPILER: &str = include_str!("languages/mustache.js");

/// Where a new `format-email` template starts.
pub const MUSTACHE_STARTER: &str = "Hello {{name}},\n\nThank you for your interest{{#company}} on behalf of {{company}}{{/company}}.\n";

/// The CRM's catalog: its points, and the Mustache language.
///
/// # Errors
/// [`DuplicatePoint`] when two points share a name.
pub fn catalog() -> Result<Catalog, DuplicatePoint> {
    Ok(Catalog::collect()?.language(
        "mustache",
        MUSTACHE_COMPILER,
        Some(MUSTACHE_STARTER),
        Some("handlebars"),
    ))
}
