"""The CLI reads well in a real terminal (issue 24): each list command run under a
pseudo-terminal of 80 and 120 columns fits it, `-o wide` keeps every column,
yaml and json parse back to the same records, `-q` prints only ids, and output
that is not a terminal is never shortened.
"""
import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import termios

import pytest
import yaml

from conftest import PASSWORD, one, setup_admin
from test_cli import BIN, Cli, url_for

LONG_EMAIL = "a.person.with.a.really.quite.long.address.for.testing@subdomain.example.com"
LONG_NOTE = "lorem ipsum dolor sit amet " * 8

# (command, the key -q prints)
LISTS = [
    (["users", "list"], "id"),
    (["admin", "users", "list"], "id"),
    (["admin", "sessions", "list"], "id"),
    (["admin", "invitations", "list"], "id"),
    (["tables", "list", "--schema", "public"], None),
    (["audit", "--limit", "30"], "id"),
    (["tables", "describe", "public.things"], None),
]


@pytest.fixture
def cli(db, tmp_path):
    return Cli(db, tmp_path)


@pytest.fixture
def data(su, cli):
    uid, _ = setup_admin(su)
    su.execute("SELECT dashboard_auth.create_admin('second.admin.with.a.long.name@example.com', %s, %s)",
               (PASSWORD, "Someone With A Rather Long Full Name Indeed"))
    for ua in ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
               "curl/8.5"]:
        su.execute("SELECT * FROM dashboard_auth.login('root@example.com', %s, '203.0.113.77', %s)", (PASSWORD, ua))
    su.execute("SELECT dashboard_auth.invite_admin('invitee.with.long.address@example.com')")
    su.execute("INSERT INTO auth.users (email, phone, raw_user_meta_data, email_confirmed_at, last_sign_in_at) "
               "VALUES (%s, '15550100001', %s, now() - interval '3 days', now() - interval '5 minutes')",
               (LONG_EMAIL, json.dumps({"note": LONG_NOTE})))
    for i in range(3):
        su.execute("SELECT dashboard.invite_user(%s)", (f"user{i}@example.com",))
    su.execute("CREATE TABLE public.things (id int PRIMARY KEY, a_rather_long_column_name_for_a_table text, "
               "b jsonb DEFAULT '{}'::jsonb)")
    su.execute(f"COMMENT ON TABLE public.things IS '{LONG_NOTE}'")
    su.execute("GRANT SELECT ON public.things TO fluxbase_dashboard")
    return uid


def in_pty(cli, args, cols, rows=50):
    """Run the CLI with stdout (and stderr) on a pseudo-terminal `cols` wide; returns (exit code, lines)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    # no output post-processing (\n stays \n)
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.OPOST
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    env = cli.env({"COLUMNS": "999"})  # the terminal's size wins over COLUMNS
    p = subprocess.Popen(cli.argv(args), stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out = b""
    while True:
        r, _, _ = select.select([master], [], [], 30)
        if not r:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    code = p.wait(30)
    return code, out.decode().splitlines()


def piped(cli, *args):
    r = cli.ok(*args)
    return r.stdout


@pytest.mark.parametrize("cols", [80, 120])
def test_every_list_fits_the_terminal(cli, data, cols):
    for args, _ in LISTS + [(["metrics"], None)]:
        code, lines = in_pty(cli, args, cols)
        assert code == 0, (args, lines)
        assert len(lines) >= 2, (args, lines)
        print(f"$ fluxbase {' '.join(args)}  # {cols} columns", *lines, sep="\n")
        too_long = [ln for ln in lines if len(ln) > cols]
        assert not too_long, f"{args} at {cols} columns:\n" + "\n".join(lines)
        assert not any("\x1b" in ln for ln in lines), "no escape codes"
    # long values were shortened to fit, with an ellipsis; ids show their
    # first 8 characters on a terminal, as git and docker do (issue 30)
    _, lines = in_pty(cli, ["users", "list"], cols)
    assert lines[0].split()[:3] == ["ID", "EMAIL", "PHONE"]
    ids = [u["id"] for u in cli.json("users", "list")]
    assert all(any(ln.split()[0] == i[:8] for ln in lines) for i in ids), "\n".join(lines)
    assert not any(i in ln for i in ids for ln in lines), "no whole id on a terminal"
    assert any("…" in ln for ln in lines) and not any(LONG_EMAIL in ln for ln in lines)
    assert any("15550100001" in ln for ln in lines), "a phone number is never cut below 16 columns"
    # relative times
    assert any("min ago" in ln for ln in lines) and any("d ago" in ln for ln in lines)


def test_ids_give_way_before_emails_at_100_columns(cli, su):
    """Issue 30: twelve users named first.last.NN@company.example in a terminal
    of 100 columns: every email whole, every id its first 8 characters."""
    setup_admin(su)
    emails = [f"first.last.{n:02}@company.example" for n in range(12)]
    for e in emails:
        su.execute("SELECT dashboard.invite_user(%s)", (e,))
    code, lines = in_pty(cli, ["users", "list"], 100)
    assert code == 0, lines
    assert all(len(ln) <= 100 for ln in lines), "\n".join(lines)
    for e in emails:
        assert any(e in ln for ln in lines), (e, lines)
    ids = [u["id"] for u in cli.json("users", "list")]
    assert sorted(ln.split()[0] for ln in lines[1:]) == sorted(i[:8] for i in ids)
    # -o wide: the whole id
    _, wide = in_pty(cli, ["-o", "wide", "users", "list"], 100)
    assert all(any(i in ln for ln in wide) for i in ids)


def test_wide_keeps_every_column_and_value(cli, data):
    for args, _ in LISTS:
        records = cli.json(*args)
        code, lines = in_pty(cli, ["-o", "wide", *args], 80)
        assert code == 0
        header = lines[0]
        for key in records[0]:
            assert key.upper() in header, (args, key, header)
        assert not any("…" in ln for ln in lines), (args, lines[:3])
    _, lines = in_pty(cli, ["-o", "wide", "users", "list"], 80)
    text = "\n".join(lines)
    assert LONG_EMAIL in text and LONG_NOTE.strip() in text and "15550100001" in text


def test_yaml_and_json_parse_back_to_the_same_records(cli, data):
    for args, _ in LISTS:
        as_json = cli.json(*args)
        as_yaml = yaml.safe_load(piped(cli, "-o", "yaml", *args))
        assert as_yaml == as_json, args
        # a terminal changes nothing for scripts
        code, lines = in_pty(cli, ["-o", "json", *args], 80)
        assert code == 0 and json.loads("\n".join(lines)) == as_json
    uid = cli.json("users", "list")[0]["id"]
    assert yaml.safe_load(piped(cli, "-o", "yaml", "users", "get", uid)) == cli.json("users", "get", uid)
    assert yaml.safe_load(piped(cli, "-o", "yaml", "metrics")).keys() == cli.json("metrics").keys()


def test_quiet_prints_only_ids(cli, data):
    for args, key in LISTS:
        records = cli.json(*args)
        got = piped(cli, "-q", *args).splitlines()
        if key:
            assert got == [str(r[key]) for r in records], args
        else:
            assert len(got) == len(records), args
    # ids feed other commands
    for uid in piped(cli, "users", "list", "-q").split():
        assert cli.json("users", "get", uid)["id"] == uid
    assert piped(cli, "-q", "admin", "users", "get", str(data)).strip() == str(data)
    assert piped(cli, "-q", "admin", "sessions", "list", "--user-id", "00000000-0000-0000-0000-000000000000") == ""


def test_piping_never_shortens(cli, data):
    out = piped(cli, "users", "list")
    assert LONG_EMAIL in out and "…" not in out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "EMAIL", "PHONE"] and len(lines) == 5
    assert LONG_NOTE.strip() in piped(cli, "tables", "list", "--schema", "public")
    assert "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36" in piped(cli, "-o", "wide", "admin", "sessions", "list")


def test_no_headers(cli, data):
    with_h = piped(cli, "users", "list").splitlines()
    without = piped(cli, "users", "list", "--no-headers").splitlines()
    assert [ln.split() for ln in without] == [ln.split() for ln in with_h[1:]]
    code, lines = in_pty(cli, ["--no-headers", "admin", "users", "list"], 80)
    assert code == 0 and len(lines) == 2 and "EMAIL" not in lines[0]


def test_get_is_a_vertical_view(cli, data):
    uid = cli.json("users", "list", "--search", "15550100001")[0]["id"]
    code, lines = in_pty(cli, ["users", "get", uid], 80)
    assert code == 0
    fields = {ln.split(":", 1)[0] for ln in lines if ln and not ln.startswith(" ")}
    assert {"id", "email", "phone", "confirmed_at", "user_metadata"} <= fields, lines
    email_line = next(ln for ln in lines if ln.startswith("email:"))
    assert email_line.split() == ["email:", LONG_EMAIL]
    confirmed = next(ln for ln in lines if ln.startswith("confirmed_at:"))
    assert "(3 d ago)" in confirmed, confirmed
    # a long JSON document is indented below its key
    assert any(ln.startswith("  ") and "note" in ln for ln in lines), lines
    out = piped(cli, "admin", "users", "get", str(data))
    assert "email:" in out and "root@example.com" in out and "full_name:" in out


def test_metrics_summary(cli, data):
    code, lines = in_pty(cli, ["metrics"], 80)
    assert code == 0
    text = "\n".join(lines)
    for word in ["Sessions:", "Connections:", "Database:", "Top statements"]:
        assert word in text, text
    assert "admin" in next(ln for ln in lines if ln.startswith("Sessions:"))
    conn_line = next(ln for ln in lines if ln.startswith("Connections:"))
    max_conn = one(cli_db_conn(cli), "SHOW max_connections")
    assert f"of {max_conn}" in conn_line, conn_line
    assert len(text) < 2000, "a summary, not the raw tables"
    assert cli.json("metrics").keys() >= {"active_sessions", "connections", "queries", "storage"}


def cli_db_conn(cli):
    return cli.db.conn()


def test_bad_output_format_is_a_usage_error(cli, data):
    r = subprocess.run([BIN, "--database-url", url_for(cli.db.name), "-o", "xml", "users", "list"],
                       capture_output=True, text=True, env=cli.env())
    assert r.returncode == 2 and "xml" in r.stderr
