// An async point may be declared `async fn`: the call then awaits the
// outbox's commit instead of blocking its thread, and still returns
// `Result<(), Error>`.
use extend_hooks::{extension_point, Container, Error};

#[extension_point(name = "lead-archived", mode = "async")]
pub async fn lead_archived(tenant: &Container, lead: &String);

#[extension_point(name = "lead-touched", mode = "async")]
pub fn lead_touched(tenant: &Container, lead: &String);

#[allow(dead_code)]
async fn caller(tenant: &Container) -> Result<(), Error> {
    lead_archived(tenant, &"l-1".to_owned()).await?;
    lead_touched(tenant, &"l-1".to_owned())
}

fn main() {}
