mod crm {
    pub mod leads {
        pub mod hooks {
            use extend_hooks::{extension_point, Container};

            #[extension_point(name = "on-new-lead")]
            pub async fn on_new_lead(tenant: &Container, email: &str) -> bool;

            #[extension_point(name = "lead-archived", mode = "async", timeout = "1m")]
            pub(crate) fn lead_archived(tenant: &Container, email: &str);
        }
    }
}

fn main() {
    let _ = (crm::leads::hooks::on_new_lead, crm::leads::hooks::lead_archived);
    let catalog = extend_hooks::Catalog::collect().unwrap();
    assert_eq!(catalog.len(), 2);
    assert_eq!(
        catalog.get("on-new-lead").unwrap().rust_path().split_once("::").unwrap().1,
        "crm::leads::hooks::on_new_lead"
    );
}
