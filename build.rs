//! Generates `zk_states.h` with cbindgen into `OUT_DIR`.
//!
//! The header is checked in at `include/zk_states.h`; a test compares it with
//! this fresh generation and fails on any drift. To refresh the checked-in copy
//! run `ZK_STATES_WRITE_HEADER=1 cargo build` (or `scripts/regen-header`). The
//! build script never writes outside `OUT_DIR` unless asked, so `cargo package`
//! verification stays clean.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=ZK_STATES_WRITE_HEADER");

    let version = |key: &str| env::var(key).expect(key);

    // The shared library's soname follows cargo-c's rule (major, or 0.minor
    // before 1.0), so `cargo cinstall` and `make install` agree.
    let major = version("CARGO_PKG_VERSION_MAJOR");
    let soname_version = if major == "0" {
        format!("0.{}", version("CARGO_PKG_VERSION_MINOR"))
    } else {
        major
    };
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libzk_states.so.{soname_version}");
    }

    let mut config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("read cbindgen.toml");
    // Version macros come from Cargo.toml, so they can never disagree with it.
    let from_toml = config.after_includes.take().unwrap_or_default();
    config.after_includes = Some(format!(
        "\n/** The library version this header belongs to, as a string. */\n\
         #define ZK_STATES_VERSION \"{}\"\n\
         /** The major version. */\n#define ZK_STATES_VERSION_MAJOR {}\n\
         /** The minor version. */\n#define ZK_STATES_VERSION_MINOR {}\n\
         /** The patch version. */\n#define ZK_STATES_VERSION_PATCH {}\n{}\n",
        version("CARGO_PKG_VERSION"),
        version("CARGO_PKG_VERSION_MAJOR"),
        version("CARGO_PKG_VERSION_MINOR"),
        version("CARGO_PKG_VERSION_PATCH"),
        from_toml,
    ));

    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen failed to generate zk_states.h");
    bindings.write_to_file(out_dir.join("zk_states.h"));
    if env::var_os("ZK_STATES_WRITE_HEADER").is_some_and(|v| !v.is_empty() && v != "0") {
        bindings.write_to_file(crate_dir.join("include").join("zk_states.h"));
    }
}
