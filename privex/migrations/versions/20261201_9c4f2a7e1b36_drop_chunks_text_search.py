"""Drop ``chunks.text_search`` and its GIN index: nothing reads them since keyword ranking moved to BM25 over the
chunks' terms (``terms``, ``term_weights``), and every chunk written paid for them (PostgreSQL computed the tsvector
and updated the GIN index inside each ingestion's transaction, the one that holds the knowledge base's keyword
statistics row). The downgrade computes them again for every chunk.

Revision ID: 9c4f2a7e1b36
Revises: 5b1e0c9d7a21
Create Date: 2026-12-01 00:30:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '9c4f2a7e1b36'
down_revision = '5b1e0c9d7a21'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('chunks', schema=None) as batch_op:
        batch_op.drop_index('ix_chunks_text_search', postgresql_using='gin')
        batch_op.drop_column('text_search')


def downgrade():
    with op.batch_alter_table('chunks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('text_search', postgresql.TSVECTOR(),
                                      sa.Computed("to_tsvector('english', text)", persisted=True), nullable=True))
        batch_op.create_index('ix_chunks_text_search', ['text_search'], unique=False, postgresql_using='gin')
