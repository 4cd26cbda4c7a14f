use extend_hooks::{extension_point, Container};

#[extension_point(name = "on-new-lead")]
pub async fn on_new_lead(tenant: &Container, lead: impl serde::Serialize) -> bool;

fn main() {}
