use extend_hooks::{extension_point, Container};

#[extension_point(name = "on-new-lead", timeout = "1.5s")]
pub async fn on_new_lead(tenant: &Container, lead: &String) -> bool;

fn main() {}
