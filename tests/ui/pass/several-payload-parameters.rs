use extend_hooks::{extension_point, Container};

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct NewLead {
    pub name: String,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct Decision {
    pub accept: bool,
}

#[extension_point(name = "review-lead", timeout = "750ms")]
pub async fn review_lead(tenant: &Container, lead: &NewLead, reviewer: &str, round: u32) -> Decision {
    let _ = (lead, reviewer, round);
    Decision { accept: true }
}

async fn caller(tenant: &Container, lead: &NewLead) -> Result<bool, extend_hooks::Error> {
    Ok(review_lead(tenant, lead, "ops", 2).await?.accept)
}

fn main() {
    let _ = caller;
}
