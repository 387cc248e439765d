"""Keep each chunk's BM25 weights (``chunks.term_weights``) inside its row: storage MAIN instead of sparsevec's
EXTERNAL, which moved them out of line into TOAST in almost every row (a chunk row with its text and embedding is
~5 kB, past TOAST's 2 kB target).

Keyword search reads the weights of every chunk holding a question's rarest terms (up to ~3,000 in a knowledge base of
10,000): out of line that was about three more buffer reads a chunk (7,600 buffers and 7.6 ms for one such question
at 100k chunks; 2,000 and 5.1 ms with the weights inline; BENCHMARKS.md). Rows written before keep their weights where
they are until they are written again (re-storing them here would update every row and every index of the table);
PostgreSQL reads both the same way.

Revision ID: 4d2b8e6f1a37
Revises: e3c1f7a2b9d4
Create Date: 2026-12-01 09:40:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '4d2b8e6f1a37'
down_revision = 'e3c1f7a2b9d4'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("ALTER TABLE chunks ALTER COLUMN term_weights SET STORAGE MAIN")


def downgrade():
    op.execute("ALTER TABLE chunks ALTER COLUMN term_weights SET STORAGE EXTERNAL")
