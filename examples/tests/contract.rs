//! The CRM's extension contract: its catalog must stay compatible with the
//! committed `catalog.lock.json` (write it again with
//! `EXTEND_CATALOG_ACCEPT=1 cargo test -p extend-hooks-examples --test contract`).

use extend_hooks::Catalog;
use extend_hooks::catalog::{LockCheck, check_compatible};

const LOCK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/catalog.lock.json");

fn catalog() -> Catalog {
    // Keep the CRM linked: its points are this binary's catalog.
    let _ = extend_hooks_examples::on_new_lead;
    Catalog::collect().unwrap()
}

#[test]
fn the_crm_keeps_its_extension_contract() {
    let _ = catalog();
    extend_hooks::catalog::assert_compatible(LOCK);
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("contract-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("catalog.lock.json")
}

#[test]
fn a_missing_lock_is_written_only_when_accepted() {
    let path = scratch("missing");
    let _ = std::fs::remove_file(&path);
    let e = check_compatible(&catalog(), &path, false).unwrap_err();
    assert!(e.contains("EXTEND_CATALOG_ACCEPT=1"), "{e}");
    assert!(!path.exists());
    assert_eq!(
        check_compatible(&catalog(), &path, true).unwrap(),
        LockCheck::Written(None)
    );
    assert_eq!(
        check_compatible(&catalog(), &path, false).unwrap(),
        LockCheck::Same
    );
    // Source locations are not part of the lock: they move with every edit.
    assert!(
        !std::fs::read_to_string(&path)
            .unwrap()
            .contains("\"source\"")
    );
}

#[test]
fn a_breaking_change_fails_with_a_report_and_a_compatible_one_passes() {
    let path = scratch("changes");
    let mut locked = catalog().to_json();
    // The lock knows a point the code no longer has: removing it breaks.
    let points = locked["points"].as_array_mut().unwrap();
    let mut gone = points[0].clone();
    gone["name"] = "lead-merged".into();
    points.push(gone);
    std::fs::write(&path, locked.to_string()).unwrap();
    let e = check_compatible(&catalog(), &path, false).unwrap_err();
    assert!(
        e.contains("BREAKING /points/lead-merged: point `lead-merged` was removed"),
        "{e}"
    );
    assert!(e.contains("EXTEND_CATALOG_ACCEPT=1"), "{e}");

    // A lock that lacks a point the code has: a new point is compatible.
    let mut locked = catalog().to_json();
    locked["points"].as_array_mut().unwrap().remove(0);
    std::fs::write(&path, locked.to_string()).unwrap();
    match check_compatible(&catalog(), &path, false).unwrap() {
        LockCheck::Compatible(c) => assert!(!c.is_breaking() && c.differences.len() == 1, "{c}"),
        other => panic!("{other:?}"),
    }
}
