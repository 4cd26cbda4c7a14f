use extend_hooks::{extension_point, Container};

#[derive(serde::Serialize)]
pub struct NewLead {
    pub name: String,
}

#[extension_point(name = "on-new-lead")]
pub async fn on_new_lead(tenant: &Container, lead: &NewLead) -> bool;

fn main() {}
