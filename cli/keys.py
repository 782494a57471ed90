"""``trainyard keys create | list | revoke``: API keys, straight in the database."""

import argparse
import os
import sys
from pathlib import Path

from sqlalchemy import func, select

from models.db import make_engine, make_session_factory, transaction
from models.keys import create_key, revoke
from models.settings import Settings, get_settings
from models.tables import ApiKey

KEY_FILE = "api-key"


def _factory(settings: Settings):  # type: ignore[no-untyped-def]
    return make_session_factory(make_engine(settings.database_dsn))


def key_file(settings: Settings) -> Path:
    return settings.data_dir / KEY_FILE


def ensure_first_key(settings: Settings) -> str | None:
    """On a service with no key at all, make one for the default tenant and keep it in
    ``<data dir>/api-key`` (readable by this user only), where the CLI client finds it.
    Returns the new key, or None when keys already exist."""
    with transaction(_factory(settings)) as session:
        if session.scalar(select(func.count()).select_from(ApiKey)):
            return None
        _, key = create_key(session, settings.anonymous_tenant, name="first key (trainyard serve)")
    path = key_file(settings)
    path.write_text(key + "\n")
    os.chmod(path, 0o600)
    return key


def _create(args: argparse.Namespace) -> int:
    try:
        with transaction(_factory(get_settings())) as session:
            row, key = create_key(session, args.tenant, args.name)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"created {row.id} for tenant {row.tenant}; the key is shown this once:\n{key}")
    return 0


def _list(args: argparse.Namespace) -> int:
    with transaction(_factory(get_settings())) as session:
        query = select(ApiKey).order_by(ApiKey.tenant, ApiKey.created_at)
        if args.tenant:
            query = query.where(ApiKey.tenant == args.tenant)
        for row in session.scalars(query):
            state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
            print(f"{row.id}  {row.tenant:20} {row.prefix}…  {state:24} {row.name or ''}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    with transaction(_factory(get_settings())) as session:
        done = revoke(session, args.key_id)
    print(f"revoked {args.key_id}" if done else f"error: no active key {args.key_id}",
          file=sys.stdout if done else sys.stderr)
    return 0 if done else 2


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    keys = sub.add_parser("keys", help="API keys: create, list, revoke (they belong to tenants)")
    actions = keys.add_subparsers(dest="keys_action", required=True)
    create = actions.add_parser("create", help="a new key for a tenant (printed once)")
    create.add_argument("--tenant", required=True)
    create.add_argument("--name", help="what the key is for")
    listing = actions.add_parser("list", help="keys, with their tenant and state (never the key itself)")
    listing.add_argument("--tenant")
    gone = actions.add_parser("revoke", help="stop a key from working")
    gone.add_argument("key_id")
    for parser, command in ((create, _create), (listing, _list), (gone, _revoke)):
        parser.set_defaults(keys_command=command)
