use extend_hooks::{extension_point, Container};

#[extension_point(name = "lead-archived", mode = "async")]
pub fn lead_archived(tenant: &Container, lead: &String) -> bool;

fn main() {}
