use extend_hooks::{extension_point, Container};

#[extension_point(name = "Bad Name", mode = "sometimes", timeout = "0s", retries = 3)]
pub async fn on_new_lead(tenant: &Container, lead: &String) -> bool;

fn main() {}
