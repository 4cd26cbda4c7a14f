use extend_hooks::extension_point;

pub struct Lead;

#[extension_point(name = "on-new-lead")]
pub async fn on_new_lead(lead: &Lead, note: &String) -> bool;

fn main() {}
