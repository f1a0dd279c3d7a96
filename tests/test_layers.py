"""scripts/check-layers.py (issue 31, item 3): it finds an import circle
between top-level modules and a runtime module importing a capability, and
the real tree has neither. Needs no cluster."""
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SCRIPT = os.path.join(ROOT, "scripts", "check-layers.py")


def run(root):
    p = subprocess.run([sys.executable, SCRIPT, str(root)], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def tree(tmp_path, files):
    for rel, text in files.items():
        path = tmp_path / "src" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


BASE = {
    "lib.rs": "pub mod runtime;\npub mod audit;\npub mod admin;\nfn f() { crate::admin::x(); crate::runtime::y(); }\n",
    "runtime/mod.rs": "pub mod db;\n",
    "runtime/db.rs": "pub fn y() {}\n",
    "audit/mod.rs": "use crate::runtime::db;\npub fn record() {}\n",
    "admin/mod.rs": "pub mod accounts;\n",
    "admin/accounts.rs": "use crate::{audit, runtime::db};\npub fn x() { audit::record(); }\n",
}


def test_the_real_tree_has_no_circle():
    code, out = run(ROOT)
    assert code == 0, out
    assert out.startswith("check-layers: no import circles (src: ")
    assert len(out.strip().splitlines()) == 1


def test_a_layered_tree_passes(tmp_path):
    code, out = run(tree(tmp_path, BASE))
    assert code == 0, out
    assert "src: 3 modules, 3 imports" in out


def test_a_planted_circle_fails_and_is_named(tmp_path):
    # audit -> admin (a path in an expression, in a nested file) closes admin -> audit.
    files = dict(BASE)
    files["audit/triggers.rs"] = "fn g() { crate::admin::accounts::x(); }\n"
    files["audit/mod.rs"] += "pub mod triggers;\n"
    code, out = run(tree(tmp_path, files))
    assert code == 1, out
    assert "import circle between admin, audit: admin -> audit -> admin" in out


def test_a_circle_through_a_use_group_fails(tmp_path):
    files = dict(BASE)
    files["audit/mod.rs"] = "use crate::{runtime::db, admin::{accounts}};\npub fn record() {}\n"
    code, out = run(tree(tmp_path, files))
    assert code == 1, out
    assert "admin -> audit -> admin" in out


def test_runtime_importing_a_capability_fails(tmp_path):
    files = dict(BASE)
    files["runtime/errors.rs"] = "pub fn raise() { crate::audit::record(); }\n"
    code, out = run(tree(tmp_path, files))
    assert code == 1, out
    assert "the runtime layer imports audit" in out


def test_comments_and_macro_crate_paths_do_not_count(tmp_path):
    files = dict(BASE)
    files["runtime/db.rs"] = (
        "//! Called by crate::admin::accounts (a comment).\n"
        "/* crate::audit::record() */\n"
        "macro_rules! m { () => { $crate::admin::x() } }\n"
        "pub fn y() {} // crate::audit\n"
    )
    code, out = run(tree(tmp_path, files))
    assert code == 0, out
