//! `fluxbase advisor [-o json]` (issue 32): the findings of
//! dashboard.advisories(), most severe first. Exits 1 when an error-level
//! finding exists, so a CI job can fail on it.

use crate::fail::Fail;
use crate::Ctx;

pub fn advisor(ctx: &mut Ctx) -> Result<(), Fail> {
    let rows = ctx.rows(
        "dashboard.advisories",
        "SELECT pg_catalog.to_json(t)::text FROM dashboard.advisories() t",
        &[],
    )?;
    ctx.out.list(&rows, "findings");
    let errors = rows.iter().filter(|r| r["level"] == "error").count();
    if errors > 0 {
        return Err(Fail::failure(format!(
            "{errors} error-level finding{}: fix them (each has its remedy) or run `fluxbase advisor -o json` for details",
            if errors == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}
