//! Compiles `src/runtime/confine_hooks.c` (the C trampolines of confinement's hooks,
//! see src/runtime/confine.rs) against the server headers of the PostgreSQL the
//! extension is built for: the `pg_config` cargo-pgrx passes
//! (`PGRX_PG_CONFIG_PATH`), else the one `cargo pgrx init` recorded for the
//! enabled feature (pg15 or pg18), as pgrx-pg-sys finds it.
use pgrx_pg_config::Pgrx;

fn main() {
    println!("cargo:rerun-if-changed=src/runtime/confine_hooks.c");
    println!("cargo:rerun-if-env-changed=PGRX_PG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PGRX_HOME");
    let major = if std::env::var_os("CARGO_FEATURE_PG18").is_some() { 18 } else { 15 };
    let pg_config = Pgrx::from_config()
        .and_then(|p| p.get(&format!("pg{major}")))
        .unwrap_or_else(|e| panic!("no pg_config for PostgreSQL {major}: {e}"));
    let include = pg_config.includedir_server().expect("pg_config --includedir-server");
    cc::Build::new()
        .file("src/runtime/confine_hooks.c")
        .include(&include)
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-missing-field-initializers")
        .flag_if_supported("-Wno-sign-compare")
        .flag_if_supported("-Wno-clobbered")
        .compile("fluxbase_confine_hooks");
}
