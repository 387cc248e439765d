"""Chatflow versions: published graphs of a chatflow; chatflows.version is the deployed one (0: none yet)

Revision ID: e3c1f7a2b9d4
Revises: 9c4f2a7e1b36
Create Date: 2026-12-01 04:00:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = 'e3c1f7a2b9d4'
down_revision = '9c4f2a7e1b36'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('chatflow_versions',
    sa.Column('chatflow_id', sa.Uuid(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('nodes', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('edges', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('workspace_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['chatflow_id'], ['chatflows.id'], name=op.f('fk_chatflow_versions_chatflow_id_chatflows'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_chatflow_versions_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_chatflow_versions_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chatflow_versions')),
    sa.UniqueConstraint('chatflow_id', 'number', name=op.f('uq_chatflow_versions_chatflow_id_number'))
    )
    with op.batch_alter_table('chatflow_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chatflow_versions_workspace_id'), ['workspace_id'], unique=False)
    with op.batch_alter_table('chatflows', schema=None) as batch_op:
        batch_op.alter_column('version', server_default='0')
    op.execute("UPDATE chatflows SET version = 0 WHERE NOT EXISTS "
               "(SELECT 1 FROM chatflow_versions WHERE chatflow_id = chatflows.id)")


def downgrade():
    with op.batch_alter_table('chatflows', schema=None) as batch_op:
        batch_op.alter_column('version', server_default='1')
    with op.batch_alter_table('chatflow_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chatflow_versions_workspace_id'))
    op.drop_table('chatflow_versions')
