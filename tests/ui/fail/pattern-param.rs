use extend_hooks::{extension_point, Container};

pub struct Lead(String);

#[extension_point(name = "on-new-lead")]
pub async fn on_new_lead(tenant: &Container, Lead(name): Lead) -> bool;

fn main() {}
