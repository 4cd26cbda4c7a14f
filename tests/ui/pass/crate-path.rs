// A platform that re-exports the runtime under its own name.
mod platform {
    pub use extend_hooks as hooks;
}

use platform::hooks::{extension_point, Container};

#[extension_point(name = "on-new-lead", crate = platform::hooks)]
pub async fn on_new_lead(tenant: &Container, email: &str) -> bool {
    let _ = email;
    true
}

#[extension_point(name = "lead-archived", mode = "async", crate = crate::platform::hooks)]
pub fn lead_archived(tenant: &Container, email: &str);

fn main() {
    let _ = (on_new_lead, lead_archived);
}
