"""Client-level tests: a real PostgreSQL 15 cluster with the real extension.

scripts/test.sh starts a throwaway cluster and exports PGHOST/PGPORT. Each test
gets a fresh database cloned from a template that already has the extension, so
tests are independent and fast. Cluster-wide login roles used by the tests:

  fb_web      member of fluxbase_dashboard (the dashboard web server's login)
  fb_plain    a login role with no special rights
  fb_app      a login role that is a member of anon/authenticated (PostgREST's authenticator)
"""
import os
import uuid

import psycopg
import pytest

TEMPLATE = "fluxbase_template"
PASSWORD = "correct-horse-battery-staple"


def connect(dbname, user="postgres", autocommit=True, **kw):
    return psycopg.connect(dbname=dbname, user=user, autocommit=autocommit, **kw)


@pytest.fixture(scope="session")
def template_db():
    with connect("postgres") as c:
        c.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        c.execute(f"CREATE DATABASE {TEMPLATE}")
        for role, opts in [("fb_web", "LOGIN"), ("fb_plain", "LOGIN"), ("fb_app", "LOGIN NOINHERIT")]:
            c.execute(f"DROP ROLE IF EXISTS {role}")
            c.execute(f"CREATE ROLE {role} {opts}")
    with connect(TEMPLATE) as c:
        c.execute("CREATE EXTENSION fluxbase_admin")
        c.execute("GRANT fluxbase_dashboard TO fb_web")
        c.execute("GRANT anon, authenticated TO fb_app")
    yield TEMPLATE


class Db:
    """A fresh database with the extension; `.conn(user)` opens connections to it."""

    def __init__(self, name):
        self.name = name
        self._conns = []

    def conn(self, user="postgres", autocommit=True):
        c = connect(self.name, user=user, autocommit=autocommit)
        self._conns.append(c)
        return c

    def close(self):
        for c in self._conns:
            c.close()


@pytest.fixture
def db(template_db):
    name = "t_" + uuid.uuid4().hex[:12]
    with connect("postgres") as c:
        c.execute(f"CREATE DATABASE {name} TEMPLATE {template_db}")
    d = Db(name)
    yield d
    d.close()
    with connect("postgres") as c:
        c.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def su(db):
    """A superuser connection to the fresh database."""
    return db.conn()


@pytest.fixture
def web(db):
    """A connection as the dashboard's login role (member of fluxbase_dashboard)."""
    return db.conn("fb_web")


def one(conn, sql, params=()):
    row = conn.execute(sql, params).fetchone()
    return None if row is None else (row[0] if len(row) == 1 else row)


def setup_admin(conn, email="root@example.com", password=PASSWORD, name="Root Admin"):
    """Run first-run setup; returns (user_id, session_token)."""
    return conn.execute(
        "SELECT user_id, session_token FROM dashboard_auth.setup_first_admin(%s, %s, %s)", (email, password, name)
    ).fetchone()


def as_session(conn, token, reauth=None):
    """Begin a transaction acting as the admin of `token` (dashboard_auth.use_session).
    With `reauth` (the admin's password or a 2FA code), also re-authenticate in
    that transaction, as step-up actions (delete, role change, ...) need."""
    conn.execute("BEGIN")
    conn.execute("SELECT dashboard_auth.use_session(%s)", (token,))
    if reauth is not None:
        until = conn.execute("SELECT dashboard_auth.reauthenticate(%s)", (reauth,)).fetchone()[0]
        assert until is not None, "re-authentication failed"
    return conn


def sqlstate_of(excinfo):
    return excinfo.value.sqlstate
