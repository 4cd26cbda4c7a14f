use extend_hooks::extension_point;

#[extension_point(name = "on-new-lead")]
pub async fn on_new_lead() -> bool;

fn main() {}
