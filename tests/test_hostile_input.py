"""Hostile input against every API function, found from the catalog.

For each function of dashboard_auth / dashboard / auth and each of its
arguments, call it with that argument taken from a corpus of hostile values
(the others plausible). Every call must end in a correct answer or a clean,
specific error: never an internal error (XX000: a Rust panic or an SPI
failure), never a dropped connection, never a statement that runs what the
input contained (pg_sleep, DROP), and never a change to the extension's own
schema. scripts/test.sh also checks the server log for crashed backends.
"""
import json
import uuid

import psycopg
import pytest

from conftest import PASSWORD, one, setup_admin

HUGE = "A" * 1_000_000
DEEP_JSON = "[" * 5000 + "]" * 5000

TEXT = [
    "", " ", "\t\n", "'", "\"", "''", "\\", "%", "_", ";", "--", "/*", "*/", "$$", "$x$",
    "'; DROP TABLE dashboard_auth.users; --", "x' OR '1'='1", "\"; SELECT pg_sleep(10); --",
    "1); SELECT pg_sleep(10); --", "$$; DROP SCHEMA auth CASCADE; $$",
    "SELECT pg_sleep(10)", "robert'); DROP TABLE students;--",
    "ñandú 🦀 \u200b\u202e RTL", "\ufeffbom", "a\u0000b".replace("\u0000", ""), "\x01\x02\x7f",
    "😀" * 1000, HUGE, "public.\"weird \"\" name\"", "pg_catalog.pg_authid", "anon", "service_role",
    "00000000-0000-0000-0000-000000000000", "null", "{}", "[]", "fbs_" + "A" * 43,
]
JSONB = [
    "null", "{}", "[]", "0", "\"\"", "\"'; DROP TABLE x; --\"", DEEP_JSON,
    json.dumps({"column": "id'; DROP TABLE x; --", "op": "eq", "value": 1}),
    json.dumps([{"column": "\"; SELECT pg_sleep(10); --", "op": "eq", "value": "x"}]),
    json.dumps([{"column": "id", "op": "; DROP TABLE x", "value": 1}]),
    json.dumps([{"column": "id", "op": "in", "value": list(range(10000))}]),
    json.dumps({"a" * 1000: "b" * 100000}), json.dumps([HUGE[:200000]]),
    json.dumps(["SET ROLE postgres"]), json.dumps({"id": "not-a-number"}),
]
INT = ["-2147483648", "-1", "0", "1", "2147483647"]
BIGINT = ["-9223372036854775808", "-1", "0", "9223372036854775807"]
UUIDS = ["00000000-0000-0000-0000-000000000000", str(uuid.uuid4())]
REGCLASS = ["pg_catalog.pg_authid", "dashboard_auth.credentials", "pg_class", "public.fuzz_target", "pg_toast.pg_toast_1262"]
INTERVAL = ["-1 day", "0", "1 microsecond", "1000000 years", "100 years"]
BOOL = ["true", "false"]
TIMESTAMPTZ = ["-infinity", "infinity", "1970-01-01", "2999-01-01"]
INET = ["0.0.0.0", "::1", "255.255.255.255/0"]

CORPUS = {
    "text": TEXT, "character varying": TEXT, "jsonb": JSONB, "json": JSONB, "integer": INT, "bigint": BIGINT,
    "smallint": ["-1", "0", "32767"], "uuid": UUIDS, "regclass": REGCLASS, "interval": INTERVAL,
    "boolean": BOOL, "timestamp with time zone": TIMESTAMPTZ, "inet": INET,
    "text[]": ["{}", "{\"'; DROP TABLE x; --\"}", "{NULL}"],
    "bytea": ["\\x", "\\x00", "\\x" + "ff" * 32, "\\x" + "00" * 1000],
}
PLAUSIBLE = {
    "text": "fuzz@example.com", "character varying": "fuzz@example.com", "jsonb": "[]", "json": "[]",
    "integer": "10", "bigint": "10", "smallint": "1", "uuid": "00000000-0000-0000-0000-000000000001",
    "regclass": "public.fuzz_target", "interval": "1 hour", "boolean": "false",
    "timestamp with time zone": "2020-01-01", "inet": "127.0.0.1", "text[]": "{}",
    "bytea": "\\x" + "00" * 32,
}
# Functions whose whole point is to run what they are given, as an impersonated user: covered by their own tests.
SKIP = {"query_as"}


def api_functions(conn):
    return conn.execute(
        """SELECT n.nspname, p.proname,
                  array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) t) AS args,
                  p.proretset
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname IN ('dashboard_auth', 'dashboard', 'auth') AND p.proname NOT LIKE '\\_%%'
             AND p.prokind = 'f' AND p.prorettype <> 'trigger'::regtype
           ORDER BY 1, 2"""
    ).fetchall()


def schema_fingerprint(conn):
    return conn.execute(
        """SELECT count(*), md5(string_agg(c.oid::text || c.relname::text || c.relkind::text, ',' ORDER BY c.oid))
           FROM pg_class c WHERE c.relnamespace IN ('dashboard_auth'::regnamespace, 'dashboard'::regnamespace, 'auth'::regnamespace)"""
    ).fetchone()


def test_every_function_survives_hostile_input(db):
    su = db.conn()
    setup_admin(su)
    su.execute("CREATE TABLE public.fuzz_target (id int PRIMARY KEY, name text, data jsonb)")
    su.execute("INSERT INTO public.fuzz_target SELECT g, 'n' || g, '{}' FROM generate_series(1, 20) g")
    su.execute("GRANT ALL ON public.fuzz_target TO fluxbase_dashboard")
    before = schema_fingerprint(su)
    admins_before = one(su, "SELECT count(*) FROM dashboard_auth.users")

    conn = db.conn("fb_web")
    conn.execute("SET statement_timeout = '5s'")
    funcs = [f for f in api_functions(su) if f[1] not in SKIP]
    assert len(funcs) >= 17
    failures, calls = [], 0
    for schema, name, args, retset in funcs:
        for pos, argtype in enumerate(args):
            if argtype not in CORPUS:
                failures.append(f"{schema}.{name}: no corpus for argument type {argtype}")
                continue
            for value in CORPUS[argtype] + [None]:
                params = [PLAUSIBLE.get(t) for t in args]
                params[pos] = value
                placeholders = ", ".join(f"%s::{t}" for t in args)
                sql = f"SELECT * FROM {schema}.{name}({placeholders})" if retset else f"SELECT {schema}.{name}({placeholders})"
                calls += 1
                try:
                    conn.execute("BEGIN")
                    conn.execute(sql, params).fetchall()
                    conn.execute("ROLLBACK")
                except psycopg.errors.QueryCanceled:
                    failures.append(f"{schema}.{name} arg {pos}={str(value)[:60]!r}: ran into statement_timeout")
                    conn.execute("ROLLBACK")
                except psycopg.Error as e:
                    if conn.broken:
                        failures.append(f"{schema}.{name} arg {pos}={str(value)[:60]!r}: connection lost: {e}")
                        conn = db.conn("fb_web")
                        conn.execute("SET statement_timeout = '5s'")
                        continue
                    if e.sqlstate is None or e.sqlstate.startswith("XX") or e.sqlstate == "58000":
                        failures.append(f"{schema}.{name} arg {pos}={str(value)[:60]!r}: {e.sqlstate} {str(e)[:200]}")
                    conn.execute("ROLLBACK")
    assert one(conn, "SELECT 1") == 1
    assert failures == [], "\n".join(failures[:40])
    assert calls > 500
    assert schema_fingerprint(su) == before
    assert one(su, "SELECT count(*) FROM dashboard_auth.users") == admins_before
    assert one(su, "SELECT count(*) FROM public.fuzz_target") == 20
