use extend_hooks::{extension_point, Container};

#[extension_point(name = "OnNewLead")]
pub async fn on_new_lead(tenant: &Container, lead: &String) -> bool;

fn main() {}
