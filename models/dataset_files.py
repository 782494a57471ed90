"""The rule that keeps a dataset's rows and its stored files together.

Stored bytes are shared by content (``datasets/<sha256>/``); rows are per tenant,
so two tenants who upload the same file share one folder. A folder is removed
only when no row of any tenant references its sha256, decided while holding a
lock on that content which every upload of the same bytes also takes (from
before it looks for the folder until its row commits). So a delete racing an
upload of the same bytes either removes the folder first (and the upload then
stores its own copy) or sees the upload's committed row (and keeps the folder).
"""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.db import lock_until_commit
from models.tables import Dataset

_DATASETS = Dataset.__table__  # Core, not the ORM entity: the API's tenant filter must not apply here


def lock_content(session: Session, sha256: str) -> None:
    """Lock the stored content ``sha256`` until the session's transaction ends."""
    lock_until_commit(session, f"dataset:{sha256}")


def content_in_use(session: Session, sha256: str) -> bool:
    """Whether a row of any tenant references the stored content ``sha256``."""
    return session.execute(select(_DATASETS.c.id).where(_DATASETS.c.sha256 == sha256).limit(1)).first() is not None


def referenced_contents(factory: sessionmaker[Session]) -> set[str]:
    """Every sha256 that a row of any tenant references."""
    with factory() as session:
        return set(session.scalars(select(_DATASETS.c.sha256).distinct()))


@contextmanager
def unreferenced(session: Session, sha256: str) -> Iterator[bool]:
    """In a transaction of its own on ``session``: lock the content and yield whether no row references it.
    Remove its files inside the block, while the lock holds; the transaction ends with the block."""
    try:
        lock_content(session, sha256)
        yield not content_in_use(session, sha256)
        session.commit()
    except BaseException:
        session.rollback()
        raise


def claims(factory: sessionmaker[Session]) -> Callable[[str], AbstractContextManager[bool]]:
    """``unreferenced`` on a fresh session per content, for sweeps."""
    @contextmanager
    def claim(sha256: str) -> Iterator[bool]:
        with factory() as session, unreferenced(session, sha256) as free:
            yield free
    return claim
