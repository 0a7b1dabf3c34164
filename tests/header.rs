//! The checked-in header must equal what build.rs generates, and its version
//! macros must agree with Cargo.toml.

use std::path::Path;

const FRESH: &str = include_str!(concat!(env!("OUT_DIR"), "/zk_states.h"));

#[test]
fn checked_in_header_matches_fresh_generation() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/zk_states.h");
    let checked_in = std::fs::read_to_string(&path).expect("include/zk_states.h exists");
    if checked_in != FRESH {
        let line = checked_in
            .lines()
            .zip(FRESH.lines())
            .position(|(a, b)| a != b);
        panic!(
            "include/zk_states.h differs from the header build.rs generates (first differing line: {:?}); \
             run scripts/regen-header and commit the result",
            line.map(|l| l + 1)
        );
    }
}

#[test]
fn version_macros_match_cargo_toml() {
    let want = [
        format!(
            "#define ZK_STATES_VERSION \"{}\"",
            env!("CARGO_PKG_VERSION")
        ),
        format!(
            "#define ZK_STATES_VERSION_MAJOR {}",
            env!("CARGO_PKG_VERSION_MAJOR")
        ),
        format!(
            "#define ZK_STATES_VERSION_MINOR {}",
            env!("CARGO_PKG_VERSION_MINOR")
        ),
        format!(
            "#define ZK_STATES_VERSION_PATCH {}",
            env!("CARGO_PKG_VERSION_PATCH")
        ),
    ];
    for line in want {
        assert!(FRESH.lines().any(|l| l == line), "header lacks `{line}`");
    }
    let abi = format!(
        "#define ZK_STATES_ABI_VERSION {}",
        zk_states::ffi::core::ZK_STATES_ABI_VERSION
    );
    assert!(FRESH.lines().any(|l| l == abi));
}

#[test]
fn every_exported_symbol_is_prefixed_and_documented() {
    let lines: Vec<&str> = FRESH.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let is_decl = line.starts_with("#define ZK")
            || (line.contains('(') && line.ends_with(';') && !line.starts_with(' '));
        if !is_decl || line.starts_with("#define ZK_STATES_H") {
            continue;
        }
        // Each declaration is preceded by a doc comment ending in " */".
        assert!(
            i > 0 && lines[i - 1].trim_end().ends_with("*/"),
            "undocumented: {line}"
        );
    }
    for line in &lines {
        if let Some(rest) = line.strip_prefix("#define ") {
            assert!(rest.starts_with("ZK_"), "unprefixed macro: {line}");
        }
    }
}
