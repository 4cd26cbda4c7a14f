use extend_hooks::{extension_point, Container};

#[extension_point(name = "on-new-lead", record_inputs = "yes")]
pub async fn on_new_lead(tenant: &Container, lead: &String) -> bool;

fn main() {}
