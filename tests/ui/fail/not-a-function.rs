use extend_hooks::extension_point;

#[extension_point(name = "on-new-lead")]
pub struct OnNewLead;

fn main() {}
