use extend_hooks::extension_point;

struct Crm;

impl Crm {
    #[extension_point(name = "on-new-lead")]
    pub async fn on_new_lead(&self, lead: &String) -> bool;
}

fn main() {}
