//! Two points with one name make `Catalog::collect` fail, naming both places.
//! (A test binary of its own: the duplicate would break every other catalog test.)

use extend_hooks::{Catalog, Container, extension_point};

mod first {
    use super::*;
    #[extension_point(name = "on-signup")]
    pub async fn on_signup(tenant: &Container, email: &str) -> bool;
}

mod second {
    use super::*;
    #[extension_point(name = "on-signup", mode = "async")]
    pub fn on_signup(tenant: &Container, email: &str);
}

#[test]
fn duplicate_names_are_an_error_naming_both_locations() {
    let err = Catalog::collect().unwrap_err();
    assert_eq!(err.name, "on-signup");
    let message = err.to_string();
    assert!(
        message.starts_with("extension point \"on-signup\" is declared twice: by duplicate_points::first::on_signup at tests/tests/duplicate_points.rs:8:"),
        "{message}"
    );
    assert!(
        message.contains(
            "and by duplicate_points::second::on_signup at tests/tests/duplicate_points.rs:14:"
        ),
        "{message}"
    );
}
