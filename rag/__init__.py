"""Knowledge bases, documents, chunks and embeddings; ingestion and hybrid search."""
