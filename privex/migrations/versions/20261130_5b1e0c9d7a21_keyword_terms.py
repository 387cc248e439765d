"""Keyword ranking at BM25 quality: each chunk's stemmed term ids (GIN-indexed) and BM25 weights (sparsevec), and
per-knowledge-base term statistics for the vector store plugin (plg_pgvector_*: chunk count and total length, and
in how many chunks each term is). Existing chunks are left without terms; the store fills them in, with their
statistics, the first time their knowledge base is searched by keyword (it tokenizes in Python, which a migration
cannot import).

Revision ID: 5b1e0c9d7a21
Revises: 5e7a1c0d9b42
Create Date: 2026-11-30 20:30:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from pgvector.sqlalchemy import SPARSEVEC

revision = '5b1e0c9d7a21'
down_revision = '5e7a1c0d9b42'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('chunks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('terms', postgresql.ARRAY(sa.Integer()), nullable=True))
        batch_op.add_column(sa.Column('term_weights', SPARSEVEC(), nullable=True))
        batch_op.add_column(sa.Column('term_count', sa.Integer(), nullable=True))
    op.create_index('ix_chunks_terms', 'chunks', ['terms'], postgresql_using='gin')
    op.create_index('ix_chunks_without_terms', 'chunks', ['knowledge_base_id'],
                    postgresql_where=sa.text('terms IS NULL'))
    op.create_table(
        'plg_pgvector_keyword_statistics',
        sa.Column('knowledge_base_id', sa.Uuid(), sa.ForeignKey('knowledge_bases.id', ondelete='CASCADE'),
                  primary_key=True),
        sa.Column('chunks', sa.BigInteger(), nullable=False, server_default='0'),
        sa.Column('length', sa.BigInteger(), nullable=False, server_default='0'),
        sa.Column('weights_average', sa.Float(), nullable=True))
    op.create_table(
        'plg_pgvector_term_frequencies',
        sa.Column('knowledge_base_id', sa.Uuid(), sa.ForeignKey('knowledge_bases.id', ondelete='CASCADE'),
                  primary_key=True),
        sa.Column('term', sa.Integer(), primary_key=True),
        sa.Column('chunks', sa.Integer(), nullable=False))


def downgrade():
    op.drop_table('plg_pgvector_term_frequencies')
    op.drop_table('plg_pgvector_keyword_statistics')
    op.drop_index('ix_chunks_without_terms', table_name='chunks')
    op.drop_index('ix_chunks_terms', table_name='chunks')
    with op.batch_alter_table('chunks', schema=None) as batch_op:
        batch_op.drop_column('term_count')
        batch_op.drop_column('term_weights')
        batch_op.drop_column('terms')
