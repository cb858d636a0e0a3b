"""Keep each chunk's tsvector in its row (storage MAIN) instead of out of line in TOAST.

Ranking the full-text matches (`ts_rank`) reads every matched chunk's tsvector. Stored EXTENDED, a chunk's tsvector
(~1–2 kB) goes to TOAST, and each ranked row costs several more buffer reads there; with MAIN the toaster moves
the text and the embedding (EXTERNAL) out first, so the tsvector stays in the heap row the bitmap scan already
reads. SET STORAGE only applies to values written afterwards, so the existing tsvectors are written again
(`|| ''::tsvector` makes a new value: an unchanged one would keep its TOAST pointer).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("rag", "0002_active_embedding_and_reembedding"),
    ]

    operations = [
        migrations.RunSQL(
            sql=[
                "ALTER TABLE rag_chunk ALTER COLUMN search_vector SET STORAGE MAIN",
                "UPDATE rag_chunk SET search_vector = search_vector || ''::tsvector",
            ],
            reverse_sql=["ALTER TABLE rag_chunk ALTER COLUMN search_vector SET STORAGE EXTENDED"],
        ),
    ]
