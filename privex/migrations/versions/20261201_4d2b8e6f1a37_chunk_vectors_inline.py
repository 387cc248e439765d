"""Keep each chunk's embedding and BM25 weights inside its row: storage MAIN for ``chunks.embedding`` and
``chunks.term_weights`` (pgvector's types default to EXTERNAL) and a TOAST target of 4,000 bytes for the table (the
default, ~2 kB, is less than an embedding of 384 dimensions and the weights of a 260-word chunk together). The
chunk's text, read only for the few hits a search returns, is what goes out of line now.

Searches read these two columns for many chunks a question; out of line in TOAST each read cost about three more
buffer reads: keyword search reads the weights of every chunk holding a question's rarest terms (up to ~3,000 in a
knowledge base of 10,000: 7,600 buffers and 7.6 ms for one such question at 100k chunks; 2,000 and 5.1 ms with the
weights inline), hybrid search scores every pooled chunk's embedding, and the exact nearest-neighbour scan the
planner chooses for a small knowledge base read 1,000 embeddings in 7-9 ms, 1.8-2.3 ms inline (BENCHMARKS.md). An
embedding too large to fit (1,536 dimensions) still goes out of line, as before.

Rows written before keep their values where they are until they are written again (re-storing them here would
update every row and every index of the table); PostgreSQL reads both the same way.

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
    op.execute("ALTER TABLE chunks ALTER COLUMN embedding SET STORAGE MAIN, "
               "ALTER COLUMN term_weights SET STORAGE MAIN, SET (toast_tuple_target = 4000)")


def downgrade():
    op.execute("ALTER TABLE chunks ALTER COLUMN embedding SET STORAGE EXTERNAL, "
               "ALTER COLUMN term_weights SET STORAGE EXTERNAL, RESET (toast_tuple_target)")
