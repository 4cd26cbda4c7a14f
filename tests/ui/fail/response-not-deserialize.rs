use extend_hooks::{extension_point, Container};

#[derive(schemars::JsonSchema)]
pub struct Decision {
    pub accept: bool,
}

#[extension_point(name = "on-new-lead")]
pub async fn on_new_lead(tenant: &Container, lead: &String) -> Decision;

fn main() {}
