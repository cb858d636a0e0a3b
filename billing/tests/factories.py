from accounts.models import Workspace
from accounts.tests.factories import WorkspaceFactory
from billing.models import BillingAccount, Plan


def workspace_on_plan(*, api_calls: int | None = 100, ai_operations: int | None = 50, **account: object) -> Workspace:
    """A workspace on its own plan with the given monthly limits (None: unlimited)."""
    workspace = WorkspaceFactory.create()
    plan = Plan.objects.create(
        tier=f"t{workspace.pk.hex[:12]}",
        name="Test plan",
        api_calls_per_month=api_calls,
        ai_operations_per_month=ai_operations,
        storage_bytes=1024,
    )
    BillingAccount.objects.create(workspace=workspace, plan=plan, **account)
    return workspace
