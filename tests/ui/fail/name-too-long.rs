use extend_hooks::{extension_point, Container};

#[extension_point(name = "a-name-that-goes-on-and-on-well-past-the-sixty-four-characters-allowed")]
pub async fn on_new_lead(tenant: &Container, lead: &String) -> bool;

fn main() {}
