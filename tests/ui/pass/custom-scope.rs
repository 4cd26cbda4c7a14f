use extend_hooks::{extension_point, Container, Scope};
use std::sync::Arc;

pub struct Tenant {
    pub extensions: Container,
}

impl Scope for Tenant {
    fn container(&self) -> &Container {
        &self.extensions
    }
}

#[extension_point(name = "by-ref")]
pub async fn by_ref(tenant: &Tenant, email: &str) -> bool;

#[extension_point(name = "by-arc", mode = "async")]
pub fn by_arc(tenant: Arc<Tenant>, email: String);

fn main() {
    let _ = (by_ref, by_arc);
}
