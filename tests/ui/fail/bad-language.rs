use extend_hooks::{extension_point, Container};

#[extension_point(name = "format-email", language = "Mustache 2")]
pub async fn format_email(tenant: &Container, lead: &String) -> String;

#[extension_point(name = "format-sms", language = 7)]
pub async fn format_sms(tenant: &Container, lead: &String) -> String;

fn main() {}
