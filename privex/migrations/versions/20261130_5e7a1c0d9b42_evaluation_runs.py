"""Evaluation runs of a knowledge base and their per-question results

Revision ID: 5e7a1c0d9b42
Revises: a305bfd7e8cb
Create Date: 2026-11-30 20:25:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '5e7a1c0d9b42'
down_revision = 'a305bfd7e8cb'
branch_labels = None
depends_on = None


def _common():
    return [
        sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('workspace_id', sa.Uuid(), nullable=False),
    ]


def upgrade():
    op.create_table('evaluation_runs',
    sa.Column('knowledge_base_id', sa.Uuid(), nullable=False),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('source', sa.String(length=512), server_default='', nullable=False),
    sa.Column('status', sa.String(length=16), server_default='queued', nullable=False),
    sa.Column('settings', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('questions_total', sa.Integer(), server_default='0', nullable=False),
    sa.Column('questions_done', sa.Integer(), server_default='0', nullable=False),
    sa.Column('summary', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    *_common(),
    sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f('ck_evaluation_runs_status_valid')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_evaluation_runs_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['knowledge_base_id'], ['knowledge_bases.id'], name=op.f('fk_evaluation_runs_knowledge_base_id_knowledge_bases'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_evaluation_runs_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluation_runs'))
    )
    with op.batch_alter_table('evaluation_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evaluation_runs_knowledge_base_id_created_at'), ['knowledge_base_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_evaluation_runs_workspace_id'), ['workspace_id'], unique=False)

    op.create_table('evaluation_questions',
    sa.Column('run_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('relevance', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('results', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('failed', sa.Boolean(), nullable=True),
    *_common(),
    sa.ForeignKeyConstraint(['run_id'], ['evaluation_runs.id'], name=op.f('fk_evaluation_questions_run_id_evaluation_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_evaluation_questions_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluation_questions')),
    sa.UniqueConstraint('run_id', 'position', name=op.f('uq_evaluation_questions_run_id_position'))
    )
    with op.batch_alter_table('evaluation_questions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evaluation_questions_workspace_id'), ['workspace_id'], unique=False)


def downgrade():
    op.drop_table('evaluation_questions')
    op.drop_table('evaluation_runs')
