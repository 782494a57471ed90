"""merge the dataset, webhook and diagnosis branches into one head

Revision ID: 0004_merge
Revises: 0003a_datasets, 0003b_webhooks, 0003c_diagnosis
Create Date: 2026-11-23

"""
from collections.abc import Sequence

revision: str = "0004_merge"
down_revision: str | Sequence[str] | None = ("0003a_datasets", "0003b_webhooks", "0003c_diagnosis")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
