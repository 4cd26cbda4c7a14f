use extend_hooks::{extension_point, Container};

#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct Enrichment {
    pub industry: Option<String>,
}

#[extension_point(name = "enrich-lead", timeout = "500ms")]
pub async fn enrich_lead(tenant: &Container, email: &String) -> Enrichment;

async fn caller(tenant: &Container) -> Result<Option<Enrichment>, extend_hooks::Error> {
    enrich_lead(tenant, &"a@b.c".to_owned()).await
}

fn main() {
    let _ = caller;
}
