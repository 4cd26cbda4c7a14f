use extend_hooks::{extension_point, Container};

// The attribute is wrong, but the function keeps the signature a valid point
// would have: the only error is the bad key, none at the call site below.
#[extension_point(name = "on-new-lead", timout = "2s")]
pub async fn on_new_lead(tenant: &Container, lead: &String) -> bool {
    true
}

async fn caller(tenant: &Container) -> Result<bool, extend_hooks::Error> {
    let accepted: bool = on_new_lead(tenant, &String::from("ada")).await?;
    Ok(accepted)
}

fn main() {
    let _ = caller;
}
