"""Checks on the PostgreSQL server itself, shared by the migration that installs pgvector and by /readyz."""

from django.db.backends.base.base import BaseDatabaseWrapper

from core.errors import ToolportError

PGVECTOR = "vector"


class PgvectorUnavailable(ToolportError):
    code = "pgvector_unavailable"


def pgvector_version(connection: BaseDatabaseWrapper) -> str | None:
    """The installed version of the `vector` extension in this database, or None if it is not installed."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = %s", [PGVECTOR])
        row = cursor.fetchone()
    return row[0] if row else None


def pgvector_require_available(connection: BaseDatabaseWrapper) -> None:
    """Raise a clear error if the server cannot `CREATE EXTENSION vector` (pgvector is not installed on it)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = %s", [PGVECTOR])
        available = cursor.fetchone() is not None
    if not available:
        info = connection.connection.info  # the live psycopg connection the query above used
        where = f"{info.host}:{info.port}/{info.dbname}"
        raise PgvectorUnavailable(
            f"The PostgreSQL server at {where} does not have the pgvector extension ('{PGVECTOR}'), which "
            "Toolport needs for knowledge search. Install pgvector on that server "
            "(Debian/Ubuntu: postgresql-<version>-pgvector), or unset DATABASE_URL to use the embedded "
            "PostgreSQL that ships with it."
        )


def database_url(connection: BaseDatabaseWrapper) -> str:
    """A DATABASE_URL for the database this connection uses (to hand to a child process)."""
    settings = connection.settings_dict
    host = settings["HOST"] or settings.get("OPTIONS", {}).get("host", "")
    if host.startswith("/"):
        return f"postgresql://{settings['USER']}@/{settings['NAME']}?host={host}"
    port = f":{settings['PORT']}" if settings["PORT"] else ""
    return f"postgresql://{settings['USER']}:{settings['PASSWORD']}@{host}{port}/{settings['NAME']}"
