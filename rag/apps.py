from django.apps import AppConfig


class RagConfig(AppConfig):
    name = "rag"

    def ready(self) -> None:
        from accounts.navigation import Section, section_register

        section_register(Section("knowledge", "Knowledge", "console:knowledge", 20))

        from billing.quotas import storage_measure_register
        from rag.services import stored_bytes

        storage_measure_register(stored_bytes)  # documents count toward the plan's storage quota

        from rag.tool_ranking import tools_by_meaning
        from tools.builtins import tool_ranker_register

        tool_ranker_register(tools_by_meaning)  # find_tools ranks by meaning as well as keywords

        from rag import (
            mcp_tools,  # noqa: F401 - registers search_knowledge, read_document, … as built-in tools
            resources,  # noqa: F401 - registers kb:// documents as MCP resources
        )
