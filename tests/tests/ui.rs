//! Compile-time behaviour of `#[extension_point]`: one failing case per
//! diagnostic, and the shapes that must compile.
//!
//! Diagnostics depend on the compiler version; regenerate them with
//! `TRYBUILD=overwrite cargo test -p extend-hooks-tests --test ui` after a
//! toolchain update and review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/fail/*.rs");
    t.pass("ui/pass/*.rs");
}
