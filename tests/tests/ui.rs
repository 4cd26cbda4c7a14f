//! Compile-time behaviour of `#[extension_point]`: one failing case per
//! diagnostic, and the shapes that must compile.
//!
//! The expected diagnostics were recorded with rustc 1.95; compiler wording
//! changes between releases, so on another compiler the comparison is not
//! run and the test says why. After a toolchain update, regenerate with
//! `TRYBUILD=overwrite cargo test -p extend-hooks-tests --test ui`, review
//! the diff, and move the version below.

#[rustversion::stable(1.95)]
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/fail/*.rs");
    t.pass("ui/pass/*.rs");
}

#[rustversion::not(stable(1.95))]
#[test]
fn ui() {
    println!(
        "UI expectations were recorded with rustc 1.95 and this is another compiler: \
         not compared. Re-record them with TRYBUILD=overwrite (see tests/tests/ui.rs)."
    );
}
