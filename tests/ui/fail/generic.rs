use extend_hooks::{extension_point, Container};

#[extension_point(name = "on-new-lead")]
pub async fn on_new_lead<T: serde::Serialize>(tenant: &Container, lead: &T) -> bool;

fn main() {}
