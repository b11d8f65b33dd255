"""A real PostgreSQL 15 with PostGIS for the tests, from Debian's packages.

``initdb`` makes a cluster in a temporary directory owned by a non-root user (the ``postgres``
system user when the tests run as root, else the current user), ``postgres`` serves it on a
loopback port chosen at run time (its socket stays in that directory), and a database
``wayhome`` gets ``CREATE EXTENSION postgis``. Stopping it shuts the server down (fast mode) and
removes the directory. Needs the Debian packages ``postgresql-15`` and
``postgresql-15-postgis-3`` (``scripts/install`` installs them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.services.process import (
    ServiceError,
    free_loopback_port,
    stop_process,
    tail,
    tied_to_this_thread,
)

log = logging.getLogger(__name__)

PG_MAJOR = 15
START_TIMEOUT_S = 30.0
DATABASE = "wayhome"
SUPERUSER = "postgres"


def pg_bindir() -> Path:
    """Where Debian puts PostgreSQL's server programs."""
    override = os.environ.get("WAYHOME_TEST_PG_BINDIR")
    bindir = Path(override) if override else Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
    if not (bindir / "initdb").exists():
        raise ServiceError(
            f"PostgreSQL {PG_MAJOR}'s initdb is not in {bindir}; install the Debian package "
            f"postgresql-{PG_MAJOR} (scripts/install does)."
        )
    return bindir


def _run_as() -> pwd.struct_passwd:
    """The non-root account the server runs as."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise ServiceError(
            "PostgreSQL must not run as root and there is no 'postgres' user to run it as; "
            "install the Debian package postgresql (it creates that user)."
        ) from None


def _as_account(account: pwd.struct_passwd) -> dict[str, Any]:
    """``subprocess`` arguments that run a program as ``account`` (needed only as root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


@dataclass
class PostgisServer:
    """A running PostgreSQL server with the postgis extension in database ``wayhome``."""

    host: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes]
    postgis_version: str = ""
    startup_s: float = 0.0

    @property
    def dsn(self) -> str:
        """``postgresql://`` URL of the ``wayhome`` database (trust authentication)."""
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{DATABASE}"

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self.workdir / "server.log"

    def stop(self) -> None:
        """Shut the server down (fast mode, then kill) and remove its directory."""
        stop_process(self.process, first_signal=signal.SIGINT, grace_s=20.0)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _prepare_cluster(bindir: Path, account: pwd.struct_passwd) -> Path:
    workdir = Path(tempfile.mkdtemp(prefix="wayhome-postgis-"))
    data_dir = workdir / "data"
    data_dir.mkdir(mode=0o700)
    os.chown(workdir, account.pw_uid, account.pw_gid)
    os.chown(data_dir, account.pw_uid, account.pw_gid)
    result = subprocess.run(
        [
            str(bindir / "initdb"),
            f"--pgdata={data_dir}",
            f"--username={SUPERUSER}",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ],
        **_as_account(account),
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        raise ServiceError(
            f"initdb could not create a PostgreSQL cluster (exit {result.returncode}): "
            f"{(result.stdout + result.stderr).strip()[-2000:]}"
        )
    return workdir


def _connect_and_create_extension(dsn_admin: str, server: PostgisServer) -> None:
    import psycopg

    with psycopg.connect(dsn_admin, autocommit=True, connect_timeout=2) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if exists.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    with psycopg.connect(server.dsn, autocommit=True, connect_timeout=2) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        row = conn.execute("SELECT postgis_lib_version()").fetchone()
        server.postgis_version = str(row[0]) if row else "?"


def start_postgis(host: str = "127.0.0.1") -> PostgisServer:
    """Create, start and prepare a server; return once ``postgis`` is usable in ``wayhome``."""
    import psycopg

    bindir = pg_bindir()
    account = _run_as()
    workdir = _prepare_cluster(bindir, account)
    port = free_loopback_port()
    server_command = [
        str(bindir / "postgres"),
        *("-D", str(workdir / "data"), "-p", str(port)),
        *("-c", f"listen_addresses={host}", "-c", f"unix_socket_directories={workdir}"),
        # A throwaway cluster: durability buys nothing and costs time.
        *("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
        *("-c", "max_connections=200", "-c", "shared_buffers=128MB"),
    ]
    with open(workdir / "server.log", "wb") as log_file:
        # SIGINT is PostgreSQL's fast shutdown.
        process = subprocess.Popen(
            tied_to_this_thread(server_command, "INT"),
            **_as_account(account),
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = PostgisServer(host, port, workdir, process)
    admin_dsn = f"postgresql://{SUPERUSER}@{host}:{port}/postgres"
    started = time.monotonic()
    try:
        while True:
            if process.poll() is not None:
                raise ServiceError(
                    f"PostgreSQL exited with code {process.returncode} while starting; its log "
                    f"ends with:\n{tail(server.log_path)}"
                )
            try:
                _connect_and_create_extension(admin_dsn, server)
                break
            except psycopg.OperationalError as exc:
                if time.monotonic() - started > START_TIMEOUT_S:
                    raise ServiceError(
                        f"PostgreSQL did not accept connections within {START_TIMEOUT_S:.0f} s "
                        f"on {host}:{port} ({exc}); its log ends with:\n{tail(server.log_path)}"
                    ) from None
                time.sleep(0.2)
            except psycopg.Error as exc:
                raise ServiceError(
                    f"PostgreSQL started but the postgis extension could not be created: {exc} "
                    f"(is the Debian package postgresql-{PG_MAJOR}-postgis-3 installed?)"
                ) from None
    except BaseException:
        server.stop()
        raise
    server.startup_s = time.monotonic() - started
    log.info("PostgreSQL + PostGIS %s started on port %s", server.postgis_version, port)
    return server


@contextlib.contextmanager
def running_postgis() -> Iterator[PostgisServer]:
    """A server for the length of a ``with`` block."""
    server = start_postgis()
    try:
        yield server
    finally:
        server.stop()
