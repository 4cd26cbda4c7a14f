use extend_hooks::{extension_point, Container};

#[extension_point(timeout = "2s")]
pub async fn on_new_lead(tenant: &Container, lead: &String) -> bool;

fn main() {}
