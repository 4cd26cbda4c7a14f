//! The Extension Editor's response-schema check, tested on its own: Node's
//! test runner on `editor/tests/schema.test.js`, which imports the very
//! module the editor serves (`editor/app/js/schema.js`). Needs `node` on
//! the PATH, as the benchmarks and the wt-cli test do.

#[test]
fn the_editors_schema_check_passes_its_own_tests() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new("node")
        // The editor's files are ES modules served as `.js`.
        .args(["--experimental-default-type=module", "--test"])
        .arg(format!("{dir}/editor/tests/schema.test.js"))
        .output()
        .expect("node is needed to test the editor's script");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the schema tests failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Not vacuous: the runner found and passed the tests.
    assert!(text.contains("# pass 6"), "{text}");
}
