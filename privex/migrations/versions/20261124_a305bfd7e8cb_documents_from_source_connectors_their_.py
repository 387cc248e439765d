"""Documents from source connectors (web, Notion, Google Docs): their settings and the credential they read with;
any installed connector's name is a source type (no CHECK constraint: a plugin must not need a migration)

Revision ID: a305bfd7e8cb
Revises: ddf622e562d9
Create Date: 2026-11-24 23:25:02.703230

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = 'a305bfd7e8cb'
down_revision = 'ddf622e562d9'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source_config', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False))
        batch_op.add_column(sa.Column('credential_id', sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_documents_credential_id_credentials'), 'credentials', ['credential_id'], ['id'], ondelete='SET NULL')
        batch_op.drop_constraint(batch_op.f('ck_documents_source_type_valid'), type_='check')
        batch_op.alter_column('source_type', type_=sa.String(length=64), existing_nullable=False)


def downgrade():
    op.execute("UPDATE documents SET source_type = 'upload' WHERE source_type NOT IN "
               "('upload', 'text', 'web', 'notion', 'google_docs')")
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.alter_column('source_type', type_=sa.String(length=16), existing_nullable=False)
        batch_op.create_check_constraint(batch_op.f('ck_documents_source_type_valid'),
                                         "source_type IN ('upload', 'text', 'web', 'notion', 'google_docs')")
        batch_op.drop_constraint(batch_op.f('fk_documents_credential_id_credentials'), type_='foreignkey')
        batch_op.drop_column('credential_id')
        batch_op.drop_column('source_config')
