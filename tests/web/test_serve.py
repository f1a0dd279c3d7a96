"""`fluxbase serve` refuses unsafe configurations before serving anything."""
import os
import subprocess

from conftest import BIN, db_url, free_port


def serve(dbname, *args, user="fb_web"):
    env = dict(os.environ, DATABASE_URL=db_url(dbname, user))
    env.pop("RUST_BACKTRACE", None)
    return subprocess.run([BIN, "serve", *args], env=env, capture_output=True, text=True, timeout=30)


def test_refuses_a_superuser_login(db):
    r = serve(db.name, "--listen", f"127.0.0.1:{free_port()}", user="postgres")
    assert r.returncode != 0
    assert "superuser" in r.stderr
    assert "CREATE ROLE fluxbase_web LOGIN" in r.stderr and "GRANT fluxbase_dashboard TO fluxbase_web" in r.stderr


def test_refuses_plain_http_beyond_loopback(db):
    r = serve(db.name, "--listen", f"0.0.0.0:{free_port()}")
    assert r.returncode != 0
    assert "plain HTTP" in r.stderr and "--behind-proxy" in r.stderr


def test_half_a_tls_pair_is_a_usage_error(db):
    r = serve(db.name, "--tls-cert", "/nonexistent.pem")
    assert r.returncode != 0
    assert "--tls-key" in r.stderr


def test_serves_https_with_tls_cert_and_key(db, tmp_path):
    import ssl
    import time
    import urllib.request

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    port = free_port()
    env = dict(os.environ, DATABASE_URL=db_url(db.name))
    env.pop("RUST_BACKTRACE", None)
    proc = subprocess.Popen([BIN, "serve", "--listen", f"0.0.0.0:{port}", "--tls-cert", str(cert), "--tls-key", str(key)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ctx = ssl.create_default_context(cafile=str(cert))
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"https://localhost:{port}/admin/healthz", context=ctx, timeout=2) as r:
                    assert r.status == 200
                    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("no HTTPS answer")
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"Fluxbase dashboard: https://localhost:{port}/admin" in out
