"""Keep each chunk's vector in its row (storage MAIN) instead of out of line in TOAST.

pgvector's `vector` type defaults to EXTERNAL: a chunk's row (text, ~1.5 kB vector, tsvector) is over the TOAST
threshold, so the vector went out of line, and every vector read outside the HNSW index cost a TOAST lookup. An
exact search of a small knowledge base (the planner's choice below a few thousand chunks) reads every vector:
2,000 chunks took 4.8 ms EXTERNAL against 0.7 ms MAIN (bench/README.md); at scale, the dense ranking reads its 50
candidates' vectors for their exact distances. With MAIN the toaster moves the text out first (tsvector and vector
stay, ~4 kB a row, within a page). `embedding_next` (only written and swapped by a re-embedding) stays EXTERNAL.

SET STORAGE applies to values written afterwards: chunks ingested or re-embedded from now on. Existing vectors move
into their rows when their document is re-ingested, at the next re-embedding, or with `VACUUM FULL rag_chunk` (a
rewrite that locks the table): rewriting them here would update every row and every index entry at once.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("rag", "0003_search_vector_storage_main"),
    ]

    operations = [
        migrations.RunSQL(
            sql=["ALTER TABLE rag_chunk ALTER COLUMN embedding SET STORAGE MAIN"],
            reverse_sql=["ALTER TABLE rag_chunk ALTER COLUMN embedding SET STORAGE EXTERNAL"],
        ),
    ]
