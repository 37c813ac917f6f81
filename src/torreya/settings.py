"""The only reader of the environment.

Everything configurable is read once here into a frozen `Settings`; the rest of the code
receives it (app.state.settings) instead of looking at os.environ.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from tortoise.backends.base.config_generator import expand_db_url

PACKAGE_DIR = Path(__file__).resolve().parent
TIME_ZONE = "Asia/Shanghai"
LOCAL = ZoneInfo(TIME_ZONE)  # village time: days, periods, opening hours
DEFAULT_DATABASE_URL = "sqlite://data/torreya.sqlite3"
PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "dev"}
MODELS_MODULE = "torreya.models"
# The `aliyun` SMS backend's credentials and approved templates (signin/gateway.py).
ALIYUN_VARIABLES = ("TORREYA_ALIYUN_ACCESS_KEY_ID", "TORREYA_ALIYUN_ACCESS_KEY_SECRET",
                    "TORREYA_ALIYUN_SMS_SIGN_NAME", "TORREYA_ALIYUN_SMS_TEMPLATE_CODE",
                    "TORREYA_ALIYUN_SMS_TEMPLATE_NOTICE")
MIGRATIONS_MODULE = "torreya.migrations"


class ConfigurationError(RuntimeError):
    """The environment asks for something Torreya refuses to run with."""


# Top-level folders and where the wheel puts them inside the package (pyproject.toml,
# force-include). Scheme packs get their own name: `torreya.rewards` is the code.
PACKAGED_AS = {"templates": "templates", "static": "static", "rewards": "scheme_packs"}


def resource_dir(name: str) -> Path:
    """Where a top-level folder (templates, static, rewards) lives.

    In a wheel they are mapped into the package; in a source checkout (editable install,
    tests) they sit at the repository root, two levels above the package.
    """
    packaged = PACKAGE_DIR / PACKAGED_AS[name]
    if packaged.is_dir():
        return packaged
    return PACKAGE_DIR.parent.parent / name


@dataclass(frozen=True, kw_only=True)
class Settings:
    DATABASE_URL: str = DEFAULT_DATABASE_URL
    SECRET_KEY: str = ""
    BASE_URL: str = "http://127.0.0.1:8000"
    DEBUG: bool = False
    # Bodies larger than this are refused with 413 before anything reads them.
    MAX_BODY_BYTES: int = 1_000_000
    MAX_UPLOAD_BYTES: int = 8_000_000
    ACCESS_TOKEN_SECONDS: int = 12 * 3600
    # Browser sessions: residents stay logged in for a month on their own phone; anyone who
    # moves points or hands goods over (staff and up) for a working day.
    RESIDENT_SESSION_SECONDS: int = 30 * 24 * 3600
    STAFF_SESSION_SECONDS: int = 12 * 3600
    # Big actions (large adjustments, scheme imports, roles, webhook secrets) need the
    # password again within this long.
    STEP_UP_SECONDS: int = 5 * 60
    # Login throttling: failures counted in a sliding window, per account and per address.
    LOGIN_WINDOW_SECONDS: int = 15 * 60
    LOGIN_MAX_PER_ACCOUNT: int = 5
    LOGIN_MAX_PER_IP: int = 30
    ROTATING_CODE_SECONDS: int = 30
    # A worker may answer a leaderboard with a top it worked out this long ago (the
    # viewer's own row is always fresh; 0: every request reads the totals).
    BOARD_CACHE_SECONDS: float = 5.0
    # Expiring vouchers and other chores, in every worker (they are safe to overlap).
    HOUSEKEEPING_FIRST_SECONDS: int = 30
    HOUSEKEEPING_SECONDS: int = 600
    # How long a request may wait on the database before it is told 503 `unavailable`:
    # a statement, a row lock, a SQLite write lock, a new connection (seconds).
    DB_STATEMENT_TIMEOUT: float = 5.0
    DB_LOCK_TIMEOUT: float = 3.0
    DB_CONNECT_TIMEOUT: float = 5.0
    # The delivery worker and the housekeeping inside `torreya serve` (off on web hosts
    # where `torreya worker` runs them instead: TORREYA_WORKER=0).
    RUN_WORKER: bool = True
    # "pgbouncer": PgBouncer in transaction pooling sits between Torreya and PostgreSQL
    # (TORREYA_DB_POOLER; noticed without it too: torreya/pg_backend.py). asyncpg then
    # prepares no named statements, and the session settings (statement and lock timeouts)
    # are not sent at connect, which PgBouncer refuses: set them on the role instead.
    DB_POOLER: str = ""
    # A streaming standby for reads that may lag a second (leaderboards, big screens):
    # TORREYA_REPLICA_URL. Unset, or out of reach: everything reads the primary.
    REPLICA_URL: str = ""
    # "text" or "json" (one JSON object per line, with each request's line): TORREYA_LOG_FORMAT.
    LOG_FORMAT: str = "text"
    # Log a stall of the event loop longer than this, with the code it was in (ops/stalls.py;
    # TORREYA_STALL_MS; 0: off).
    STALL_MS: int = 0
    # /metrics answers loopback clients, or anyone bearing this token when it is set.
    METRICS_TOKEN: str = ""
    WORKER_POLL_SECONDS: float = 1.0
    # Webhooks may point into private networks only when the platform operator says so.
    WEBHOOK_ALLOW_PRIVATE: bool = False
    # A receiver that does not answer within this is a failed try (retried later).
    WEBHOOK_TIMEOUT_SECONDS: float = 10.0
    # Text messages: `log` (the server log; development and the demo), or `webhook` (POST
    # JSON to SMS_URL, for any gateway behind an adapter). See signin/gateway.py.
    SMS_BACKEND: str = "log"
    SMS_URL: str = ""
    SMS_TIMEOUT_SECONDS: float = 10.0
    # OpenID Connect (a government single sign-on such as 浙里办, Keycloak …): on when the
    # issuer is set. The button on /login reads OIDC_LABEL.
    OIDC_ISSUER: str = ""
    OIDC_CLIENT_ID: str = ""
    OIDC_CLIENT_SECRET: str = ""
    OIDC_LABEL: str = ""
    OIDC_SCOPES: str = "openid profile phone"
    # WeChat web authorization (网页授权, signin/wechat.py): on when both are set. The two
    # base addresses are WeChat's own; tests point them at a local stand-in.
    WECHAT_APPID: str = ""
    WECHAT_SECRET: str = ""
    WECHAT_SCOPE: str = "snsapi_base"
    WECHAT_AUTHORIZE_BASE: str = "https://open.weixin.qq.com"
    WECHAT_API_BASE: str = "https://api.weixin.qq.com"
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        debug = env.get("TORREYA_DEBUG", "").lower() in {"1", "true", "yes"}
        secret = env.get("TORREYA_SECRET_KEY", "")
        if secret.strip().lower() in PLACEHOLDER_SECRETS:
            secret = _local_secret(debug=debug, explicit=bool(secret))
        def flag(name: str, default: bool) -> bool:
            value = env.get(name)
            return default if value is None else value.lower() in {"1", "true", "yes"}

        sms_backend = env.get("TORREYA_SMS_BACKEND", "log")
        if sms_backend not in {"log", "webhook", "aliyun"}:
            raise ConfigurationError(f"TORREYA_SMS_BACKEND must be log, webhook or aliyun, "
                                     f"not {sms_backend!r}")
        if sms_backend == "webhook" and not env.get("TORREYA_SMS_URL"):
            raise ConfigurationError("TORREYA_SMS_BACKEND=webhook needs TORREYA_SMS_URL")
        missing = [name for name in ALIYUN_VARIABLES if not env.get(name)]
        if sms_backend == "aliyun" and missing:
            raise ConfigurationError(f"TORREYA_SMS_BACKEND=aliyun needs {', '.join(missing)}")
        def hours(name: str, default: int) -> int:
            value = env.get(name)
            if value is None:
                return default
            if not value.isdigit() or not 0 < int(value) <= 24 * 366:
                raise ConfigurationError(f"{name} must be a whole number of hours")
            return int(value) * 3600

        def seconds(name: str, default: float) -> float:
            value = env.get(name)
            if value is None:
                return default
            wrong = ConfigurationError(f"{name} must be a number of seconds (0–3600)")
            try:
                number = float(value)
            except ValueError:
                raise wrong from None
            if not 0 <= number <= 3600:
                raise wrong
            return number

        stall = env.get("TORREYA_STALL_MS", "0")
        if not stall.isdigit() or int(stall) > 60_000:
            raise ConfigurationError("TORREYA_STALL_MS must be a whole number of milliseconds"
                                     " (0–60000)")
        stall_ms = int(stall)

        pooler = env.get("TORREYA_DB_POOLER", "")
        if pooler not in {"", "pgbouncer"}:
            raise ConfigurationError(f"TORREYA_DB_POOLER must be pgbouncer or empty, not "
                                     f"{pooler!r}")
        log_format = env.get("TORREYA_LOG_FORMAT", "text")
        if log_format not in {"text", "json"}:
            raise ConfigurationError(f"TORREYA_LOG_FORMAT must be text or json, not "
                                     f"{log_format!r}")
        return cls(
            RESIDENT_SESSION_SECONDS=hours("TORREYA_RESIDENT_SESSION_HOURS", 30 * 24 * 3600),
            STAFF_SESSION_SECONDS=hours("TORREYA_STAFF_SESSION_HOURS", 12 * 3600),
            RUN_WORKER=flag("TORREYA_WORKER", True),
            LOG_FORMAT=log_format,
            STALL_MS=stall_ms,
            METRICS_TOKEN=env.get("TORREYA_METRICS_TOKEN", ""),
            REPLICA_URL=env.get("TORREYA_REPLICA_URL", ""),
            DB_POOLER=pooler,
            BOARD_CACHE_SECONDS=seconds("TORREYA_BOARD_CACHE_SECONDS", 5.0),
            WEBHOOK_ALLOW_PRIVATE=flag("TORREYA_WEBHOOK_ALLOW_PRIVATE", False),
            SMS_BACKEND=sms_backend,
            OIDC_ISSUER=env.get("TORREYA_OIDC_ISSUER", "").rstrip("/"),
            OIDC_CLIENT_ID=env.get("TORREYA_OIDC_CLIENT_ID", ""),
            OIDC_CLIENT_SECRET=env.get("TORREYA_OIDC_CLIENT_SECRET", ""),
            OIDC_LABEL=env.get("TORREYA_OIDC_LABEL", ""),
            OIDC_SCOPES=env.get("TORREYA_OIDC_SCOPES", "openid profile phone"),
            WECHAT_APPID=env.get("TORREYA_WECHAT_APPID", ""),
            WECHAT_SECRET=env.get("TORREYA_WECHAT_SECRET", ""),
            WECHAT_SCOPE=env.get("TORREYA_WECHAT_SCOPE", "snsapi_base"),
            WECHAT_AUTHORIZE_BASE=env.get("TORREYA_WECHAT_AUTHORIZE_BASE",
                                          "https://open.weixin.qq.com").rstrip("/"),
            WECHAT_API_BASE=env.get("TORREYA_WECHAT_API_BASE",
                                    "https://api.weixin.qq.com").rstrip("/"),
            SMS_URL=env.get("TORREYA_SMS_URL", ""),
            DATABASE_URL=env.get("TORREYA_DATABASE_URL", DEFAULT_DATABASE_URL),
            SECRET_KEY=secret,
            BASE_URL=env.get("TORREYA_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
            DEBUG=debug,
            extra={name: env[name] for name in (*ALIYUN_VARIABLES, "TORREYA_ALIYUN_SMS_ENDPOINT")
                   if env.get(name)},
        )

    @property
    def is_sqlite(self) -> bool:
        return self.DATABASE_URL.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        return self.BASE_URL.startswith("https://")

    @property
    def sqlite_path(self) -> str | None:
        """The SQLite file, or None for PostgreSQL and in-memory databases."""
        if not self.is_sqlite:
            return None
        path = self.DATABASE_URL.split("://", 1)[1].split("?", 1)[0]
        return path if path and path != ":memory:" else None

    def tortoise_config(self, *, timeouts: bool = True) -> dict[str, Any]:
        """Tortoise's configuration. With `timeouts` (the server and the CLI's short
        commands), nothing waits on the database for longer than a few seconds; migrations
        pass False, since rewriting a large table may rightly take minutes."""
        return {
            "connections": {"default": self._connection(self.DATABASE_URL, timeouts=timeouts)},
            "apps": {
                "models": {
                    "models": [MODELS_MODULE],
                    "default_connection": "default",
                    "migrations": MIGRATIONS_MODULE,
                }
            },
            "use_tz": True,
            "timezone": "UTC",
        }

    def replica_config(self) -> dict[str, Any] | None:
        """The replica's connection (engine, credentials), or None. Kept out of Tortoise's
        own table: with two connections there, every transaction would have to name one."""
        if not self.REPLICA_URL or self.is_sqlite:
            return None
        return self._connection(self.REPLICA_URL, timeouts=True,
                                connect=REPLICA_CONNECT_TIMEOUT)

    def _connection(self, url: str, *, timeouts: bool, connect: float | None = None
                    ) -> dict[str, Any]:
        connection = _by_url(url) if _several_hosts(url) else expand_db_url(url)
        credentials = connection["credentials"]
        if self.is_sqlite:
            # Another process (a second worker, the CLI) holding the write lock: wait this
            # long, then "database is locked" (503) instead of failing at once. Transactions
            # take that lock when they begin (torreya/sqlite_backend.py), so they wait too.
            credentials["busy_timeout"] = int(self.DB_LOCK_TIMEOUT * 1000)
            connection["engine"] = "torreya.sqlite_backend"
        else:
            connection["engine"] = "torreya.pg_backend"
            credentials["timeout"] = connect or self.DB_CONNECT_TIMEOUT
            # A connection goes back to the pool as it is. asyncpg's default reset (RESET
            # ALL, UNLISTEN *, CLOSE ALL, release advisory locks) costs one more round trip
            # after every query outside a transaction, and Torreya leaves none of that on
            # a connection: its advisory locks are transaction-scoped, and it uses no SET,
            # LISTEN or cursors. asyncpg still rolls back a transaction left open. Keep it
            # so; the bare baseline of bench/checkin.py shares this setting.
            credentials["reset"] = _keep_session
            if self.DB_POOLER == "pgbouncer":
                credentials["pooler"] = True
            elif timeouts:
                credentials["server_settings"] = {
                    "statement_timeout": str(int(self.DB_STATEMENT_TIMEOUT * 1000)),
                    "lock_timeout": str(int(self.DB_LOCK_TIMEOUT * 1000)),
                    "idle_in_transaction_session_timeout": "60000",
                }
            else:
                # long offline work: not cut short by a timeout put on the role either
                credentials["server_settings"] = {"statement_timeout": "0"}
        return connection


# A replica that does not answer at once is skipped (db.reading), not waited for.
REPLICA_CONNECT_TIMEOUT = 2.0


def _several_hosts(url: str) -> bool:
    """libpq's multi-host form: `postgres://u@db1:5432,db2:5432/torreya?…`."""
    return url.startswith("postgres") and "," in urlsplit(url).netloc


# Tortoise's own options in a database URL; the rest of the query is libpq's (asyncpg's).
_TORTOISE_OPTIONS = {"minsize", "maxsize", "max_queries",
                     "max_inactive_connection_lifetime", "schema", "application_name"}


def _by_url(url: str) -> dict[str, Any]:
    """A connection for torreya.pg_backend: asyncpg reads the URL itself (several hosts,
    target_session_attrs); Tortoise's options are taken out of it."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    ours = {k: v for k, v in query if k in _TORTOISE_OPTIONS}
    theirs = urlencode([(k, v) for k, v in query if k not in _TORTOISE_OPTIONS])
    dsn = urlunsplit(("postgresql", parts.netloc, parts.path, theirs, ""))
    return {"engine": "torreya.pg_backend",
            "credentials": {"dsn": dsn, "database": parts.path.lstrip("/"), **ours}}


def _local_secret(*, debug: bool, explicit: bool) -> str:
    """A secret for a machine that was given none.

    A placeholder value set on purpose is refused outside debug. With nothing set, the
    embedded default keeps a random key in ./data/ so sessions and printed QR codes survive
    restarts; a deployment with several hosts must set TORREYA_SECRET_KEY.
    """
    if explicit and not debug:
        raise ConfigurationError("TORREYA_SECRET_KEY is a placeholder; set a long random value")
    path = Path("data") / "secret_key"
    try:
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key, encoding="utf-8")
        path.chmod(0o600)
    except OSError as error:
        raise ConfigurationError(
            f"cannot keep the secret key in {path.resolve()}: {error.strerror or error}. "
            "Make ./data/ writable by this user, or set TORREYA_SECRET_KEY.") from None
    return key


async def _keep_session(connection: Any) -> None:
    """asyncpg's pool `reset`: nothing to undo (see tortoise_config)."""


def _tortoise_orm() -> dict[str, Any]:
    return Settings.from_env().tortoise_config()


def __getattr__(name: str) -> Any:
    # `tortoise -c torreya.settings.TORTOISE_ORM makemigrations` reads this lazily, so
    # importing settings never touches the disk.
    if name == "TORTOISE_ORM":
        return _tortoise_orm()
    raise AttributeError(name)
