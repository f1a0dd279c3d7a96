use super::*;

/// `fluxbase audit verify [--witness FILE]`: the chain, and against a saved
/// head (a line `<id> <hash in hex>`), which is then moved on to the current head.
pub(super) fn audit_verify(ctx: &mut Ctx, witness: Option<&std::path::Path>) -> Result<(), Fail> {
    let saved = match witness {
        Some(path) if path.exists() => {
            let text = std::fs::read_to_string(path).map_err(|e| Fail::failure(format!("cannot read {}: {e}", path.display())))?;
            let mut parts = text.split_whitespace();
            match (parts.next().and_then(|i| i.parse::<i64>().ok()), parts.next(), parts.next()) {
                (Some(id), Some(hash), None) if id >= 0 && hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    Some((id, hash.to_string()))
                }
                _ => return Err(Fail::usage(format!("{} is not a witness file (a line `<id> <sha256 in hex>`)", path.display()))),
            }
        }
        _ => None,
    };
    let (id, hash) = (saved.as_ref().map(|(i, _)| i.to_string()), saved.as_ref().map(|(_, h)| h.clone()));
    let result = ctx.json_scalar(
        "dashboard_auth.verify_audit_chain",
        "SELECT to_json(t)::text FROM dashboard_auth.verify_audit_chain($1::text::bigint, pg_catalog.decode($2::text, 'hex')) t",
        &[id, hash],
    )?;
    let ok = result["ok"].as_bool() == Some(true);
    if !ok {
        let bad = &result["first_bad_id"];
        return Err(Fail::failure(match &saved {
            Some((wid, _)) if bad.as_i64() == Some(*wid) => format!(
                "the audit trail no longer reaches entry {wid} that the witness saw: entries were removed or replaced"
            ),
            _ => format!("the audit chain is broken at entry {bad}"),
        }));
    }
    let mut shown = json!({ "ok": true, "witness_checked": saved.as_ref().map(|(i, _)| i) });
    if let Some(path) = witness {
        let head = ctx.json_scalar(
            "dashboard_auth.audit_witness",
            "SELECT json_build_object('id', id, 'hash', pg_catalog.encode(hash, 'hex'))::text FROM dashboard_auth.audit_witness()",
            &[],
        )?;
        let line = format!("{} {}\n", head["id"], head["hash"].as_str().unwrap_or_default());
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, line)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| Fail::failure(format!("cannot save the witness to {}: {e}", path.display())))?;
        shown["witness"] = head;
    }
    let sentence = match (&saved, witness) {
        (Some((wid, _)), Some(path)) => format!(
            "The audit chain is intact and still reaches entry {wid} of the witness; saved the head (entry {}) to {}.",
            shown["witness"]["id"],
            path.display()
        ),
        (None, Some(path)) => format!("The audit chain is intact; saved its head (entry {}) to {}.", shown["witness"]["id"], path.display()),
        _ => "The audit chain is intact.".to_string(),
    };
    ctx.out.done(shown, &sentence);
    Ok(())
}
