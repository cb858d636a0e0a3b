"""Re-embed every chunk with the configured embedding model and switch search over to it (docs/rag.md)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rag.embedding import EmbedderUnavailable
from rag.reembedding import Reembedding, embeddings_reembed, reembedding_status


class Command(BaseCommand):
    help = (
        "Re-embed every chunk with the configured embedding model (EMBEDDING_PROVIDER/EMBEDDING_MODEL), printing "
        "progress, then switch search over to it in one transaction. Resumes a stopped run; a no-op when every "
        "chunk already has the configured model. Beat does the same in the background every minute."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--status", action="store_true", help="Print where things stand and change nothing.")
        parser.add_argument(
            "--background", action="store_true", help="Queue the Celery task that does it, and return at once."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["status"]:
            self.stdout.write(str(reembedding_status()))
            return
        if options["background"]:
            from rag.tasks import embeddings_reembed_task

            embeddings_reembed_task.delay()
            self.stdout.write("Queued the re-embedding task; `manage.py rag_reembed --status` shows its progress.")
            return

        def report(progress: Reembedding) -> None:
            self.stdout.write(str(progress))

        try:
            outcome = embeddings_reembed(retarget=True, report=report)
        except EmbedderUnavailable as error:
            raise CommandError(error.message) from error
        if outcome.status == "busy":
            raise CommandError(str(outcome))
        self.stdout.write(str(outcome))
